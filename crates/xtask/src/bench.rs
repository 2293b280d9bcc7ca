//! `cargo xtask bench`: the benchmark suite of the services.
//!
//! Steps: check wrk → build the binaries of the catalog (release) → record binary and
//! Lambda zip sizes → start a throwaway Postgres (temporary data directory, free port) and
//! run the migrations → measure start-up (spawn to first 200 on the health path, several
//! runs) → start the api and web on loopback with their production settings (catalog env,
//! `LOG_FORMAT=json`, logs to a file) → seed 100 messages → for each scenario: wrk warm-up,
//! then a measured wrk run → read the servers' memory from `/proc/<pid>/status` → stop
//! everything → print the table and write `results.json` and `results.md`.
//!
//! `--quick` runs ~3 s per scenario and writes to a temporary directory (or `--out`), never
//! to the committed `benchmarks/` files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use catalog::{Catalog, Service};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::output::step;
use crate::postgres::{LocalPostgres, PgBinaries, RunAs, find_on_path};
use crate::process::ManagedChild;

/// Load generator connections (the targets are stated at 64).
pub const CONNECTIONS: u32 = 64;
/// Messages in the database before the first scenario.
pub const SEED_MESSAGES: usize = 100;

/// Flags of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Smoke run: ~3 s per scenario (1 s warm-up, 2 s measured), 3 start-up runs, no fsync
    /// probe; writes to a temporary directory unless --out is given.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json and results.md (default: benchmarks/, or a temporary
    /// directory with --quick).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measured seconds per scenario (default 15, 2 with --quick).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Warm-up seconds per scenario, not measured (default 5, 1 with --quick).
    #[arg(long, value_name = "SECONDS")]
    pub warmup: Option<u64>,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = CONNECTIONS)]
    pub connections: u32,
    /// Load generator threads (default: the number of cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Start-up runs per service (default 9, 3 with --quick).
    #[arg(long)]
    pub startup_runs: Option<usize>,
    /// Run only these scenarios (repeatable or comma separated; see the table for names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Build and run the debug binaries instead of release (smoke tests only; numbers are
    /// meaningless).
    #[arg(long)]
    pub debug: bool,
    /// Do not run `cargo build` first (use the binaries already in target/).
    #[arg(long)]
    pub no_build: bool,
    /// Directory holding initdb and pg_ctl (default: found on PATH).
    #[arg(long, env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,
}

/// Resolved options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub root: PathBuf,
    pub catalog_path: PathBuf,
    pub quick: bool,
    pub out_dir: PathBuf,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    pub threads: u32,
    pub startup_runs: usize,
    pub only: Vec<String>,
    pub release: bool,
    pub build: bool,
    pub pg_bin: Option<PathBuf>,
    /// The command as typed, recorded in the results.
    pub command_line: String,
}

impl BenchArgs {
    pub fn into_options(self) -> BenchOptions {
        let root = crate::workspace_root();
        let quick = self.quick;
        let out_dir = match self.out {
            Some(dir) if dir.is_relative() => std::env::current_dir().unwrap_or_default().join(dir),
            Some(dir) => dir,
            None if quick => std::env::temp_dir().join(format!("xtask-bench-quick-{}", unique())),
            None => root.join("benchmarks"),
        };
        let cores = cores();
        let args: Vec<String> = std::env::args().skip(1).collect();
        BenchOptions {
            catalog_path: root.join(catalog::FILE_NAME),
            root,
            quick,
            out_dir,
            duration: Duration::from_secs(
                self.duration.unwrap_or(if quick { 2 } else { 15 }).max(1),
            ),
            warmup: Duration::from_secs(self.warmup.unwrap_or(if quick { 1 } else { 5 })),
            connections: self.connections.max(1),
            threads: self
                .threads
                .unwrap_or(cores as u32)
                .clamp(1, self.connections.max(1)),
            startup_runs: self
                .startup_runs
                .unwrap_or(if quick { 3 } else { 9 })
                .max(1),
            only: self.only,
            release: !self.debug,
            build: !self.no_build,
            pg_bin: self.pg_bin,
            command_line: format!("cargo xtask {}", args.join(" ")),
        }
    }
}

/// One load scenario.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    /// Service under load.
    service: &'static str,
    method: &'static str,
    path: &'static str,
    /// `Some(false)`: run with Postgres `synchronous_commit = off`.
    synchronous_commit: Option<bool>,
    target_rps: f64,
    target_p99_ms: Option<f64>,
    description: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "api_health",
            service: "api",
            method: "GET",
            path: "/api/health",
            synchronous_commit: None,
            target_rps: 30_000.0,
            target_p99_ms: None,
            description: "api liveness, no database",
        },
        Scenario {
            name: "api_list",
            service: "api",
            method: "GET",
            path: "/api/messages?limit=100",
            synchronous_commit: None,
            target_rps: 5_000.0,
            target_p99_ms: Some(20.0),
            description: "api lists 100 messages (one SELECT, JSON)",
        },
        Scenario {
            name: "web_index",
            service: "web",
            method: "GET",
            path: "/",
            synchronous_commit: None,
            target_rps: 3_000.0,
            target_p99_ms: None,
            description: "web page, server-rendered from an api call (50 messages)",
        },
        Scenario {
            name: "api_create",
            service: "api",
            method: "POST",
            path: "/api/messages",
            synchronous_commit: Some(true),
            target_rps: 4_000.0,
            target_p99_ms: None,
            description: "api creates a message; each a committed transaction (synchronous_commit = on, the default)",
        },
        Scenario {
            name: "api_create_async_commit",
            service: "api",
            method: "POST",
            path: "/api/messages",
            synchronous_commit: Some(false),
            target_rps: 4_000.0,
            target_p99_ms: None,
            description: "same, Postgres synchronous_commit = off (shows the cost of the WAL fsync)",
        },
    ]
}

