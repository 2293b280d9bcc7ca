//! Test stack: a fresh database with the migrations applied (migrate crate), the real api
//! router on a free port, and the web router pointing at it.
// Each test file uses a different part of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use test_postgres::TestDb;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process, stopped (gracefully) on request or on drop.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    pub fn serve(listener: TcpListener, router: axum::Router) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Idle keep-alive connections are closed by the graceful shutdown; bound it anyway.
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the web service (with the standard middleware) for the api at `api_url`;
/// returns its base URL.
pub async fn start_web(api_url: &str, api_timeout: Duration) -> String {
    let config = web::Config {
        bind: std::net::IpAddr::from([127, 0, 0, 1]),
        port: 0,
        metrics_port: 0,
        api_url: api_url.parse().unwrap(),
        api_timeout,
        api_max_connections: 16,
    };
    let state = web::AppState::new(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Lives as long as the test's runtime.
    std::mem::forget(Running::serve(listener, web::app(state)));
    format!("http://{addr}")
}

/// `POST url` with the form field `content`.
pub async fn post_form(http: &reqwest::Client, url: &str, content: &str) -> reqwest::Response {
    http.post(url)
        .form(&[("content", content)])
        .send()
        .await
        .unwrap()
}

/// A response read whole.
pub struct Page {
    pub status: StatusCode,
    pub body: String,
}

pub struct Stack {
    pub http: reqwest::Client,
    pub web: String,
    api_addr: SocketAddr,
    api: Option<Running>,
    db: TestDb,
}

impl Stack {
    pub async fn start() -> Self {
        let db = test_postgres::database().await;
        let mut conn = db.connect().await;
        migrate::run(&migrate::MIGRATOR, &mut conn)
            .await
            .expect("migrations apply");
        drop(conn);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_addr = listener.local_addr().unwrap();
        let api = start_api(listener, &db).await;
        let web = start_web(&format!("http://{api_addr}"), Duration::from_secs(3)).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            http,
            web,
            api_addr,
            api: Some(api),
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.web)
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        Page {
            status,
            body: response.text().await.unwrap(),
        }
    }

    /// The messages, straight from the api.
    pub async fn api_messages(&self) -> Vec<Value> {
        let url = format!("http://{}/api/messages?limit=100", self.api_addr);
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    pub async fn stop_api(&mut self) {
        if let Some(api) = self.api.take() {
            api.stop().await;
        }
    }

    /// Starts the api again on the same address.
    pub async fn start_api(&mut self) {
        self.stop_api().await;
        let listener = TcpListener::bind(self.api_addr).await.unwrap();
        self.api = Some(start_api(listener, &self.db).await);
    }
}

/// The real api (its full router, middleware included) on `listener`, using the test database.
async fn start_api(listener: TcpListener, db: &TestDb) -> Running {
    let state = api::AppState::with_pool(db.pool().await);
    Running::serve(listener, api::app(state, Duration::from_secs(5)))
}
