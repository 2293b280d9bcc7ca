//! End to end: start the local stack the way a person does (`cargo xtask dev`, here its
//! binary, with a temporary data directory and free ports), then drive the page in a real
//! headless Chromium through chromedriver: post, edit, delete, escaping, validation.
//!
//! Needs Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`;
//! override the paths with CHROMIUM / CHROMEDRIVER) and the PostgreSQL server programs on
//! PATH. Missing programs fail the test with a message; nothing is skipped.
//! The screenshot is written to `test-artifacts/e2e.png`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;

/// A child process leader of its own process group; the whole group is stopped on drop
/// (SIGTERM, then SIGKILL after `grace`), so nothing outlives a failing test.
struct GroupGuard {
    name: &'static str,
    child: Child,
    grace: Duration,
}

impl GroupGuard {
    fn spawn(name: &'static str, command: &mut Command, grace: Duration) -> Self {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", command.get_program()));
        Self { name, child, grace }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"))
    }

    /// SIGTERM to the group, wait up to the grace period, then SIGKILL. Returns the
    /// leader's exit status if it exited by itself within the grace period.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            let _ = killpg(self.pgid(), Signal::SIGKILL);
            return Some(status);
        }
        let _ = killpg(self.pgid(), Signal::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Anything left in the group goes too.
                let _ = killpg(self.pgid(), Signal::SIGKILL);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "{} did not stop within {:?}; killing its process group",
            self.name, self.grace
        );
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        let _ = self.child.wait();
        None
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Last resort for the Postgres server (it runs in its own session, outside the group).
struct PostgresGuard {
    data_dir: PathBuf,
}

impl Drop for PostgresGuard {
    fn drop(&mut self) {
        if !self.data_dir.join("postmaster.pid").exists() {
            return;
        }
        eprintln!(
            "postgres still running in {}; stopping it",
            self.data_dir.display()
        );
        let pg_ctl = xtask::postgres::find_on_path("pg_ctl").unwrap_or_else(|| "pg_ctl".into());
        let mut command = if nix::unistd::Uid::effective().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", xtask::postgres::UNPRIVILEGED_USER, "--"])
                .arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = command
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w"])
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Distinct free ports (all bound at once so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: this end-to-end test needs Chromium and chromedriver. Install them \
         (Debian/Ubuntu: `apt-get install chromium chromium-driver`) or set {env} to its path.",
        path.display(),
    );
    path
}

/// Output lines of a child, printed as they come and kept for failure messages.
struct Lines {
    all: Arc<Mutex<Vec<String>>>,
    rx: mpsc::Receiver<String>,
}

fn collect_output(child: &mut Child, prefix: &'static str) -> Lines {
    let all = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let readers: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for reader in readers {
        let (all, tx) = (Arc::clone(&all), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                eprintln!("{prefix} {line}");
                all.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    Lines { all, rx }
}

impl Lines {
    fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no `{needle}` within {timeout:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("the process ended before printing `{needle}`"));
                }
            }
        }
    }

    fn text(&self) -> String {
        self.all.lock().unwrap().join("\n")
    }
}

/// Texts of the elements matching `css` (elements going stale mid-navigation are skipped).
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap_or_default() {
        if let Ok(text) = element.text().await {
            out.push(text);
        }
    }
    out
}