/// Names of all scenarios, in run order.
pub fn scenario_names() -> Vec<&'static str> {
    scenarios().iter().map(|s| s.name).collect()
}

/// Peak resident memory target per service, bytes.
const TARGET_PEAK_RSS: u64 = 30 * 1024 * 1024;
/// Start-up target (median).
const TARGET_STARTUP_MS: f64 = 50.0;
/// Binary size target.
const TARGET_BINARY_BYTES: u64 = 15 * 1024 * 1024;
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs the suite; everything started is stopped on return, on error and on Ctrl-C.
pub async fn run(options: BenchOptions) -> Result<()> {
    let work = WorkDir::create()?;
    let mut stack = Stack::default();
    let outcome = tokio::select! {
        result = run_suite(&options, &work, &mut stack) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
    };
    let stopped = stack.shutdown().await;
    match (&outcome, &stopped) {
        (Ok(()), Ok(())) => work.remove(),
        _ => step(format!(
            "kept the work directory (service logs, Postgres data): {}",
            work.path.display()
        )),
    }
    outcome.and(stopped)
}

/// A scratch directory traversable by the unprivileged Postgres user.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("xtask-bench-{}", unique()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { path })
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:08x}", std::process::id())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Everything started, stopped in reverse order.
#[derive(Default)]
struct Stack {
    postgres: Option<LocalPostgres>,
    servers: Vec<Server>,
}

impl Stack {
    async fn shutdown(&mut self) -> Result<()> {
        while let Some(mut server) = self.servers.pop() {
            server.terminate(STOP_GRACE).await;
        }
        if let Some(mut postgres) = self.postgres.take() {
            step("stopping postgres (pg_ctl stop)");
            postgres.stop().await?;
        }
        Ok(())
    }
}

/// A service process whose output (one JSON log line per request) is drained from a pipe and
/// counted, as a log driver would consume it; only the last lines are kept, for error
/// messages. (Streaming every line through our console, or writing hundreds of MB to a file,
/// would steal CPU or disk from the servers.) Killed on drop.
struct Server {
    name: String,
    child: Child,
    log: Arc<Mutex<LogSink>>,
}

/// What a server wrote to stdout and stderr.
#[derive(Debug, Default)]
struct LogSink {
    bytes: u64,
    lines: u64,
    tail: Vec<u8>,
}

const LOG_TAIL_BYTES: usize = 16 * 1024;

fn drain(reader: impl Read + Send + 'static, sink: Arc<Mutex<LogSink>>) {
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = &buffer[..n];
                    let mut sink = sink
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    sink.bytes += n as u64;
                    sink.lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                    sink.tail.extend_from_slice(chunk);
                    if sink.tail.len() > 2 * LOG_TAIL_BYTES {
                        let cut = sink.tail.len() - LOG_TAIL_BYTES;
                        sink.tail.drain(..cut);
                    }
                }
            }
        }
    });
}

impl Server {
    fn spawn(name: &str, binary: &Path, env: &[(String, String)]) -> Result<Self> {
        let mut command = StdCommand::new(binary);
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", binary.display()))?;
        let log = Arc::new(Mutex::new(LogSink::default()));
        if let Some(stdout) = child.stdout.take() {
            drain(stdout, Arc::clone(&log));
        }
        if let Some(stderr) = child.stderr.take() {
            drain(stderr, Arc::clone(&log));
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// (bytes, lines) written so far.
    fn log_counts(&self) -> (u64, u64) {
        let sink = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (sink.bytes, sink.lines)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal(&mut self, signal: Signal) {
        if self.exited().is_none()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                step(format!(
                    "{} did not stop within {grace:?}, killing it",
                    self.name
                ));
                let _ = self.child.kill();
                return self.child.wait().ok();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The last lines of its log, for error messages.
    fn log_tail(&self) -> String {
        let sink = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = String::from_utf8_lossy(&sink.tail);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of a process, from /proc/<pid>/status (bytes).
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss: u64,
    hwm: u64,
}

fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in {path}"))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("bad {name} line in {path}: {line}"))?;
        Ok(kb * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
    })
}

/// (total, idle) CPU time of the machine, in ticks, from the first line of /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((fields.iter().sum(), idle))
}

/// Busy share of the whole machine's CPU over `window`, in percent. Sampled while the
/// stack is idle, it measures what else runs on the machine (nothing is pinned).
async fn busy_percent(window: Duration) -> f64 {
    let Some((total_a, idle_a)) = cpu_times() else {
        return 0.0;
    };
    tokio::time::sleep(window).await;
    let Some((total_b, idle_b)) = cpu_times() else {
        return 0.0;
    };
    let total = total_b.saturating_sub(total_a).max(1) as f64;
    let idle = idle_b.saturating_sub(idle_a) as f64;
    (100.0 * (total - idle) / total).clamp(0.0, 100.0)
}

/// Free loopback ports, distinct (all bound at once).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// One raw HTTP/1.1 GET; true on a 2xx. Minimal on purpose: start-up is timed in ms.
fn probe(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 2")
}

async fn cargo_build(root: &Path, args: &[&str]) -> Result<()> {
    step(format!("cargo build {}", args.join(" ")));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .arg("build")
        .args(args)
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the build failed ({status}); see the compiler output above");
    }
    Ok(())
}

/// Output of a command, or None if it cannot be run.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = StdCommand::new(program).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some(text.trim().to_owned())
}

struct Planned<'a> {
    name: &'a str,
    service: &'a Service,
    binary: PathBuf,
}

