//! End-to-end tests of the middleware stack and serving helpers over real HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use service_kit::RequestId;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn echo_id(id: RequestId) -> String {
    let current = service_kit::request_id::current().expect("task-local request id");
    assert_eq!(current, id);
    id.to_string()
}

async fn item(Path(id): Path<u32>) -> String {
    format!("item {id}")
}

async fn slow(Path(ms): Path<u64>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "done".to_owned()
}

fn app() -> Router {
    service_kit::instrument(
        Router::new()
            .route("/id", get(echo_id))
            .route("/items/{id}", get(item))
            .route("/slow/{ms}", get(slow)),
    )
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(drain: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(service_kit::serve::serve_listener(
        listener,
        app(),
        async move {
            let _ = rx.await;
        },
        drain,
    ));
    Server {
        addr,
        stop: Some(tx),
        done,
    }
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let server = start(Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/id", server.addr);

    let resp = client
        .get(&url)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    assert_eq!(resp.text().await.unwrap(), "abc-123");

    let resp = client.get(&url).send().await.unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "uuid expected, got {generated}");
    assert_eq!(resp.text().await.unwrap(), generated);

    // An unsafe incoming id is replaced by a generated one.
    let resp = client
        .get(&url)
        .header("x-request-id", "bad id\t")
        .send()
        .await
        .unwrap();
    let replaced = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(replaced, "bad id\t");
    assert_eq!(replaced.len(), 36);

    // Also echoed on 404s (fallback).
    let resp = client
        .get(format!("http://{}/nope", server.addr))
        .header("x-request-id", "on-404")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-request-id"], "on-404");
}

#[tokio::test]
async fn metrics_use_route_templates() {
    let server = start(Duration::from_secs(5)).await;
    let metrics_addr = service_kit::metrics::serve_metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for id in [1, 2, 3] {
        let resp = client
            .get(format!("http://{}/items/{id}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client
        .get(format!("http://127.0.0.1:{}/metrics", metrics_addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/items/{id}""#)
                && l.contains(r#"method="GET""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no counter line in:\n{body}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(
        !body.contains("/items/1\""),
        "raw path leaked into labels:\n{body}"
    );
    assert!(
        body.contains("http_request_duration_seconds_bucket{"),
        "histogram expected:\n{body}"
    );
    // The metrics route is not part of the application router.
    let resp = client
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn arbitrary_methods_do_not_become_metric_labels() {
    let server = start(Duration::from_secs(5)).await;
    let metrics_addr = service_kit::metrics::serve_metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(b"INVENTEDMETHOD").unwrap();
    let resp = client
        .request(method, format!("http://{}/nope", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body = client
        .get(format!("http://127.0.0.1:{}/metrics", metrics_addr.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !body.contains("INVENTEDMETHOD"),
        "client-chosen method leaked into labels:\n{body}"
    );
    assert!(
        body.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"method="other""#)
            && l.contains(r#"route="unmatched""#)),
        "expected method=\"other\":\n{body}"
    );
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let mut server = start(Duration::from_secs(10)).await;
    let url = format!("http://{}/slow/700", server.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop.take().unwrap().send(()).unwrap();
    let resp = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .expect("server stops after draining")
        .unwrap()
        .unwrap();
    // No new connections after shutdown.
    assert!(
        reqwest::get(format!("http://{}/id", server.addr))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn drain_is_bounded() {
    let mut server = start(Duration::from_millis(300)).await;
    let url = format!("http://{}/slow/30000", server.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .expect("server gives up after the drain timeout")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
    in_flight.abort();
}

async fn start_with(settings: service_kit::serve::ServerSettings) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(service_kit::serve::serve_listener_with(
        listener,
        app(),
        async move {
            let _ = rx.await;
        },
        settings,
    ));
    Server {
        addr,
        stop: Some(tx),
        done,
    }
}

fn short_header_timeout() -> service_kit::serve::ServerSettings {
    service_kit::serve::ServerSettings {
        drain_timeout: Duration::from_secs(30),
        header_read_timeout: Duration::from_millis(500),
    }
}

/// Reads until the server closes the connection; `None` if it is still open after `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let server = start_with(short_header_timeout()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A byte every 200 ms: each write is within the timeout, the whole head never is.
    for byte in b"GET /id HTTP/1.1\r\n" {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = closed_within(&mut stream, Duration::from_secs(2)).await;
    assert!(answer.is_some(), "a slow head keeps its connection open");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let server = start_with(short_header_timeout()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /id HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the idle keep-alive connection is closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_clients_still_sending_headers() {
    use tokio::io::AsyncWriteExt;
    // Header timeout and drain both far longer than the test allows.
    let mut server = start_with(service_kit::serve::ServerSettings {
        drain_timeout: Duration::from_secs(60),
        header_read_timeout: Duration::from_secs(60),
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET /id HT").await.unwrap();
        slow.push(stream);
    }
    let fresh = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .expect("the server stops without waiting for half-sent heads")
        .unwrap()
        .unwrap();
    drop((slow, fresh));
}