/// Waits until the list shows (or, with `present == false`, no longer shows) `content`.
async fn wait_for_message(client: &Client, content: &str, present: bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let contents = texts(client, "li.message .content").await;
        if contents.iter().any(|c| c == content) == present {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "message {content:?} {} the page; messages: {contents:?}",
                if present {
                    "never appeared on"
                } else {
                    "is still on"
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `<li>` of the message whose content is exactly `content`.
async fn message_item(client: &Client, content: &str) -> fantoccini::elements::Element {
    for item in client.find_all(Locator::Css("li.message")).await.unwrap() {
        let text = item
            .find(Locator::Css(".content"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text == content {
            return item;
        }
    }
    panic!(
        "no message {content:?} on the page; messages: {:?}",
        texts(client, "li.message .content").await
    );
}

async fn post(client: &Client, base: &str, content: &str) -> Result<(), String> {
    client.goto(base).await.unwrap();
    let area = client
        .wait()
        .for_element(Locator::Css("#new-message textarea"))
        .await
        .unwrap();
    area.clear().await.unwrap();
    area.send_keys(content).await.unwrap();
    submit(client, "#new-message").await;
    wait_for_url(client, &format!("{base}/?notice=posted")).await;
    wait_for_notice(client, "Your message was posted.").await?;
    wait_for_message(client, content, true).await
}

/// The confirmation at the top of the page.
async fn wait_for_notice(client: &Client, expected: &str) -> Result<(), String> {
    let notice = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#notice"))
        .await
        .map_err(|e| format!("no confirmation shown (expected {expected:?}): {e}"))?;
    let text = notice.text().await.unwrap();
    if text == expected {
        Ok(())
    } else {
        Err(format!("confirmation {text:?}, expected {expected:?}"))
    }
}

async fn submit(client: &Client, form: &str) {
    client
        .find(Locator::Css(&format!("{form} button[type=submit]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn wait_for_url(client: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = client.current_url().await.unwrap();
        if url.as_str() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected to be at {expected}, still at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `cargo xtask dev` (its binary) on free ports with a temporary data directory, running.
struct RunningStack {
    guard: GroupGuard,
    output: Lines,
    base: String,
    data_dir: PathBuf,
    /// Every service's port and metrics port.
    service_ports: Vec<u16>,
    _postgres_guard: PostgresGuard,
    _temp: tempfile::TempDir,
}

impl RunningStack {
    fn start() -> Self {
        let root = xtask::workspace_root();
        let catalog = catalog::Catalog::load_workspace().expect("catalog");
        let temp = tempfile::Builder::new()
            .prefix("xtask-e2e-")
            .tempdir()
            .unwrap();
        // As root, Postgres runs as `nobody`, which must be able to enter the directory.
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data_dir = temp.path().join("postgres");

        // Free ports for the router, Postgres, Prometheus and every service (and its metrics).
        let ports = free_ports(3 + 2 * catalog.services.len());
        let (router_port, pg_port, prometheus_port) = (ports[0], ports[1], ports[2]);
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("dev")
            .args(["--port", &router_port.to_string()])
            .args(["--pg-port", &pg_port.to_string()])
            .args(["--prometheus-port", &prometheus_port.to_string()])
            .arg("--data-dir")
            .arg(&data_dir)
            .current_dir(&root)
            .env("CARGO", env!("CARGO"))
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (i, name) in catalog.services.keys().enumerate() {
            command
                .arg("--service-port")
                .arg(format!("{name}={}", ports[3 + 2 * i]));
            command
                .arg("--metrics-port")
                .arg(format!("{name}={}", ports[4 + 2 * i]));
        }
        let postgres_guard = PostgresGuard {
            data_dir: data_dir.clone(),
        };
        let mut guard = GroupGuard::spawn("cargo xtask dev", &mut command, Duration::from_secs(40));
        let output = collect_output(&mut guard.child, "[xtask]");
        // The first run may build the services (cargo build), hence the long timeout.
        if let Err(e) = output.wait_for("ready: http://", Duration::from_secs(1200)) {
            panic!(
                "the local stack did not come up: {e}\n--- output ---\n{}",
                output.text()
            );
        }
        Self {
            guard,
            output,
            base: format!("http://127.0.0.1:{router_port}"),
            data_dir,
            service_ports: ports[3..].to_vec(),
            _postgres_guard: postgres_guard,
            _temp: temp,
        }
    }

    /// Process ids of everything the stack runs: the services (from the `pid N` of its
    /// progress lines) and the Postgres server (from `postmaster.pid`).
    fn child_pids(&self) -> Vec<Pid> {
        let text = self.output.text();
        let mut pids: Vec<Pid> = text
            .lines()
            .filter_map(|line| line.split(", pid ").nth(1))
            .filter_map(|rest| rest.trim_end_matches(')').parse::<i32>().ok())
            .map(Pid::from_raw)
            .collect();
        let postmaster =
            std::fs::read_to_string(self.data_dir.join("postmaster.pid")).expect("postgres runs");
        let postgres: i32 = postmaster.lines().next().unwrap().trim().parse().unwrap();
        pids.push(Pid::from_raw(postgres));
        pids
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stack_in_a_real_browser() {
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
    let root = xtask::workspace_root();
    let mut running = RunningStack::start();
    let base = running.base.clone();

    // The router serves both the api and the page on one port; `/api` is the api's index.
    let health: serde_json::Value = reqwest::get(format!("{base}/api/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let index: serde_json::Value = reqwest::get(format!("{base}/api"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["links"]["messages"], "/api/messages");

    // chromedriver on a free port, Chromium with a fresh profile.
    let driver_port = free_port();
    let mut driver_command = Command::new(&chromedriver);
    driver_command
        .arg(format!("--port={driver_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut driver = GroupGuard::spawn("chromedriver", &mut driver_command, Duration::from_secs(5));
    let driver_output = collect_output(&mut driver.child, "[chromedriver]");
    if let Err(e) = driver_output.wait_for("started successfully", Duration::from_secs(30)) {
        panic!("chromedriver did not start: {e}\n{}", driver_output.text());
    }
    let profile = tempfile::Builder::new()
        .prefix("chromium-profile-")
        .tempdir()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1100,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack (and no process-wide rustls
    // crypto provider to choose) needed.
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot start a Chromium session: {e}\n{}",
                driver_output.text()
            )
        });

    let mut result = drive(&client, &base, &root).await;
    if result.is_ok() {
        result = drive_pages(&client, &base).await;
    }
    let _ = client.close().await;
    drop(driver);
    if let Err(e) = result {
        panic!("{e}");
    }

    // Ctrl-C equivalent: the stack stops cleanly, Postgres included.
    let status = running.guard.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "cargo xtask dev did not stop cleanly ({status:?})\n{}",
        running.output.text()
    );
    assert!(
        !running.data_dir.join("postmaster.pid").exists(),
        "postgres is still running after the stack stopped"
    );
    assert!(running.output.text().contains("stopping postgres"));
}

/// A closed terminal (SIGHUP) and `kill -9` of `cargo xtask dev` leave no process behind:
/// not the services, not Postgres (which `pg_ctl` starts outside the process group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_hung_up_stack_leaves_no_process() {
    for signal in [Signal::SIGKILL, Signal::SIGHUP] {
        let running = RunningStack::start();
        let pids = running.child_pids();
        assert!(pids.len() >= 3, "services and postgres: {pids:?}");
        let xtask = Pid::from_raw(i32::try_from(running.guard.child.id()).unwrap());
        nix::sys::signal::kill(xtask, signal).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let left = loop {
            let left: Vec<Pid> = pids
                .iter()
                .copied()
                .filter(|p| xtask::reaper::alive(*p))
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            left.is_empty(),
            "after {signal}, still running: {left:?}\n{}",
            running.output.text()
        );
        assert!(
            !running.data_dir.join("postmaster.pid").exists(),
            "after {signal}, postgres left its postmaster.pid"
        );
    }
}

/// The address a socket listening on `port` is bound to, as `/proc/net/tcp` shows it
/// (hex, e.g. `0100007F` for 127.0.0.1, `00000000` for every interface).
fn listen_address(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, local_port) = fields.get(1)?.split_once(':')?;
        let listening = fields.get(3) == Some(&"0A");
        (listening && u16::from_str_radix(local_port, 16).ok()? == port).then(|| address.to_owned())
    })
}

/// The services listen where the router does (127.0.0.1 by default), not on every
/// interface; and when Postgres dies, the stack says so and stops, leaving nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_bind_the_router_address_and_a_dying_postgres_stops_the_stack() {
    let mut running = RunningStack::start();
    for port in &running.service_ports {
        assert_eq!(
            listen_address(*port).as_deref(),
            Some("0100007F"),
            "port {port} should listen on 127.0.0.1 only"
        );
    }
    let pids = running.child_pids();
    let postgres = *pids.last().expect("postgres pid");
    nix::sys::signal::kill(postgres, Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = running.guard.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the stack kept running without Postgres\n{}",
            running.output.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "{status:?}");
    assert!(
        running
            .output
            .text()
            .contains("postgres stopped unexpectedly"),
        "{}",
        running.output.text()
    );
    let left: Vec<Pid> = pids
        .iter()
        .copied()
        .filter(|p| xtask::reaper::alive(*p))
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

/// The browser session; an `Err` carries a message (the caller closes the session first).
async fn drive(client: &Client, base: &str, root: &Path) -> Result<(), String> {
    client.goto(base).await.unwrap();
    let title = client.title().await.unwrap();
    if !title.contains("Messages") {
        return Err(format!("unexpected title {title:?}"));
    }

    // Post.
    let first = "Hello from the browser end-to-end test";
    post(client, base, first).await?;
    let contents = texts(client, "li.message .content").await;
    if contents.first().map(String::as_str) != Some(first) {
        return Err(format!("posted message not shown first: {contents:?}"));
    }

    // Escaping: markup is shown as text, never executed.
    let markup = "<script>alert(1)</script> <b>bold?</b>";
    post(client, base, markup).await?;
    message_item(client, markup).await;
    if client.get_alert_text().await.is_ok() {
        return Err("an alert is open: user content was executed".into());
    }
    let injected = client
        .execute(
            "return document.querySelectorAll('li.message script, li.message b').length",
            vec![],
        )
        .await
        .unwrap();
    if injected != json!(0) {
        return Err(format!("user markup became elements: {injected}"));
    }

    // Validation: an empty message shows an error next to the form, nothing is posted.
    client.goto(base).await.unwrap();
    let area = client
        .find(Locator::Css("#new-message textarea"))
        .await
        .unwrap();
    area.send_keys("   ").await.unwrap();
    submit(client, "#new-message").await;
    let error = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#new-message .field-error"))
        .await
        .map_err(|e| format!("no validation error shown: {e}"))?;
    let error_text = error.text().await.unwrap();
    if error_text.is_empty() {
        return Err("empty validation message".into());
    }

    // Edit.
    client.goto(base).await.unwrap();
    let item = message_item(client, first).await;
    item.find(Locator::Css("a[href$='/edit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let area = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#edit-message textarea"))
        .await
        .map_err(|e| format!("edit page did not open: {e}"))?;
    let current = area.prop("value").await.unwrap().unwrap_or_default();
    if current != first {
        return Err(format!("edit form not prefilled: {current:?}"));
    }
    area.clear().await.unwrap();
    let edited = "Edited in the browser ✓";
    area.send_keys(edited).await.unwrap();
    submit(client, "#edit-message").await;
    wait_for_url(client, &format!("{base}/?notice=saved")).await;
    wait_for_notice(client, "Your changes were saved.").await?;
    wait_for_message(client, edited, true).await?;
    wait_for_message(client, first, false).await?;
    let item = message_item(client, edited).await;
    let meta = item
        .find(Locator::Css(".meta"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if !meta.contains("edited") {
        return Err(format!("edited message not marked as edited: {meta:?}"));
    }

    // Screenshot of the page with a few messages.
    post(
        client,
        base,
        "A third message, to make the list look lived-in.\nIt has two lines.",
    )
    .await?;
    let png = client.screenshot().await.unwrap();
    let artifacts = root.join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("e2e.png"), png).unwrap();

    // Delete (the script asks for confirmation first).
    let item = message_item(client, edited).await;
    item.find(Locator::Css("form.delete-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if let Ok(text) = client.get_alert_text().await {
        if !text.contains("Delete") {
            return Err(format!("unexpected dialog {text:?}"));
        }
        client.accept_alert().await.unwrap();
    }
    wait_for_message(client, edited, false).await?;
    wait_for_notice(client, "The message was deleted.").await?;
    let contents = texts(client, "li.message .content").await;
    if contents.len() != 2 {
        return Err(format!(
            "expected the two other messages to remain: {contents:?}"
        ));
    }
    Ok(())
}

/// More than a page of messages: the pager both ways, the page titles, the end of the list,
/// a delete that stays on its page with its confirmation, and local times.
async fn drive_pages(client: &Client, base: &str) -> Result<(), String> {
    let http = reqwest::Client::new();
    for i in 0..55 {
        let response = http
            .post(format!("{base}/api/messages"))
            .json(&json!({ "content": format!("paging {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    client.goto(base).await.unwrap();
    let time = client.find(Locator::Css("li.message time")).await.unwrap();
    let shown = time.text().await.unwrap();
    if shown.ends_with("UTC") {
        return Err(format!(
            "time not shown in local time by the script: {shown:?}"
        ));
    }
    if client.find(Locator::Css("a[rel=prev]")).await.is_ok() {
        return Err("the first page links to newer messages".into());
    }
    click(client, "a[rel=next]").await?;
    wait_for_title(client, "Earlier messages · Messages").await?;
    client
        .find(Locator::Css(".end-of-list"))
        .await
        .map_err(|_| "no end-of-list marker on the last page".to_owned())?;
    let page_two = client.current_url().await.unwrap().to_string();

    // Delete on page 2: confirmed in the dialog, back on page 2, confirmed on the page.
    let item = message_item(client, "paging 2").await;
    item.find(Locator::Css("form.delete-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dialog = client
        .get_alert_text()
        .await
        .map_err(|_| "deleting asked for no confirmation".to_owned())?;
    if !dialog.contains("Delete") {
        return Err(format!("unexpected dialog {dialog:?}"));
    }
    client.accept_alert().await.unwrap();
    wait_for_notice(client, "The message was deleted.").await?;
    let url = client.current_url().await.unwrap().to_string();
    if !url.starts_with(&page_two.replace("&notice=deleted", "")) || !url.contains("cursor=") {
        return Err(format!(
            "after deleting on page 2 ({page_two}) the browser is at {url}"
        ));
    }
    wait_for_message(client, "paging 2", false).await?;

    click(client, "a[rel=prev]").await?;
    wait_for_title(client, "Messages").await?;
    wait_for_message(client, "paging 54", true).await
}

async fn click(client: &Client, css: &str) -> Result<(), String> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("no {css}: {e}"))?
        .click()
        .await
        .map_err(|e| format!("cannot click {css}: {e}"))?;
    Ok(())
}

async fn wait_for_title(client: &Client, expected: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let title = client.title().await.unwrap();
        if title == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("page title {title:?}, expected {expected:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
