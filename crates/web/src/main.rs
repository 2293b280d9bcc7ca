use std::process::ExitCode;
use std::time::Duration;

use service_kit::{config, metrics, serve, telemetry};

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let config = config::exit_on_config_error(web::Config::from_env());
    config::exit_on_config_error(telemetry::init("web"));

    let state = match web::AppState::new(&config) {
        Ok(state) => state,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the api client");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(api_url = %config.api_url, "calling the api");

    if let Err(e) = metrics::serve_metrics((config.bind, config.metrics_port).into()).await {
        tracing::error!(error = %e, port = config.metrics_port, "cannot bind METRICS_PORT");
        return ExitCode::FAILURE;
    }
    let settings = serve::ServerSettings::with_drain_timeout(DRAIN_TIMEOUT);
    match serve::serve(web::app(state), (config.bind, config.port).into(), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, port = config.port, "server failed (is PORT free?)");
            ExitCode::FAILURE
        }
    }
}
