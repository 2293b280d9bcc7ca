//! The stack under test: a throwaway Postgres, the migrations, the api and the web on
//! loopback with their production settings; started, checked for health, stopped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use catalog::{Job, Service};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

use crate::output::step;
use crate::postgres::{LocalPostgres, PgBinaries, RunAs};
use crate::process::ManagedChild;

/// How long a service may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// Log bytes kept per server, for error messages.
const LOG_TAIL_BYTES: usize = 16 * 1024;

/// A scratch directory traversable by the unprivileged Postgres user.
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    pub fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("xtask-bench-{}", unique()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { path })
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A name part unique to this process and moment.
pub fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:08x}", std::process::id())
}

/// Everything started, stopped in reverse order.
#[derive(Default)]
pub struct Stack {
    pub postgres: Option<LocalPostgres>,
    pub servers: Vec<Server>,
}

impl Stack {
    /// Starts a throwaway Postgres in `data_dir`; it is stopped with the stack.
    pub async fn start_postgres(
        &mut self,
        bins: &PgBinaries,
        run_as: &RunAs,
        data_dir: PathBuf,
        port: u16,
    ) -> Result<String> {
        let mut postgres = LocalPostgres::new(bins.clone(), run_as.clone(), data_dir, port);
        postgres.prepare().await?;
        step(format!("starting a throwaway postgres on 127.0.0.1:{port}"));
        let started = postgres.start().await;
        let database_url = postgres.database_url();
        self.postgres = Some(postgres);
        started.map(|()| database_url)
    }

    /// Starts a service and waits until its health path answers 2xx.
    pub async fn start_service(
        &mut self,
        plan: &Planned<'_>,
        env: &[(String, String)],
        port: u16,
    ) -> Result<()> {
        step(format!("starting {} on 127.0.0.1:{port}", plan.name));
        self.servers
            .push(Server::spawn(plan.name, &plan.binary, env)?);
        let server = self.servers.last_mut().context("just pushed")?;
        server
            .wait_http(port, &plan.service.health, Duration::from_secs(30))
            .await
    }

    /// Bails if a server has exited (they must run through every scenario).
    pub fn check_running(&mut self, during: &str) -> Result<()> {
        for server in &mut self.servers {
            if let Some(status) = server.exited() {
                bail!(
                    "{} exited during {during} ({status}); last log lines:\n{}",
                    server.name,
                    server.log_tail()
                );
            }
        }
        Ok(())
    }

    /// Stops the services (SIGTERM, a clean exit expected) and returns how each exited.
    pub async fn stop_services(&mut self) -> Vec<(String, String)> {
        let mut exits = Vec::new();
        while let Some(mut server) = self.servers.pop() {
            step(format!("stopping {}", server.name));
            let status = server.terminate(STOP_GRACE).await;
            exits.push((
                server.name.clone(),
                status.map_or("killed".to_owned(), |s| s.to_string()),
            ));
        }
        exits
    }

    pub async fn shutdown(&mut self) -> Result<()> {
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

/// Runs the catalog's database job (the migrations) against `database_url`.
pub async fn run_migrations(
    name: &str,
    job: &Job,
    binary: &Path,
    database_url: &str,
) -> Result<()> {
    step(format!("running job {name}: {}", job.command.join(" ")));
    let mut command = Command::new(binary);
    command
        .args(&job.command[1..])
        .env_clear()
        .envs(&job.env)
        .env("LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .env("DATABASE_URL", database_url);
    let status = ManagedChild::spawn(name, command, None)?.wait().await;
    if !status.is_some_and(|s| s.success()) {
        bail!("the migrations failed ({status:?}); see the [{name}] lines above");
    }
    Ok(())
}

/// A service of the catalog and the binary that runs it.
pub struct Planned<'a> {
    pub name: &'a str,
    pub service: &'a Service,
    pub binary: PathBuf,
}

/// Production environment of a service: the catalog's `env`, JSON logs, ports, and its
/// database or upstream URLs. Nothing else of ours leaks in (PATH is added at spawn).
pub fn service_env(
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

/// Creates `count` messages through the api, as a client would.
pub async fn seed(api_url: &str, count: usize) -> Result<()> {
    step(format!("seeding {count} messages"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    for i in 1..=count {
        let content =
            format!("Benchmark message {i}: the quick brown fox jumps over the lazy dog.");
        let response = http
            .post(format!("{api_url}/api/messages"))
            .json(&serde_json::json!({ "content": content }))
            .send()
            .await
            .context("cannot seed messages")?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!("seeding: POST /api/messages answered {}", response.status());
        }
    }
    Ok(())
}

/// Free loopback ports, distinct (all bound at once).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
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
pub fn http_ok(port: u16, path: &str) -> bool {
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

/// A service process whose output (one JSON log line per request) is drained from a pipe and
/// counted, as a log driver would consume it; only the last lines are kept, for error
/// messages. (Streaming every line through our console, or writing hundreds of MB to a file,
/// would steal CPU or disk from the servers.) Killed on drop.
pub struct Server {
    pub name: String,
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

impl LogSink {
    fn take(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * LOG_TAIL_BYTES {
            let cut = self.tail.len() - LOG_TAIL_BYTES;
            self.tail.drain(..cut);
        }
    }
}

fn drain(mut reader: impl Read + Send + 'static, sink: Arc<Mutex<LogSink>>) {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => locked(&sink).take(&buffer[..n]),
            }
        }
    });
}

fn locked(sink: &Mutex<LogSink>) -> MutexGuard<'_, LogSink> {
    sink.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Server {
    pub fn spawn(name: &str, binary: &Path, env: &[(String, String)]) -> Result<Self> {
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
    pub fn log_counts(&self) -> (u64, u64) {
        let sink = locked(&self.log);
        (sink.bytes, sink.lines)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
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
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
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
    pub fn log_tail(&self) -> String {
        let sink = locked(&self.log);
        let text = String::from_utf8_lossy(&sink.tail);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls `path` until it answers 2xx; fails if the server exits or `timeout` passes.
    pub async fn wait_http(&mut self, port: u16, path: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited before answering {path} ({status}); last log lines:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let path_owned = path.to_owned();
            if tokio::task::spawn_blocking(move || http_ok(port, &path_owned)).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {path} with 2xx within {timeout:?}; last log lines:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
