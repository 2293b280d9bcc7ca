//! `migrate`: apply the database migrations.
//!
//! - Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set (the AWS custom runtime, file `bootstrap`).
//! - Otherwise a CLI: `migrate up` applies pending migrations (prints the JSON summary),
//!   `migrate status` lists every migration and its state.

use clap::{Parser, Subcommand};
use service_kit::config::exit_on_config_error;

#[derive(Parser)]
#[command(name = "migrate", version, about = "Apply the database migrations")]
struct Cli {
    /// Seconds to keep retrying while the database is unreachable.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    connect_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply all pending migrations (prints `{"applied":[…],"already_applied":N}`).
    Up,
    /// Show every migration and whether it is applied, pending, changed or failed; exits
    /// non-zero when `up` would refuse to run (changed, unknown or failed migrations).
    Status,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        exit_on_config_error(service_kit::telemetry::init("migrate"));
        let config = exit_on_config_error(migrate::lambda::LambdaConfig::from_env());
        return match migrate::lambda::run(config).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "lambda runtime failed");
                std::process::ExitCode::FAILURE
            }
        };
    }

    let cli = Cli::parse();
    // stdout carries the result (the summary, the status table); logs go to stderr.
    exit_on_config_error(service_kit::telemetry::init_stderr("migrate"));
    let settings = exit_on_config_error(service_kit::db::settings_from_env());
    let options = match &settings.secret {
        None => settings.options,
        // A one-shot run reads the secret once, just before connecting.
        Some(source) => {
            let credentials =
                service_kit::db::SecretCredentials::from_env(source, settings.options).await;
            match credentials.connect_options().await {
                Ok(options) => options,
                Err(e) => {
                    eprintln!("migrate: database secret DB_SECRET_ARN: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    };
    let result: Result<bool, migrate::Error> = async {
        let mut conn = migrate::connect(
            &options,
            std::time::Duration::from_secs(cli.connect_timeout),
        )
        .await?;
        match cli.command {
            Command::Up => {
                let summary = migrate::run(&migrate::MIGRATOR, &mut conn).await?;
                println!(
                    "{}",
                    serde_json::to_string(&summary).expect("serialize summary")
                );
                Ok(true)
            }
            Command::Status => {
                let status = migrate::status(&migrate::MIGRATOR, &mut conn).await?;
                let mut clean = true;
                for s in &status {
                    let state = match s.state {
                        migrate::State::Applied => "applied",
                        migrate::State::Pending => "pending",
                        migrate::State::Changed => {
                            clean = false;
                            "CHANGED (checksum mismatch)"
                        }
                        migrate::State::Unknown => {
                            clean = false;
                            "UNKNOWN (applied, not in this binary)"
                        }
                        migrate::State::Failed => {
                            clean = false;
                            "FAILED (partially applied; `migrate up` refuses to run until it is repaired)"
                        }
                    };
                    println!("{:>14}  {:<40} {state}", s.version, s.description);
                }
                Ok(clean)
            }
        }
    }
    .await;
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(error = %e, "migration failed");
            eprintln!("migrate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
