//! `cargo xtask dev`: the whole stack locally, on one port.
//!
//! [`start_and_watch`] reads top-down as the phases of the stack: [`plan`] (catalog and
//! ports) → [`build`] → [`start_database`] (Postgres, data kept in `.dev/postgres`) →
//! [`run_jobs`] (migrations) → [`start_services`] (dependency order, each healthy before the
//! next) → [`start_router`] → [`start_monitoring`] (Prometheus, when installed) → [`watch`].
//! Ctrl-C, SIGTERM or SIGHUP stops everything in reverse order (services newest first, then
//! `pg_ctl stop`); if `dev` itself is killed, the [`reaper`](crate::reaper) does it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use catalog::{Catalog, Job, Service};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::output::step;
use crate::postgres::{LocalPostgres, PgBinaries, RunAs};
use crate::process::{Exited, ManagedChild};
use crate::prometheus::Prometheus;
use crate::proxy::{self, RouteTable};
use crate::reaper::{Note, Reaper};

/// Options of `cargo xtask dev` (see `main.rs` for flags and environment variables).
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Workspace root (holds services.toml, target/).
    pub root: PathBuf,
    pub catalog_path: PathBuf,
    /// Address the router binds; the services and their metrics listeners bind it too.
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
    /// Port of Prometheus, started when the `prometheus` program is found.
    pub prometheus_port: u16,
}

/// How long a service may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs the stack until Ctrl-C/SIGTERM/SIGHUP (`Ok`) or a failure (`Err`, everything stopped).
pub async fn run(options: DevOptions) -> Result<()> {
    let mut stack = Stack {
        reaper: Some(Reaper::start()?),
        ..Stack::default()
    };
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
    let (Ok(mut term), Ok(mut int), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "Ctrl-C",
        _ = hangup.recv() => "SIGHUP (terminal closed)",
    }
}

/// The phases, in order; returns only on failure (or never: [`watch`] waits for one).
async fn start_and_watch(options: &DevOptions, stack: &mut Stack) -> Result<()> {
    let catalog = Catalog::load(&options.catalog_path)
        .with_context(|| format!("cannot load the catalog {}", options.catalog_path.display()))?;
    let plan = plan(options, &catalog)?;
    let bin_dir = build(options, &catalog).await?;
    let database_url = start_database(options, stack).await?;
    run_jobs(options, &catalog, &bin_dir, &database_url).await?;
    start_services(options, &plan, &bin_dir, &database_url, stack).await?;
    start_router(options, &catalog, &plan, stack).await?;
    start_monitoring(options, &plan, stack).await?;
    step(format!(
        "ready: http://{}:{}  (Ctrl-C stops everything)",
        display_host(options.bind),
        options.port
    ));
    watch(stack).await
}

/// Everything started so far, stopped in reverse order.
#[derive(Default)]
struct Stack {
    reaper: Option<Reaper>,
    postgres: Option<LocalPostgres>,
    services: Vec<ManagedChild>,
    exits: Option<mpsc::UnboundedReceiver<Exited>>,
    router: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    prometheus: Option<Prometheus>,
}

impl Stack {
    /// Tell the reaper about a child, so a killed `dev` does not leave it running.
    fn adopt(&mut self, child: &ManagedChild) {
        if let (Some(reaper), Some(pid)) = (self.reaper.as_mut(), child.pid()) {
            reaper.note(&Note::Child {
                name: child.name().to_owned(),
                pid,
            });
        }
    }

    async fn shutdown(&mut self) -> Result<()> {
        if let Some(mut prometheus) = self.prometheus.take() {
            step("stopping prometheus");
            prometheus.stop().await;
        }
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
        if let Some(reaper) = self.reaper.take() {
            reaper.finish();
        }
        Ok(())
    }
}

/// A service resolved against the catalog and the port overrides.
pub(crate) struct Planned<'a> {
    pub(crate) name: &'a str,
    service: &'a Service,
    pub(crate) port: u16,
    pub(crate) metrics_port: u16,
}

