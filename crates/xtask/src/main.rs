use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use xtask::dev::{self, DevOptions};

/// Developer tasks of this workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the whole stack locally: Postgres, migrations, every service and a router on one port.
    Dev(DevArgs),
    /// Benchmark the services under load (wrk) and record the results in benchmarks/.
    Bench(xtask::bench::BenchArgs),
    /// Recompute the figures of docs/comparison.md (docs/figures.json); --check compares.
    Report(xtask::report::ReportArgs),
    /// Internal: stops what `dev` started if `dev` is killed (see xtask::reaper).
    #[command(hide = true)]
    Reap,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Port of the local router (the one URL to open).
    #[arg(long, env = "DEV_PORT", default_value_t = 8080)]
    port: u16,
    /// Address the router listens on (0.0.0.0 to reach it from other machines).
    #[arg(long, env = "DEV_BIND", default_value_t = Ipv4Addr::LOCALHOST)]
    bind: Ipv4Addr,
    /// Port of the local Postgres server.
    #[arg(long, env = "DEV_PG_PORT", default_value_t = 5433)]
    pg_port: u16,
    /// Postgres data directory (created and initialised on first run, reused afterwards).
    #[arg(long, env = "DEV_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory holding initdb and pg_ctl (default: found on PATH).
    #[arg(long, env = "PG_BIN")]
    pg_bin: Option<PathBuf>,
    /// Override a service's port from the catalog: NAME=PORT (repeatable, or comma separated).
    #[arg(long = "service-port", env = "DEV_SERVICE_PORTS", value_name = "NAME=PORT", value_parser = parse_port_override, value_delimiter = ',')]
    service_ports: Vec<(String, u16)>,
    /// Override a service's metrics port from the catalog: NAME=PORT (repeatable, or comma separated).
    #[arg(long = "metrics-port", env = "DEV_METRICS_PORTS", value_name = "NAME=PORT", value_parser = parse_port_override, value_delimiter = ',')]
    metrics_ports: Vec<(String, u16)>,
    /// Build and run the release binaries.
    #[arg(long)]
    release: bool,
    /// Do not run `cargo build` first (use the binaries already in target/).
    #[arg(long)]
    no_build: bool,
    /// Seconds each service may take to answer its health path.
    #[arg(long, default_value_t = 60)]
    health_timeout: u64,
    /// Port of the local Prometheus (started when `prometheus` is on PATH).
    #[arg(long, env = "DEV_PROMETHEUS_PORT", default_value_t = 9090)]
    prometheus_port: u16,
}

fn parse_port_override(raw: &str) -> Result<(String, u16), String> {
    let (name, port) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PORT, got `{raw}`"))?;
    let port = port
        .trim()
        .parse::<u16>()
        .map_err(|e| format!("bad port in `{raw}`: {e}"))?;
    Ok((name.trim().to_owned(), port))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Task::Reap = cli.command {
        // No async runtime: the reaper only reads a pipe and sends signals.
        return match xtask::reaper::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("reaper: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Task::Dev(args) => runtime.block_on(dev::run(dev_options(args))),
        Task::Bench(args) => runtime.block_on(xtask::bench::run(args.into_options())),
        Task::Report(args) => xtask::report::run_args(args),
        Task::Reap => Ok(()),
    };
    // Do not wait for stray blocking tasks (stdin readers and the like).
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dev_options(args: DevArgs) -> DevOptions {
    let root = xtask::workspace_root();
    let data_dir = match args.data_dir {
        Some(dir) if dir.is_relative() => std::env::current_dir().unwrap_or_default().join(dir),
        Some(dir) => dir,
        None => root.join(".dev").join("postgres"),
    };
    DevOptions {
        catalog_path: root.join(catalog::FILE_NAME),
        root,
        bind: args.bind,
        port: args.port,
        pg_port: args.pg_port,
        data_dir,
        pg_bin: args.pg_bin,
        service_ports: args.service_ports.into_iter().collect::<BTreeMap<_, _>>(),
        metrics_ports: args.metrics_ports.into_iter().collect::<BTreeMap<_, _>>(),
        release: args.release,
        build: !args.no_build,
        health_timeout: Duration::from_secs(args.health_timeout),
        prometheus_port: args.prometheus_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_overrides() {
        assert_eq!(
            parse_port_override("api=4000"),
            Ok(("api".to_owned(), 4000))
        );
        assert_eq!(
            parse_port_override(" web = 4001"),
            Ok(("web".to_owned(), 4001))
        );
        assert!(parse_port_override("api").is_err());
        assert!(parse_port_override("api=70000").is_err());
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "cargo xtask",
            "dev",
            "--port",
            "9000",
            "--service-port",
            "api=4000,web=4001",
            "--metrics-port",
            "api=4100",
            "--no-build",
        ])
        .unwrap();
        let Task::Dev(args) = cli.command else {
            panic!("expected the dev task");
        };
        let options = dev_options(args);
        assert_eq!(options.port, 9000);
        assert_eq!(options.service_ports["api"], 4000);
        assert_eq!(options.service_ports["web"], 4001);
        assert_eq!(options.metrics_ports["api"], 4100);
        assert!(!options.build);
        assert!(options.data_dir.ends_with(".dev/postgres"));
    }
}
