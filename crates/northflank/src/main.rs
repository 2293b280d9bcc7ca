use std::process::ExitCode;

use clap::Parser;
use northflank::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match northflank::run(Cli::parse()).await {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprintln!("northflank: {error}");
            ExitCode::FAILURE
        }
    }
}
