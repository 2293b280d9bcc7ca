//! `cargo xtask dev`: the whole stack locally, on one port.
//!
//! Steps: check ports → find Postgres → build the binaries of the catalog → start Postgres
//! (data kept in `.dev/postgres`) → run the jobs (migrations) → start the services in
//! dependency order, each one healthy before the next → start the router. Ctrl-C stops
//! everything: SIGTERM to the services (newest first), then `pg_ctl stop`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use catalog::{Catalog, Service};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::output::step;
use crate::postgres::{LocalPostgres, PgBinaries, RunAs};
use crate::process::{Exited, ManagedChild};
use crate::proxy::{self, RouteTable};

/// Options of `cargo xtask dev` (see `main.rs` for flags and environment variables).
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Workspace root (holds services.toml, target/).
    pub root: PathBuf,
    pub catalog_path: PathBuf,
    /// Address the router binds.
    pub bind: Ipv4Addr,
    pub port: u16,
    pub pg_port: u16,
    pub data_dir: PathBuf,
    pub pg_bin: Option<PathBuf>,
    /// Overrides of the catalog's `port` / `metrics_port`, by service name.
    pub service_ports: BTreeMap<String, u16>,
    pub metrics_ports: BTreeMap<String, u16>,
    pub release: bool,
    pub build: bool,
    pub health_timeout: Duration,
}

/// How long a service may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs the stack until Ctrl-C/SIGTERM (`Ok`) or a failure (`Err`, everything stopped).
pub async fn run(options: DevOptions) -> Result<()> {
    let mut stack = Stack::default();
    let outcome = tokio::select! {
        result = start_and_watch(&options, &mut stack) => result,
        signal = shutdown_signal() => {
            step(format!("{signal} received, stopping"));
            Ok(())
        }
    };
    let stopped = stack.shutdown().await;
    match (outcome, stopped) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => {
            step("stopped");
            Ok(())
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "Ctrl-C",
    }
}

