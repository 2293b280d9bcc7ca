//! Shared helpers of the api tests: an in-process server on 127.0.0.1:0 and the real binary.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use api::{AppState, Config};
use serde_json::Value;
use test_postgres::TestDb;
use tokio::sync::oneshot;

/// The ids of a page's messages, in order.
pub fn message_ids(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .expect("a page has messages")
        .iter()
        .map(|m| m["id"].as_i64().expect("a message has an integer id"))
        .collect()
}

/// Apply the real migrations to a test database.
pub async fn migrate(db: &TestDb) {
    let mut conn = db.connect().await;
    migrate::run(&migrate::MIGRATOR, &mut conn)
        .await
        .expect("migrations apply");
}

/// A migrated fresh database on the shared test server.
pub async fn migrated_db() -> TestDb {
    let db = test_postgres::database().await;
    migrate(&db).await;
    db
}

/// The api router served in-process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::defaults(db.connect_options());
        tweak(&mut config);
        let app = api::app(AppState::new(&config), config.request_timeout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let done = tokio::spawn(service_kit::serve::serve_listener(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            config.drain_timeout,
        ));
        Self {
            addr,
            client: reqwest::Client::new(),
            stop: Some(tx),
            done: Some(done),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Create a message, returning its JSON.
    pub async fn create(&self, content: &str) -> Value {
        let resp = self
            .post_json("/api/messages", serde_json::json!({ "content": content }))
            .await;
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Assert the error shape and code, return the body.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let actual = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert_eq!(actual, status, "body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON error body: {text}"));
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(!message.is_empty());
    let lower = message.to_lowercase();
    for leak in [
        "select ",
        "insert ",
        "update messages",
        "sqlx",
        "pg_",
        "relation",
        "panicked",
    ] {
        assert!(!lower.contains(leak), "internals leaked: {body}");
    }
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only `error` at top level: {body}"
    );
    body
}

/// A free TCP port on 127.0.0.1 (free when we looked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const BIN: &str = env!("CARGO_BIN_EXE_api");

/// Variables the binary must not inherit from the developer's shell.
pub const SCRUB: &[&str] = &[
    "DATABASE_URL",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "DB_SECRET_ARN",
    "DB_SECRET_REFRESH_SECONDS",
    "PORT",
    "METRICS_PORT",
    "LOG_FORMAT",
    "RUST_LOG",
];

/// A `Command` for the real binary with a clean environment for our variables.
pub fn api_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for v in SCRUB {
        cmd.env_remove(v);
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

/// The real binary, running.
pub struct ApiProcess {
    pub child: tokio::process::Child,
    pub port: u16,
    pub metrics_port: u16,
}

impl ApiProcess {
    /// Start with `PORT`/`METRICS_PORT` chosen here plus `env`; stdout piped (JSON logs).
    pub async fn start(env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut metrics_port = free_port();
        while metrics_port == port {
            metrics_port = free_port();
        }
        let child = api_command()
            .env("PORT", port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn api");
        let process = Self {
            child,
            port,
            metrics_port,
        };
        process.wait_live().await;
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    async fn wait_live(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(self.url("/api/health")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("api did not become live on port {}", self.port);
    }

    /// Send SIGTERM (or another signal) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for exit (bounded) and return the status and stdout.
    pub async fn wait_exit(self) -> (std::process::ExitStatus, String) {
        let output = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .expect("process exits")
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

/// Poll `url` until it answers `status` (bounded).
pub async fn wait_for_status(client: &reqwest::Client, url: &str, status: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().as_u16() == status
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