async fn run_suite(options: &BenchOptions, work: &WorkDir, stack: &mut Stack) -> Result<()> {
    let started = Instant::now();
    // 1. Prerequisites.
    let wrk = find_on_path("wrk").context(
        "the load generator `wrk` was not found on PATH. Install it (Debian/Ubuntu: \
         `apt-get install wrk`; macOS: `brew install wrk`; Nix: `nix shell nixpkgs#wrk`) and \
         run `cargo xtask bench` again",
    )?;
    let catalog = Catalog::load(&options.catalog_path)
        .with_context(|| format!("cannot load the catalog {}", options.catalog_path.display()))?;
    let all = scenarios();
    for name in &options.only {
        if !all.iter().any(|s| s.name == name) {
            bail!(
                "unknown scenario `{name}` in --only (scenarios: {})",
                scenario_names().join(", ")
            );
        }
    }
    let selected: Vec<Scenario> = all
        .into_iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|o| o == s.name))
        .collect();
    let bins = PgBinaries::find(options.pg_bin.as_deref()).map_err(anyhow::Error::msg)?;
    let run_as = RunAs::detect().map_err(anyhow::Error::msg)?;
    let (api_name, api) = catalog
        .services
        .get_key_value("api")
        .context("the catalog has no `api` service")?;
    let (web_name, web) = catalog
        .services
        .get_key_value("web")
        .context("the catalog has no `web` service")?;
    let (migrate_name, migrate) = catalog
        .jobs
        .iter()
        .find(|(_, j)| j.database)
        .context("the catalog has no database job (migrations)")?;

    // 2. Build.
    let profile = if options.release { "release" } else { "debug" };
    let bin_dir = crate::dev::target_dir(&options.root).join(profile);
    let mut crates: Vec<&str> = catalog
        .services
        .values()
        .map(|s| s.crate_name.as_str())
        .chain(catalog.jobs.values().map(|j| j.crate_name.as_str()))
        .collect();
    crates.sort_unstable();
    crates.dedup();
    if options.build {
        let mut args = Vec::new();
        if options.release {
            args.push("--release");
        }
        for name in &crates {
            args.extend(["-p", name]);
        }
        cargo_build(&options.root, &args).await?;
    } else {
        step("skipping the build (--no-build)");
    }
    let binary = |crate_name: &str| -> Result<PathBuf> {
        let path = bin_dir.join(crate_name);
        if !path.is_file() {
            bail!(
                "{} does not exist; build it (`cargo build{} -p {crate_name}`) or run without --no-build",
                path.display(),
                if options.release { " --release" } else { "" }
            );
        }
        Ok(path)
    };

    // 3. Sizes.
    let mut sizes = Vec::new();
    for name in &crates {
        let path = binary(name)?;
        sizes.push(artifact(name, "service binary", &path, "")?);
    }
    let lambda_binary = {
        let program = migrate.command.first().context("job without command")?;
        let musl_installed = command_output("rustc", &["--print", "sysroot"])
            .map(|sysroot| {
                Path::new(&sysroot)
                    .join("lib/rustlib")
                    .join(MUSL_TARGET)
                    .is_dir()
            })
            .unwrap_or(false);
        if musl_installed && options.release {
            if options.build {
                cargo_build(
                    &options.root,
                    &[
                        "--release",
                        "--target",
                        MUSL_TARGET,
                        "-p",
                        &migrate.crate_name,
                    ],
                )
                .await?;
            }
            (
                crate::dev::target_dir(&options.root)
                    .join(MUSL_TARGET)
                    .join("release")
                    .join(program),
                format!("static musl build ({MUSL_TARGET})"),
            )
        } else {
            (
                binary(program)?,
                format!(
                    "the {MUSL_TARGET} target is not installed in this toolchain, so this is the \
                     glibc {profile} build of `{program}`; the deployed zip (nix/lambda.nix) holds \
                     the static musl build"
                ),
            )
        }
    };
    sizes.extend(lambda_zip(&lambda_binary.0, &lambda_binary.1, work)?);

    // 4. Postgres.
    let ports = free_ports(7)?;
    let (pg_port, api_port, api_metrics, web_port, web_metrics) =
        (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let pg_dir = work.path.join("pgdata");
    let mut postgres = LocalPostgres::new(bins.clone(), run_as.clone(), pg_dir.clone(), pg_port);
    postgres.prepare().await?;
    step(format!(
        "starting a throwaway postgres on 127.0.0.1:{pg_port}"
    ));
    let pg_started = postgres.start().await;
    let database_url = postgres.database_url();
    stack.postgres = Some(postgres);
    pg_started?;
    let pg_tools = PgTools::new(&bins, pg_port);
    let fsync_probe = if options.quick {
        None
    } else {
        pg_tools.fsync_rate(&work.path)
    };

    // 5. Migrations.
    let migrate_binary = binary(&migrate.crate_name)?;
    step(format!(
        "running job {migrate_name}: {}",
        migrate.command.join(" ")
    ));
    let mut command = Command::new(&migrate_binary);
    command
        .args(&migrate.command[1..])
        .env_clear()
        .envs(&migrate.env)
        .env("LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .env("DATABASE_URL", &database_url);
    let status = ManagedChild::spawn(migrate_name, command, None)?
        .wait()
        .await;
    if !status.is_some_and(|s| s.success()) {
        bail!("the migrations failed ({status:?}); see the [{migrate_name}] lines above");
    }

    let api_plan = Planned {
        name: api_name,
        service: api,
        binary: binary(&api.crate_name)?,
    };
    let web_plan = Planned {
        name: web_name,
        service: web,
        binary: binary(&web.crate_name)?,
    };
    let api_url = format!("http://127.0.0.1:{api_port}");
    let api_env = service_env(api, api_port, api_metrics, Some(&database_url), &[]);
    let web_env = service_env(
        web,
        web_port,
        web_metrics,
        None,
        &[(Service::url_variable(api_name), api_url.clone())],
    );

    // 6. Start-up: spawn to first 2xx on the health path, several runs.
    let mut startup = Vec::new();
    for (plan, env) in [(&api_plan, &api_env), (&web_plan, &web_env)] {
        step(format!(
            "start-up of {}: {} runs (spawn to first 2xx on {})",
            plan.name, options.startup_runs, plan.service.health
        ));
        let port = if plan.name == api_name {
            api_port
        } else {
            web_port
        };
        let mut runs = Vec::new();
        for _ in 0..options.startup_runs {
            runs.push(startup_once(plan, env, port).await?);
        }
        startup.push(StartupResult::new(plan.name, runs));
    }

    // 7. The stack under test.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    for (plan, env, port) in [
        (&api_plan, &api_env, api_port),
        (&web_plan, &web_env, web_port),
    ] {
        step(format!("starting {} on 127.0.0.1:{port}", plan.name));
        stack
            .servers
            .push(Server::spawn(plan.name, &plan.binary, env)?);
        let server = stack.servers.last_mut().context("just pushed")?;
        wait_http(server, port, &plan.service.health, Duration::from_secs(30)).await?;
    }
    {
        let server = stack.servers.first_mut().context("api started")?;
        wait_http(server, api_port, "/api/ready", Duration::from_secs(30)).await?;
    }
    step(format!("seeding {SEED_MESSAGES} messages"));
    for i in 1..=SEED_MESSAGES {
        let response = http
            .post(format!("{api_url}/api/messages"))
            .json(&json!({
                "content": format!("Benchmark message {i}: the quick brown fox jumps over the lazy dog.")
            }))
            .send()
            .await
            .context("cannot seed messages")?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!("seeding: POST /api/messages answered {}", response.status());
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pids: BTreeMap<String, u32> = stack
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.pid()))
        .collect();
    let idle: BTreeMap<String, Memory> = pids
        .iter()
        .map(|(name, pid)| Ok((name.clone(), memory(*pid)?)))
        .collect::<Result<_>>()?;

    // 8. Scenarios.
    let scripts = Scripts::write(&work.path)?;
    let mut results = Vec::new();
    for scenario in &selected {
        if let Some(on) = scenario.synchronous_commit {
            pg_tools.set_synchronous_commit(&pg_dir, on).await?;
        }
        let port = if scenario.service == "web" {
            web_port
        } else {
            api_port
        };
        let url = format!("http://127.0.0.1:{port}{}", scenario.path);
        let script = if scenario.method == "POST" {
            &scripts.post
        } else {
            &scripts.get
        };
        step(format!(
            "{}: {} {} — warm-up {}s, then {}s measured, {} connections, {} threads",
            scenario.name,
            scenario.method,
            scenario.path,
            options.warmup.as_secs(),
            options.duration.as_secs(),
            options.connections,
            options.threads
        ));
        if !options.warmup.is_zero() {
            run_wrk(&wrk, options, options.warmup, script, &url).await?;
        }
        let background = busy_percent(Duration::from_millis(if options.quick {
            300
        } else {
            1000
        }))
        .await;
        if background > 15.0 {
            step(format!(
                "warning: {background:.0}% of the CPU is busy with other processes before {}",
                scenario.name
            ));
        }
        let wrk_result = run_wrk(&wrk, options, options.duration, script, &url).await?;
        for server in &mut stack.servers {
            if let Some(status) = server.exited() {
                bail!(
                    "{} exited during {} ({status}); last log lines:\n{}",
                    server.name,
                    scenario.name,
                    server.log_tail()
                );
            }
        }
        let after: BTreeMap<String, Memory> = pids
            .iter()
            .map(|(name, pid)| Ok((name.clone(), memory(*pid)?)))
            .collect::<Result<_>>()?;
        let result = ScenarioResult {
            scenario: scenario.clone(),
            wrk: wrk_result,
            memory_after: after,
            background_cpu: background,
        };
        step(format!(
            "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            scenario.name,
            result.wrk.rps(),
            result.wrk.p50_ms(),
            result.wrk.p99_ms(),
            result.wrk.errors()
        ));
        results.push(result);
    }
    let peak: BTreeMap<String, Memory> = pids
        .iter()
        .map(|(name, pid)| Ok((name.clone(), memory(*pid)?)))
        .collect::<Result<_>>()?;
    let pg_settings = pg_tools.settings();
    let logs: BTreeMap<String, (u64, u64)> = stack
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.log_counts()))
        .collect();

    // 9. Stop the services (clean exit expected).
    let mut exits = BTreeMap::new();
    while let Some(mut server) = stack.servers.pop() {
        step(format!("stopping {}", server.name));
        let status = server.terminate(STOP_GRACE).await;
        exits.insert(
            server.name.clone(),
            status.map_or("killed".to_owned(), |s| s.to_string()),
        );
    }

    // 10. Report.
    let machine = machine_info(options, &wrk, &bins);
    let report = Report {
        options,
        machine,
        results,
        idle,
        peak,
        startup,
        sizes,
        fsync_probe,
        pg_settings,
        logs,
        exits,
        elapsed: started.elapsed(),
    };
    let json = report.json();
    let markdown = report.markdown();
    println!("\n{}", report.table());
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create {}", options.out_dir.display()))?;
    let json_path = options.out_dir.join("results.json");
    let md_path = options.out_dir.join("results.md");
    std::fs::write(
        &json_path,
        format!("{}\n", serde_json::to_string_pretty(&json)?),
    )
    .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    step(format!(
        "wrote {} and {}",
        json_path.display(),
        md_path.display()
    ));
    Ok(())
}