/// Everything started so far, stopped in reverse order.
#[derive(Default)]
struct Stack {
    postgres: Option<LocalPostgres>,
    services: Vec<ManagedChild>,
    router: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Stack {
    async fn shutdown(&mut self) -> Result<()> {
        if let Some((stop, task)) = self.router.take() {
            let _ = stop.send(());
            let mut task = task;
            if tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        while let Some(mut child) = self.services.pop() {
            step(format!("stopping {}", child.name()));
            child.terminate(STOP_GRACE).await;
        }
        if let Some(mut postgres) = self.postgres.take() {
            step("stopping postgres (pg_ctl stop)");
            postgres.stop().await?;
        }
        Ok(())
    }
}

/// A service resolved against the catalog and the port overrides.
struct Planned<'a> {
    name: &'a str,
    service: &'a Service,
    port: u16,
    metrics_port: u16,
}

async fn start_and_watch(options: &DevOptions, stack: &mut Stack) -> Result<()> {
    let catalog = Catalog::load(&options.catalog_path)
        .with_context(|| format!("cannot load the catalog {}", options.catalog_path.display()))?;
    for name in options
        .service_ports
        .keys()
        .chain(options.metrics_ports.keys())
    {
        if !catalog.services.contains_key(name) {
            bail!(
                "port override for unknown service `{name}` (services: {})",
                catalog
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let planned: Vec<Planned<'_>> = catalog
        .start_order()
        .into_iter()
        .map(|(name, service)| Planned {
            name,
            service,
            port: options
                .service_ports
                .get(name)
                .copied()
                .unwrap_or(service.port),
            metrics_port: options
                .metrics_ports
                .get(name)
                .copied()
                .unwrap_or(service.metrics_port),
        })
        .collect();
    let port_of: BTreeMap<&str, u16> = planned.iter().map(|p| (p.name, p.port)).collect();

    // 1. Ports.
    let mut wanted = vec![
        (
            options.port,
            "router".to_owned(),
            "--port (env DEV_PORT)".to_owned(),
        ),
        (
            options.pg_port,
            "postgres".to_owned(),
            "--pg-port (env DEV_PG_PORT)".to_owned(),
        ),
    ];
    for p in &planned {
        wanted.push((
            p.port,
            p.name.to_owned(),
            format!("--service-port {}=PORT", p.name),
        ));
        wanted.push((
            p.metrics_port,
            format!("{} metrics", p.name),
            format!("--metrics-port {}=PORT", p.name),
        ));
    }
    check_ports(&wanted)?;
    step(format!(
        "ports free: router {}, postgres {}, {}",
        options.port,
        options.pg_port,
        planned
            .iter()
            .map(|p| format!("{} {} (metrics {})", p.name, p.port, p.metrics_port))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // 2. Postgres programs.
    let bins = PgBinaries::find(options.pg_bin.as_deref()).map_err(anyhow::Error::msg)?;
    let run_as = RunAs::detect().map_err(anyhow::Error::msg)?;
    if let RunAs::Unprivileged { user, .. } = &run_as {
        step(format!(
            "running as root: Postgres will run as `{}`",
            user.name
        ));
    }

    // 3. Build.
    let mut crates: Vec<&str> = catalog
        .services
        .values()
        .map(|s| s.crate_name.as_str())
        .chain(catalog.jobs.values().map(|j| j.crate_name.as_str()))
        .collect();
    crates.sort_unstable();
    crates.dedup();
    let bin_dir = target_dir(&options.root).join(if options.release { "release" } else { "debug" });
    if options.build {
        build(&options.root, &crates, options.release).await?;
    } else {
        step("skipping the build (--no-build)");
    }

    // 4. Postgres.
    let mut postgres = LocalPostgres::new(bins, run_as, options.data_dir.clone(), options.pg_port);
    if postgres.prepare().await? {
        step(format!(
            "initialised a new Postgres data directory in {}",
            options.data_dir.display()
        ));
    } else {
        step(format!(
            "reusing the Postgres data in {}",
            options.data_dir.display()
        ));
    }
    step(format!(
        "starting postgres on 127.0.0.1:{}",
        options.pg_port
    ));
    let started = postgres.start().await;
    stack.postgres = Some(postgres);
    started?;
    let database_url = stack
        .postgres
        .as_ref()
        .map(LocalPostgres::database_url)
        .unwrap_or_default();
    step(format!("postgres is ready: {database_url}"));

    // 5. Jobs (migrations), in catalog order, before any service.
    for (name, job) in &catalog.jobs {
        let (program, args) = job.command.split_first().context("job without command")?;
        let binary = binary_path(&bin_dir, program)?;
        step(format!("running job {name}: {}", job.command.join(" ")));
        let mut command = Command::new(&binary);
        command.args(args);
        child_env(
            &mut command,
            &job.env,
            job.database.then_some(database_url.as_str()),
        );
        let status = ManagedChild::spawn(name, command, None)?.wait().await;
        if !status.is_some_and(|s| s.success()) {
            bail!(
                "job `{name}` ({}) failed: {}. Its output is above, prefixed [{name}]. Fix the \
                 problem (for migrations: the files in migrations/ or the database state) and \
                 run `cargo xtask dev` again; the data in {} is kept.",
                job.command.join(" "),
                describe(status),
                options.data_dir.display()
            );
        }
        step(format!("job {name} finished"));
    }

    // 6. Services, upstreams first, each healthy before the next.
    let (exits_tx, mut exits) = mpsc::unbounded_channel::<Exited>();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    for p in &planned {
        let binary = binary_path(&bin_dir, &p.service.crate_name)?;
        step(format!("starting {} on port {}", p.name, p.port));
        let mut command = Command::new(&binary);
        child_env(
            &mut command,
            &p.service.env,
            p.service.database.then_some(database_url.as_str()),
        );
        command
            .env("PORT", p.port.to_string())
            .env("METRICS_PORT", p.metrics_port.to_string());
        for upstream in &p.service.upstreams {
            let port = port_of
                .get(upstream.as_str())
                .copied()
                .context("unknown upstream")?;
            command.env(
                Service::url_variable(upstream),
                format!("http://127.0.0.1:{port}"),
            );
        }
        let child = ManagedChild::spawn(p.name, command, Some(exits_tx.clone()))?;
        stack.services.push(child);
        let child = stack.services.last().context("just pushed")?;
        let url = format!("http://127.0.0.1:{}{}", p.port, p.service.health);
        wait_healthy(&http, child, &url, options.health_timeout).await?;
        step(format!("{} is healthy ({url})", p.name));
    }

    // 7. Router.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((options.bind, options.port)))
        .await
        .with_context(|| port_taken_message(options.port, "router", "--port (env DEV_PORT)"))?;
    let table = RouteTable::from_catalog(&catalog, |name| port_of.get(name).copied().unwrap_or(0));
    let routes = table
        .routes()
        .iter()
        .map(|r| format!("{} → {}", r.prefix, r.name))
        .collect::<Vec<_>>()
        .join(", ");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stop_rx.await;
        };
        if let Err(e) = proxy::serve(listener, table, shutdown).await {
            crate::output::prefixed("router", &format!("failed: {e}"));
        }
    });
    stack.router = Some((stop_tx, task));
    let host = if options.bind.is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        options.bind
    };
    step(format!("router on port {} ({routes})", options.port));
    step(format!(
        "ready: http://{host}:{}  (Ctrl-C stops everything)",
        options.port
    ));

    // 8. Watch: a service that exits on its own stops the stack.
    match exits.recv().await {
        Some(Exited { name, status }) => bail!(
            "{name} exited unexpectedly ({status}); see the [{name}] lines above. Stopping \
             everything."
        ),
        None => std::future::pending().await,
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "no exit status".to_owned(), |s| s.to_string())
}

/// Environment of a child: ours, minus database settings unless it needs the database,
/// plus the catalog's `env` (your `RUST_LOG` wins), text logs.
fn child_env(command: &mut Command, env: &BTreeMap<String, String>, database_url: Option<&str>) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "DATABASE_URL" || key.starts_with("PG") {
            command.env_remove(key.as_ref());
        }
    }
    for (key, value) in env {
        if key == "RUST_LOG" && std::env::var_os("RUST_LOG").is_some() {
            continue;
        }
        command.env(key, value);
    }
    command.env("LOG_FORMAT", "text");
    if !crate::output::color_enabled() {
        // Our output is not a terminal: no ANSI colours from the children either.
        command.env("NO_COLOR", "1");
    }
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
}

