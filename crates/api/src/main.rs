//! `api`: the messages HTTP service. See `Config` for the environment it reads.

use api::{AppState, Config};
use service_kit::config::exit_on_config_error;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = exit_on_config_error(Config::from_env());
    exit_on_config_error(service_kit::telemetry::init("api"));

    // The pool is lazy: the api starts (and is live) even when the database is down.
    let state = AppState::from_config(&config).await;
    let app = api::app(state.clone(), config.request_timeout);

    let metrics_addr = (config.bind, config.metrics_port).into();
    if let Err(e) = service_kit::metrics::serve_metrics(metrics_addr).await {
        eprintln!("cannot listen on METRICS_PORT {}: {e}", config.metrics_port);
        return std::process::ExitCode::FAILURE;
    }
    let settings = service_kit::serve::ServerSettings::with_drain_timeout(config.drain_timeout);
    let result = service_kit::serve::serve(app, (config.bind, config.port).into(), settings).await;
    // Bounded: connections still held by abandoned requests must not block the exit.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.close()).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot serve on PORT {}: {e}", config.port);
            std::process::ExitCode::FAILURE
        }
    }
}