/// Phase 1: every service with its ports, in start order; every port free.
fn plan<'a>(options: &DevOptions, catalog: &'a Catalog) -> Result<Vec<Planned<'a>>> {
    let overrides = options
        .service_ports
        .keys()
        .chain(options.metrics_ports.keys());
    for name in overrides {
        if !catalog.services.contains_key(name) {
            let known: Vec<&str> = catalog.services.keys().map(String::as_str).collect();
            bail!(
                "port override for unknown service `{name}` (services: {})",
                known.join(", ")
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
    check_ports(options, &planned)?;
    step(format!(
        "ports free on {}: router {}, postgres {}, {}",
        options.bind,
        options.port,
        options.pg_port,
        planned
            .iter()
            .map(|p| format!("{} {} (metrics {})", p.name, p.port, p.metrics_port))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(planned)
}

/// Phase 2: `cargo build` of every crate of the catalog; returns the binaries' directory.
async fn build(options: &DevOptions, catalog: &Catalog) -> Result<PathBuf> {
    let crates = catalog.crate_names();
    let profile = if options.release { "release" } else { "debug" };
    let bin_dir = target_dir(&options.root).join(profile);
    if !options.build {
        step("skipping the build (--no-build)");
        return Ok(bin_dir);
    }
    step(format!(
        "building {} (cargo build{})",
        crates.join(", "),
        if options.release { " --release" } else { "" }
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&options.root).arg("build");
    if options.release {
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
    Ok(bin_dir)
}

/// Phase 3: Postgres in the data directory (initialised on first use); returns its URL.
async fn start_database(options: &DevOptions, stack: &mut Stack) -> Result<String> {
    let bins = PgBinaries::find(options.pg_bin.as_deref()).map_err(anyhow::Error::msg)?;
    let run_as = RunAs::detect().map_err(anyhow::Error::msg)?;
    if let RunAs::Unprivileged { user, .. } = &run_as {
        step(format!(
            "when run as root, Postgres runs as `{}`",
            user.name
        ));
    }
    let mut postgres = LocalPostgres::new(bins, run_as, options.data_dir.clone(), options.pg_port);
    let data = options.data_dir.display();
    if postgres.prepare().await? {
        step(format!(
            "initialised a new Postgres data directory in {data}"
        ));
    } else {
        step(format!("reusing the Postgres data in {data}"));
    }
    step(format!(
        "starting postgres on 127.0.0.1:{}",
        options.pg_port
    ));
    if let Some(reaper) = stack.reaper.as_mut() {
        let (program, args) = postgres.stop_command();
        reaper.note(&Note::StopCommand {
            name: "postgres".into(),
            program,
            args,
        });
    }
    let started = postgres.start().await;
    let database_url = postgres.database_url();
    stack.postgres = Some(postgres);
    started?;
    step(format!("postgres is ready: {database_url}"));
    Ok(database_url)
}

/// Phase 4: the catalog's jobs (migrations), in order, before any service.
async fn run_jobs(
    options: &DevOptions,
    catalog: &Catalog,
    bin_dir: &Path,
    database_url: &str,
) -> Result<()> {
    for (name, job) in &catalog.jobs {
        run_job(options, name, job, bin_dir, database_url).await?;
    }
    Ok(())
}

async fn run_job(
    options: &DevOptions,
    name: &str,
    job: &Job,
    bin_dir: &Path,
    database_url: &str,
) -> Result<()> {
    let (program, args) = job.command.split_first().context("job without command")?;
    let binary = binary_path(bin_dir, program)?;
    step(format!("running job {name}: {}", job.command.join(" ")));
    let mut command = Command::new(&binary);
    command.args(args);
    child_env(&mut command, &job.env, job.database.then_some(database_url));
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
    Ok(())
}

/// Phase 5: the services, upstreams first, each healthy before the next; all bound to the
/// router's address.
async fn start_services(
    options: &DevOptions,
    plan: &[Planned<'_>],
    bin_dir: &Path,
    database_url: &str,
    stack: &mut Stack,
) -> Result<()> {
    let (exits_tx, exits) = mpsc::unbounded_channel::<Exited>();
    stack.exits = Some(exits);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    let host = display_host(options.bind);
    let port_of: BTreeMap<&str, u16> = plan.iter().map(|p| (p.name, p.port)).collect();
    for p in plan {
        let binary = binary_path(bin_dir, &p.service.crate_name)?;
        step(format!("starting {} on {host}:{}", p.name, p.port));
        let mut command = Command::new(&binary);
        child_env(
            &mut command,
            &p.service.env,
            p.service.database.then_some(database_url),
        );
        command
            .env("BIND_ADDRESS", options.bind.to_string())
            .env("PORT", p.port.to_string())
            .env("METRICS_PORT", p.metrics_port.to_string());
        for upstream in &p.service.upstreams {
            let port = port_of
                .get(upstream.as_str())
                .copied()
                .context("unknown upstream")?;
            command.env(
                Service::url_variable(upstream),
                format!("http://{host}:{port}"),
            );
        }
        let child = ManagedChild::spawn(p.name, command, Some(exits_tx.clone()))?;
        stack.adopt(&child);
        stack.services.push(child);
        let child = stack.services.last().context("just pushed")?;
        let url = format!("http://{host}:{}{}", p.port, p.service.health);
        wait_healthy(&http, child, &url, options.health_timeout).await?;
        step(format!(
            "{} is healthy ({url}, pid {})",
            p.name,
            child.pid().unwrap_or_default()
        ));
    }
    Ok(())
}

/// Phase 6: the router, one port for every service, like the production load balancer.
async fn start_router(
    options: &DevOptions,
    catalog: &Catalog,
    plan: &[Planned<'_>],
    stack: &mut Stack,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((options.bind, options.port)))
        .await
        .with_context(|| port_taken_message(options.port, "router", "--port (env DEV_PORT)"))?;
    let port_of: BTreeMap<&str, u16> = plan.iter().map(|p| (p.name, p.port)).collect();
    let upstream_host = IpAddr::V4(display_host(options.bind));
    let table = RouteTable::from_catalog_at(catalog, upstream_host, |name| {
        port_of.get(name).copied().unwrap_or(0)
    });
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
    step(format!("router on port {} ({routes})", options.port));
    Ok(())
}

/// Phase 7: Prometheus scraping every service's metrics port, when it is installed.
async fn start_monitoring(
    options: &DevOptions,
    plan: &[Planned<'_>],
    stack: &mut Stack,
) -> Result<()> {
    let Some(program) = crate::prometheus::find() else {
        step("prometheus not found on PATH: no local monitoring (apt-get install prometheus)");
        return Ok(());
    };
    let targets: Vec<(String, SocketAddr)> = plan
        .iter()
        .map(|p| {
            let addr = SocketAddr::from((display_host(options.bind), p.metrics_port));
            (p.name.to_owned(), addr)
        })
        .collect();
    let work_dir = options
        .data_dir
        .parent()
        .unwrap_or(&options.data_dir)
        .join("prometheus");
    let listen = SocketAddr::from((options.bind, options.prometheus_port));
    let prometheus = Prometheus::start(&program, &work_dir, listen, &targets).await?;
    stack.adopt(prometheus.child());
    step(format!(
        "prometheus: http://{}:{} (rules: {})",
        display_host(options.bind),
        options.prometheus_port,
        crate::prometheus::RULES_FILE
    ));
    stack.prometheus = Some(prometheus);
    Ok(())
}

/// Phase 8: wait until a service or Postgres dies on its own, and say so.
async fn watch(stack: &mut Stack) -> Result<()> {
    let postgres_pid = stack.postgres.as_ref().and_then(LocalPostgres::server_pid);
    let exits = stack.exits.as_mut();
    let service_exit = async {
        match exits {
            Some(exits) => exits.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        exited = service_exit => match exited {
            Some(Exited { name, status }) => bail!(
                "{name} exited unexpectedly ({status}); see the [{name}] lines above. Stopping \
                 everything."
            ),
            None => std::future::pending().await,
        },
        () = postgres_exit(postgres_pid) => {
            if let Some(postgres) = stack.postgres.as_mut() {
                postgres.mark_stopped();
            }
            bail!(
                "postgres stopped unexpectedly; see the [postgres] lines above. Stopping \
                 everything."
            )
        }
    }
}

/// Resolves when the Postgres server (`pid`, from its `postmaster.pid`) is gone.
async fn postgres_exit(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return std::future::pending().await;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    while crate::reaper::alive(pid) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "no exit status".to_owned(), |s| s.to_string())
}

/// Where to reach something bound to `bind` (`0.0.0.0` means every interface: use loopback).
fn display_host(bind: Ipv4Addr) -> Ipv4Addr {
    if bind.is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        bind
    }
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

/// Every port the stack needs is distinct and free; a Postgres server left running in the
/// data directory is named with the command that stops it.
fn check_ports(options: &DevOptions, planned: &[Planned<'_>]) -> Result<()> {
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
    if crate::prometheus::find().is_some() {
        wanted.push((
            options.prometheus_port,
            "prometheus".to_owned(),
            "--prometheus-port (env DEV_PROMETHEUS_PORT)".to_owned(),
        ));
    }
    for p in planned {
        let flag = |kind: &str| format!("--{kind} {}=PORT", p.name);
        wanted.push((p.port, p.name.to_owned(), flag("service-port")));
        wanted.push((
            p.metrics_port,
            format!("{} metrics", p.name),
            flag("metrics-port"),
        ));
    }
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for (port, what, flag) in &wanted {
        if let Some(other) = seen.insert(*port, what) {
            bail!("port {port} is configured for both {other} and {what}; change one with {flag}");
        }
        if StdTcpListener::bind((Ipv4Addr::UNSPECIFIED, *port)).is_err()
            || StdTcpListener::bind((options.bind, *port)).is_err()
        {
            if *port == options.pg_port
                && let Some(hint) = LocalPostgres::leftover_hint(&options.data_dir)
            {
                bail!("port {port} (postgres) is in use by {hint}");
            }
            bail!("{}", port_taken_message(*port, what, flag));
        }
    }
    Ok(())
}

fn port_taken_message(port: u16, what: &str, flag: &str) -> String {
    format!(
        "port {port} ({what}) is already in use. Stop whatever listens there (`ss -ltnp \
         'sport = :{port}'` names the process) or choose another port with {flag}."
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