/// Production environment of a service: the catalog's `env`, JSON logs, ports, and its
/// database or upstream URLs. Nothing else of ours leaks in (PATH is added at spawn).
fn service_env(
    service: &Service,
    port: u16,
    metrics_port: u16,
    database_url: Option<&str>,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = service
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push(("LOG_FORMAT".into(), "json".into()));
    env.push(("PORT".into(), port.to_string()));
    env.push(("METRICS_PORT".into(), metrics_port.to_string()));
    if let Some(url) = database_url {
        env.push(("DATABASE_URL".into(), url.to_owned()));
    }
    env.extend(extra.iter().cloned());
    env
}

async fn wait_http(server: &mut Server, port: u16, path: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = server.exited() {
            bail!(
                "{} exited before answering {path} ({status}); last log lines:\n{}",
                server.name,
                server.log_tail()
            );
        }
        let path_owned = path.to_owned();
        if tokio::task::spawn_blocking(move || probe(port, &path_owned)).await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer {path} with 2xx within {timeout:?}; last log lines:\n{}",
                server.name,
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One start-up: spawn, poll the health path every 0.5 ms, stop. Returns the milliseconds
/// from just before spawn to the first 2xx.
async fn startup_once(plan: &Planned<'_>, env: &[(String, String)], port: u16) -> Result<f64> {
    let name = plan.name.to_owned();
    let binary = plan.binary.clone();
    let env = env.to_vec();
    let health = plan.service.health.clone();
    let (mut server, elapsed) = tokio::task::spawn_blocking(move || -> Result<(Server, f64)> {
        let start = Instant::now();
        let mut server = Server::spawn(&name, &binary, &env)?;
        let deadline = start + Duration::from_secs(20);
        loop {
            if probe(port, &health) {
                return Ok((server, start.elapsed().as_secs_f64() * 1000.0));
            }
            if let Some(status) = server.exited() {
                bail!(
                    "{name} exited during start-up ({status}); last log lines:\n{}",
                    server.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not become healthy within 20 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
    .await??;
    server.terminate(STOP_GRACE).await;
    Ok(elapsed)
}

#[derive(Debug, Clone)]
struct StartupResult {
    service: String,
    runs_ms: Vec<f64>,
}

impl StartupResult {
    fn new(service: &str, runs_ms: Vec<f64>) -> Self {
        Self {
            service: service.to_owned(),
            runs_ms,
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.runs_ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    fn best(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// The wrk Lua scripts: a `done` hook printing one JSON line, and the POST body.
struct Scripts {
    get: PathBuf,
    post: PathBuf,
}

const DONE_LUA: &str = r#"
-- Written by `cargo xtask bench`: print the summary as one JSON line.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'XTASK_BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%.0f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
"#;

const POST_LUA: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"content":"Benchmark post: the quick brown fox jumps over the lazy dog."}'
"#;

impl Scripts {
    fn write(dir: &Path) -> Result<Self> {
        let get = dir.join("get.lua");
        let post = dir.join("post.lua");
        std::fs::write(&get, DONE_LUA)?;
        std::fs::write(&post, format!("{POST_LUA}{DONE_LUA}"))?;
        Ok(Self { get, post })
    }
}

/// wrk's summary of one run.
#[derive(Debug, Clone)]
struct WrkResult {
    raw: Value,
    /// wrk's human-readable output.
    text: String,
}

impl WrkResult {
    fn num(&self, path: &[&str]) -> f64 {
        let mut v = &self.raw;
        for key in path {
            v = &v[*key];
        }
        v.as_f64().unwrap_or(0.0)
    }

    fn requests(&self) -> f64 {
        self.num(&["requests"])
    }

    fn rps(&self) -> f64 {
        let seconds = self.num(&["duration_us"]) / 1e6;
        if seconds > 0.0 {
            self.requests() / seconds
        } else {
            0.0
        }
    }

    fn p50_ms(&self) -> f64 {
        self.num(&["latency_us", "p50"]) / 1000.0
    }

    fn p99_ms(&self) -> f64 {
        self.num(&["latency_us", "p99"]) / 1000.0
    }

    /// Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    fn errors(&self) -> u64 {
        ["connect", "read", "write", "status", "timeout"]
            .iter()
            .map(|k| self.num(&["errors", k]) as u64)
            .sum()
    }
}

async fn run_wrk(
    wrk: &Path,
    options: &BenchOptions,
    duration: Duration,
    script: &Path,
    url: &str,
) -> Result<WrkResult> {
    let output = Command::new(wrk)
        .arg(format!("-t{}", options.threads))
        .arg(format!("-c{}", options.connections))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "2s", "--latency", "-s"])
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("wrk failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("XTASK_BENCH_JSON "))
        .with_context(|| format!("no summary line in wrk's output:\n{stdout}\n{stderr}"))?;
    let raw: Value = serde_json::from_str(line)
        .with_context(|| format!("cannot parse wrk's summary: {line}"))?;
    let text = stdout
        .lines()
        .filter(|l| !l.starts_with("XTASK_BENCH_JSON"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(WrkResult { raw, text })
}

/// psql and pg_test_fsync next to pg_ctl, for settings and the fsync probe (optional).
struct PgTools {
    dir: Option<PathBuf>,
    port: u16,
}

impl PgTools {
    fn new(bins: &PgBinaries, port: u16) -> Self {
        let dir = bins
            .pg_ctl
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self { dir, port }
    }

    fn tool(&self, name: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .or_else(|| find_on_path(name))
    }

    /// `SHOW name` through psql, if psql is available.
    fn show(&self, name: &str) -> Option<String> {
        let psql = self.tool("psql")?;
        let output = StdCommand::new(psql)
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-U",
                crate::postgres::DB_USER,
            ])
            .args(["-p", &self.port.to_string(), "-d", crate::postgres::DB_NAME])
            .args(["-c", &format!("SHOW {name}")])
            .env_remove("PGPASSWORD")
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    fn settings(&self) -> BTreeMap<String, String> {
        [
            "server_version",
            "max_connections",
            "shared_buffers",
            "fsync",
            "synchronous_commit",
            "wal_sync_method",
        ]
        .into_iter()
        .filter_map(|name| self.show(name).map(|v| (name.to_owned(), v)))
        .collect()
    }

    /// Sets `synchronous_commit` in postgresql.conf and reloads (SIGHUP to the postmaster).
    async fn set_synchronous_commit(&self, data_dir: &Path, on: bool) -> Result<()> {
        let value = if on { "on" } else { "off" };
        let conf = data_dir.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("synchronous_commit"))
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = writeln!(text, "synchronous_commit = '{value}'");
        std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
        let pid_file = data_dir.join("postmaster.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("cannot read {}", pid_file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .context("bad postmaster.pid")?;
        kill(Pid::from_raw(pid), Signal::SIGHUP).context("cannot signal the postmaster")?;
        // The reload is asynchronous: wait until it shows (or a moment, without psql).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.show("synchronous_commit") {
                Some(v) if v == value => break,
                None => break,
                Some(_) if Instant::now() > deadline => {
                    bail!("Postgres did not apply synchronous_commit = {value}")
                }
                Some(_) => {}
            }
        }
        step(format!("postgres: synchronous_commit = {value}"));
        Ok(())
    }

    /// The disk's fdatasync rate (one 8 kB write), from pg_test_fsync, if available.
    fn fsync_rate(&self, dir: &Path) -> Option<String> {
        let tool = self.tool("pg_test_fsync")?;
        step("probing the disk's fsync rate (pg_test_fsync, 2 s per method)");
        let file = dir.join("fsync.probe");
        let mut child = StdCommand::new(&tool)
            .args(["-s", "2", "-f"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut found = None;
        if let Some(stdout) = child.stdout.take() {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let trimmed = line.trim();
                if trimmed.starts_with("fdatasync") && trimmed.contains("ops/sec") {
                    found = Some(trimmed.split_whitespace().collect::<Vec<_>>().join(" "));
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&file);
        found
    }
}

/// A built artifact and its size.
#[derive(Debug, Clone)]
struct Artifact {
    name: String,
    kind: String,
    bytes: u64,
    linkage: String,
    note: String,
    target: Option<u64>,
}

fn linkage(path: &Path) -> String {
    command_output("file", &["-b", &path.to_string_lossy()])
        .map(|description| {
            let link = if description.contains("statically linked")
                || description.contains("static-pie")
            {
                "static"
            } else if description.contains("dynamically linked") {
                "dynamic (glibc)"
            } else {
                "?"
            };
            let strip = if description.contains("not stripped") {
                ", not stripped"
            } else if description.contains("stripped") {
                ", stripped"
            } else {
                ""
            };
            format!("{link}{strip}")
        })
        .unwrap_or_else(|| "unknown (`file` not installed)".to_owned())
}

fn artifact(name: &str, kind: &str, path: &Path, note: &str) -> Result<Artifact> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    Ok(Artifact {
        name: name.to_owned(),
        kind: kind.to_owned(),
        bytes,
        linkage: linkage(path),
        note: note.to_owned(),
        target: (kind == "service binary").then_some(TARGET_BINARY_BYTES),
    })
}

/// The Lambda zip (`bootstrap` = the migrate binary), built with `zip` as nix/lambda.nix does.
fn lambda_zip(binary: &Path, note: &str, work: &WorkDir) -> Result<Vec<Artifact>> {
    let dir = work.path.join("lambda");
    std::fs::create_dir_all(&dir)?;
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(binary, &bootstrap)
        .with_context(|| format!("cannot copy {}", binary.display()))?;
    let mut out = vec![artifact(
        "bootstrap",
        "lambda zip content",
        &bootstrap,
        note,
    )?];
    let zip = dir.join("lambda.zip");
    let zipped = StdCommand::new("zip")
        .current_dir(&dir)
        .args(["-q", "-9", "-X", "lambda.zip", "bootstrap"])
        .status();
    match zipped {
        Ok(status) if status.success() => {
            let mut a = artifact("lambda.zip", "lambda zip", &zip, note)?;
            a.linkage = String::new();
            out.push(a);
        }
        _ => step("`zip` is not installed: recording the size of `bootstrap` only"),
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct ScenarioResult {
    scenario: Scenario,
    wrk: WrkResult,
    memory_after: BTreeMap<String, Memory>,
    /// Machine CPU busy (%) just before the measured run, the stack idle.
    background_cpu: f64,
}

#[derive(Debug, Clone)]
struct Machine {
    cores: usize,
    cpu_model: String,
    memory_total: String,
    kernel: String,
    date: String,
    git_rev: String,
    rustc: String,
    wrk: String,
    postgres: String,
}

fn machine_info(options: &BenchOptions, wrk: &Path, bins: &PgBinaries) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_total = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let root = options.root.to_string_lossy().into_owned();
    let git_rev = command_output("git", &["-C", &root, "rev-parse", "--short=12", "HEAD"])
        .filter(|r| !r.is_empty() && !r.contains(' '))
        .map_or_else(
            || "unknown".to_owned(),
            |rev| {
                let dirty = command_output("git", &["-C", &root, "status", "--porcelain"])
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{rev} (with uncommitted changes)")
                } else {
                    rev
                }
            },
        );
    let first_line = |s: Option<String>| {
        s.and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned())
    };
    Machine {
        cores: cores(),
        cpu_model,
        memory_total,
        kernel,
        date: command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_default(),
        git_rev,
        rustc: first_line(command_output("rustc", &["--version"])),
        wrk: first_line(command_output(&wrk.to_string_lossy(), &["-v"]))
            .split(" Copyright")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        postgres: first_line(command_output(
            &bins.pg_ctl.to_string_lossy(),
            &["--version"],
        )),
    }
}

struct Report<'a> {
    options: &'a BenchOptions,
    machine: Machine,
    results: Vec<ScenarioResult>,
    idle: BTreeMap<String, Memory>,
    peak: BTreeMap<String, Memory>,
    startup: Vec<StartupResult>,
    sizes: Vec<Artifact>,
    fsync_probe: Option<String>,
    pg_settings: BTreeMap<String, String>,
    /// (bytes, lines) of log output per service over the whole run.
    logs: BTreeMap<String, (u64, u64)>,
    exits: BTreeMap<String, String>,
    elapsed: Duration,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

impl ScenarioResult {
    fn met(&self) -> bool {
        self.wrk.errors() == 0
            && self.wrk.rps() >= self.scenario.target_rps
            && self
                .scenario
                .target_p99_ms
                .is_none_or(|t| self.wrk.p99_ms() < t)
    }

    fn target_text(&self) -> String {
        let mut t = format!("≥ {:.0}/s", self.scenario.target_rps);
        if let Some(p99) = self.scenario.target_p99_ms {
            let _ = write!(t, ", p99 < {p99:.0} ms");
        }
        t.push_str(", 0 errors");
        t
    }
}

impl Report<'_> {
    fn json(&self) -> Value {
        let o = self.options;
        json!({
            "command": o.command_line,
            "quick": o.quick,
            "profile": if o.release { "release" } else { "debug" },
            "machine": {
                "cores": self.machine.cores,
                "cpu_model": self.machine.cpu_model,
                "memory_total": self.machine.memory_total,
                "kernel": self.machine.kernel,
                "date": self.machine.date,
                "git_rev": self.machine.git_rev,
                "rustc": self.machine.rustc,
                "load_generator": self.machine.wrk,
                "postgres": self.machine.postgres,
                "pinning": "none: wrk, Postgres, api and web share all cores",
            },
            "load": {
                "connections": o.connections,
                "threads": o.threads,
                "warmup_seconds": o.warmup.as_secs(),
                "duration_seconds": o.duration.as_secs(),
                "seed_messages": SEED_MESSAGES,
                "log_settings": "catalog env (RUST_LOG=info), LOG_FORMAT=json, stdout drained from a pipe",
            },
            "postgres_settings": self.pg_settings,
            "fsync_probe": self.fsync_probe,
            "scenarios": self.results.iter().map(|r| json!({
                "name": r.scenario.name,
                "service": r.scenario.service,
                "method": r.scenario.method,
                "path": r.scenario.path,
                "description": r.scenario.description,
                "synchronous_commit": r.scenario.synchronous_commit.map(|on| if on { "on" } else { "off" }),
                "requests": r.wrk.requests() as u64,
                "requests_per_second": round(r.wrk.rps(), 1),
                "latency_ms": {
                    "p50": round(r.wrk.p50_ms(), 3),
                    "p90": round(r.wrk.num(&["latency_us", "p90"]) / 1000.0, 3),
                    "p99": round(r.wrk.p99_ms(), 3),
                    "p99_9": round(r.wrk.num(&["latency_us", "p999"]) / 1000.0, 3),
                    "mean": round(r.wrk.num(&["latency_us", "mean"]) / 1000.0, 3),
                    "max": round(r.wrk.num(&["latency_us", "max"]) / 1000.0, 3),
                },
                "errors": r.wrk.errors(),
                "error_detail": r.wrk.raw["errors"],
                "bytes_per_response": if r.wrk.requests() > 0.0 { (r.wrk.num(&["bytes"]) / r.wrk.requests()).round() } else { 0.0 },
                "rss_after_bytes": r.memory_after.iter().map(|(k, m)| (k.clone(), json!({"rss": m.rss, "hwm": m.hwm}))).collect::<BTreeMap<_, _>>(),
                "target": {
                    "requests_per_second": r.scenario.target_rps,
                    "p99_ms": r.scenario.target_p99_ms,
                    "errors": 0,
                    "met": r.met(),
                },
                "background_cpu_percent": round(r.background_cpu, 1),
                "wrk_output": r.wrk.text,
            })).collect::<Vec<_>>(),
            "memory": self.peak.iter().map(|(name, peak)| {
                let idle = self.idle.get(name).copied().unwrap_or_default();
                (name.clone(), json!({
                    "idle_rss_bytes": idle.rss,
                    "peak_rss_bytes": peak.hwm,
                    "rss_at_end_bytes": peak.rss,
                    "target_peak_bytes": TARGET_PEAK_RSS,
                    "met": peak.hwm < TARGET_PEAK_RSS,
                }))
            }).collect::<BTreeMap<_, _>>(),
            "startup": self.startup.iter().map(|s| (s.service.clone(), json!({
                "runs_ms": s.runs_ms.iter().map(|v| round(*v, 2)).collect::<Vec<_>>(),
                "best_ms": round(s.best(), 2),
                "median_ms": round(s.median(), 2),
                "target_ms": TARGET_STARTUP_MS,
                "met": s.median() < TARGET_STARTUP_MS,
            }))).collect::<BTreeMap<_, _>>(),
            "sizes": self.sizes.iter().map(|a| json!({
                "name": a.name,
                "kind": a.kind,
                "bytes": a.bytes,
                "linkage": a.linkage,
                "note": a.note,
                "target_bytes": a.target,
                "met": a.target.map(|t| a.bytes < t),
            })).collect::<Vec<_>>(),
            "log_output": self.logs.iter().map(|(k, (bytes, lines))| (k.clone(), json!({"bytes": bytes, "lines": lines}))).collect::<BTreeMap<_, _>>(),
            "exit_status_on_sigterm": self.exits,
            "elapsed_seconds": self.elapsed.as_secs(),
        })
    }

    /// The console table (also the first table of the Markdown).
    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| scenario | request | req/s | p50 ms | p99 ms | errors | target | met | other CPU % |"
        );
        let _ = writeln!(
            t,
            "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"
        );
        for r in &self.results {
            let _ = writeln!(
                t,
                "| {} | `{} {}` ({}) | {:.0} | {:.2} | {:.2} | {} | {} | {} | {:.0} |",
                r.scenario.name,
                r.scenario.method,
                r.scenario.path,
                r.scenario.service,
                r.wrk.rps(),
                r.wrk.p50_ms(),
                r.wrk.p99_ms(),
                r.wrk.errors(),
                r.target_text(),
                yes_no(r.met()),
                r.background_cpu,
            );
        }
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "| service | idle RSS MiB | peak RSS MiB (VmHWM) | start-up best ms | start-up median ms | target | met |"
        );
        let _ = writeln!(t, "| --- | ---: | ---: | ---: | ---: | --- | --- |");
        for (name, peak) in &self.peak {
            let idle = self.idle.get(name).copied().unwrap_or_default();
            let startup = self.startup.iter().find(|s| &s.service == name);
            let (best, median) = startup.map_or((0.0, 0.0), |s| (s.best(), s.median()));
            let met = peak.hwm < TARGET_PEAK_RSS && startup.is_some() && median < TARGET_STARTUP_MS;
            let _ = writeln!(
                t,
                "| {name} | {:.1} | {:.1} | {best:.1} | {median:.1} | peak < 30 MiB, start-up < {TARGET_STARTUP_MS:.0} ms | {} |",
                mib(idle.rss),
                mib(peak.hwm),
                yes_no(met),
            );
        }
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "| artifact | kind | size MiB | bytes | linkage | target | met |"
        );
        let _ = writeln!(t, "| --- | --- | ---: | ---: | --- | --- | --- |");
        for a in &self.sizes {
            let _ = writeln!(
                t,
                "| {} | {} | {:.2} | {} | {} | {} | {} |",
                a.name,
                a.kind,
                mib(a.bytes),
                a.bytes,
                a.linkage,
                a.target
                    .map_or("—".to_owned(), |t| format!("< {:.0} MiB", mib(t))),
                a.target.map_or("—", |t| yes_no(a.bytes < t)),
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let o = self.options;
        let m = &self.machine;
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmark results\n");
        if o.quick {
            let _ = writeln!(
                md,
                "> Quick mode (smoke run): {} s per scenario; numbers are indicative only.\n",
                o.warmup.as_secs() + o.duration.as_secs()
            );
        }
        let _ = writeln!(
            md,
            "Made by `{}` (see `crates/xtask/src/bench.rs`).\n",
            o.command_line
        );
        let _ = writeln!(md, "- Date: {}; git revision: {}", m.date, m.git_rev);
        let _ = writeln!(
            md,
            "- Machine: {} cores, {}, {} RAM, Linux {}",
            m.cores, m.cpu_model, m.memory_total, m.kernel
        );
        let _ = writeln!(
            md,
            "- Load: {} ({} threads, {} connections, HTTP/1.1 keep-alive), {} s warm-up then {} s measured per scenario; {} messages seeded first",
            m.wrk,
            o.threads,
            o.connections,
            o.warmup.as_secs(),
            o.duration.as_secs(),
            SEED_MESSAGES
        );
        let _ = writeln!(
            md,
            "- Everything on this one machine, on loopback, nothing pinned: wrk, {} ({}), the api and the web share the {} cores",
            m.postgres,
            self.pg_settings
                .iter()
                .filter(
                    |(k, _)| k.as_str() != "server_version" && k.as_str() != "synchronous_commit"
                )
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            m.cores
        );
        let _ = writeln!(
            md,
            "- Services: {} build ({}), production settings: the catalog's env (`RUST_LOG=info`), `LOG_FORMAT=json`, stdout drained from a pipe as a log driver would (one JSON line per request); api pool: its default",
            if o.release { "release" } else { "debug" },
            m.rustc
        );
        if let Some(fsync) = &self.fsync_probe {
            let _ = writeln!(md, "- Disk: pg_test_fsync, one 8 kB write: `{fsync}`");
        }
        let _ = writeln!(
            md,
            "- Errors = non-2xx/3xx responses + socket errors (connect, read, write, timeout); latency is wrk's, per request, at {} connections\n",
            o.connections
        );
        let _ = writeln!(md, "## Results\n");
        md.push_str(&self.table());
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "*other CPU %*: share of the machine's CPU busy during the second before the measured run, while the benchmarked stack was idle (other work on the machine; nothing is pinned).\n"
        );
        let _ = writeln!(md, "## Scenarios\n");
        for r in &self.results {
            let _ = writeln!(md, "- `{}`: {}", r.scenario.name, r.scenario.description);
        }
        let _ = writeln!(md);
        let _ = writeln!(md, "## Details\n");
        let _ = writeln!(
            md,
            "- Memory: idle RSS = `VmRSS` after start-up and seeding, before any load; peak = `VmHWM` after all scenarios."
        );
        let _ = writeln!(
            md,
            "- Start-up: process spawn to the first 2xx on the health path (polled every 0.5 ms over a fresh connection), {} runs per service:",
            o.startup_runs
        );
        for s in &self.startup {
            let _ = writeln!(
                md,
                "  - {}: {} ms",
                s.service,
                s.runs_ms
                    .iter()
                    .map(|v| format!("{v:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for a in self.sizes.iter().filter(|a| !a.note.is_empty()).take(1) {
            let _ = writeln!(md, "- Lambda zip: {}.", a.note);
        }
        let _ = writeln!(
            md,
            "- Log output over the run (JSON, drained from the pipe): {}",
            self.logs
                .iter()
                .map(|(k, (bytes, lines))| format!("{k}: {lines} lines, {:.0} MiB", mib(*bytes)))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let _ = writeln!(
            md,
            "- Exit on SIGTERM after the load: {}",
            self.exits
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(md, "- Whole run: {} s.", self.elapsed.as_secs());
        let _ = writeln!(
            md,
            "\nRaw numbers (all percentiles, wrk output, per-scenario memory): `results.json`."
        );
        if !o.quick {
            let _ = writeln!(
                md,
                "Profiling notes and before/after numbers: [README.md](README.md)."
            );
        }
        md
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