async fn wait_healthy(
    http: &reqwest::Client,
    child: &ManagedChild,
    url: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.exit_status() {
            bail!(
                "{} exited before becoming healthy ({status}); see the [{}] lines above",
                child.name(),
                child.name()
            );
        }
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer {url} with 2xx within {}s; see the [{}] lines above",
                child.name(),
                timeout.as_secs(),
                child.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn check_ports(wanted: &[(u16, String, String)]) -> Result<()> {
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for (port, what, flag) in wanted {
        if let Some(other) = seen.insert(*port, what) {
            bail!("port {port} is configured for both {other} and {what}; change one with {flag}");
        }
        if StdTcpListener::bind((Ipv4Addr::UNSPECIFIED, *port)).is_err()
            || StdTcpListener::bind((Ipv4Addr::LOCALHOST, *port)).is_err()
        {
            bail!("{}", port_taken_message(*port, what, flag));
        }
    }
    Ok(())
}

fn port_taken_message(port: u16, what: &str, flag: &str) -> String {
    format!(
        "port {port} ({what}) is already in use. Stop whatever listens there (see `ss -ltnp \
         'sport = :{port}'`; an earlier `cargo xtask dev` still running?) or choose another \
         port with {flag}."
    )
}

/// Cargo's target directory for the workspace at `root` (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

fn binary_path(bin_dir: &Path, name: &str) -> Result<PathBuf> {
    let path = bin_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} does not exist; build it (`cargo build -p {name}`) or run without --no-build",
            path.display()
        );
    }
    Ok(path)
}

async fn build(root: &Path, crates: &[&str], release: bool) -> Result<()> {
    step(format!(
        "building {} (cargo build{})",
        crates.join(", "),
        if release { " --release" } else { "" }
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).arg("build");
    if release {
        command.arg("--release");
    }
    for name in crates {
        command.args(["-p", name]);
    }
    let status = command
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the build failed ({status}); see the compiler output above");
    }
    Ok(())
}
