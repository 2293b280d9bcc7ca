//! The local router sends each path to the right service and forwards requests intact.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use xtask::proxy::{self, Route, RouteTable};

/// An upstream that describes the request it received.
async fn echo(State(name): State<&'static str>, request: Request) -> axum::Json<Value> {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    axum::Json(json!({
        "service": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
        "body_sum": body.iter().map(|b| u64::from(*b)).sum::<u64>(),
        "body": String::from_utf8_lossy(&body[..body.len().min(200)]),
    }))
}

async fn start_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(echo).with_state(name);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Setup {
    base: String,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let api = start_upstream("api").await;
    let web = start_upstream("web").await;
    let table = RouteTable::new(vec![
        Route {
            name: "web".into(),
            prefix: "/".into(),
            upstream: web,
        },
        Route {
            name: "api".into(),
            prefix: "/api".into(),
            upstream: api,
        },
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy::serve(listener, table, std::future::pending()));
    Setup {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

async fn get(setup: &Setup, path: &str) -> Value {
    let response = setup
        .http
        .get(format!("{}{path}", setup.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn paths_reach_the_right_service() {
    let setup = setup().await;
    for (path, service) in [
        ("/api", "api"),
        ("/api/", "api"),
        ("/api/health", "api"),
        ("/api/messages/42", "api"),
        ("/apiary", "web"),
        ("/api-docs", "web"),
        ("/apix/messages", "web"),
        ("/", "web"),
        ("/messages/1/edit", "web"),
        ("/static/app.css", "web"),
        ("/API", "web"),
    ] {
        let echoed = get(&setup, path).await;
        assert_eq!(echoed["service"], service, "{path} → {echoed}");
        assert_eq!(echoed["path"], path, "path forwarded unchanged");
    }
}

#[tokio::test]
async fn query_strings_are_kept() {
    let setup = setup().await;
    let echoed = get(&setup, "/api/messages?limit=5&cursor=a%2Fb%3Dc&x=%20y").await;
    assert_eq!(echoed["service"], "api");
    assert_eq!(echoed["path"], "/api/messages");
    assert_eq!(echoed["query"], "limit=5&cursor=a%2Fb%3Dc&x=%20y");
    let echoed = get(&setup, "/api?x=1").await;
    assert_eq!(
        (echoed["service"].as_str(), echoed["query"].as_str()),
        (Some("api"), Some("x=1"))
    );
    let echoed = get(&setup, "/?cursor=7").await;
    assert_eq!(
        (echoed["service"].as_str(), echoed["query"].as_str()),
        (Some("web"), Some("cursor=7"))
    );
}

#[tokio::test]
async fn methods_headers_and_bodies_are_forwarded() {
    let setup = setup().await;
    let url = |path: &str| format!("{}{path}", setup.base);

    // JSON body to the api.
    let response = setup
        .http
        .post(url("/api/messages"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-123")
        .header("x-custom", "kept")
        .body(r#"{"content":"héllo <b>"}"#)
        .send()
        .await
        .unwrap();
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["service"], "api");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body"], r#"{"content":"héllo <b>"}"#);
    assert_eq!(echoed["headers"]["x-request-id"], "req-123");
    assert_eq!(echoed["headers"]["x-custom"], "kept");
    assert_eq!(echoed["headers"]["content-type"], "application/json");
    assert_eq!(echoed["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "http");
    let host = setup.base.trim_start_matches("http://");
    assert_eq!(echoed["headers"]["host"], host, "Host is preserved");

    // Form body to web.
    let response = setup
        .http
        .post(url("/messages/3/edit"))
        .form(&[("content", "a & b = c")])
        .send()
        .await
        .unwrap();
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["service"], "web");
    assert_eq!(echoed["body"], "content=a+%26+b+%3D+c");

    // A large streamed body arrives intact (length and checksum).
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = big.iter().map(|b| u64::from(*b)).sum();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let response = setup
        .http
        .put(url("/api/upload"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["body_len"], big.len());
    assert_eq!(echoed["body_sum"], sum);

    // Other methods.
    for method in [
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::OPTIONS,
    ] {
        let response = setup
            .http
            .request(method.clone(), url("/api/messages/9"))
            .send()
            .await
            .unwrap();
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(echoed["method"], method.as_str());
        assert_eq!(echoed["service"], "api");
    }
}

#[tokio::test]
async fn responses_keep_status_and_headers() {
    let api = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(|| async {
            let mut headers = HeaderMap::new();
            headers.insert("location", "/api/messages/1".parse().unwrap());
            headers.insert("x-request-id", "abc".parse().unwrap());
            (axum::http::StatusCode::CREATED, headers, "created")
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    };
    let table = RouteTable::new(vec![Route {
        name: "api".into(),
        prefix: "/api".into(),
        upstream: api,
    }]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy::serve(listener, table, std::future::pending()));
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/api/messages/1");
    assert_eq!(response.headers()["x-request-id"], "abc");
    assert_eq!(response.text().await.unwrap(), "created");

    // No route owns `/` here: 404 from the router itself.
    let response = reqwest::get(format!("http://{addr}/other")).await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn unreachable_service_is_a_502() {
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let table = RouteTable::new(vec![Route {
        name: "web".into(),
        prefix: "/".into(),
        upstream: dead,
    }]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy::serve(listener, table, std::future::pending()));
    let response = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("web"));
}

#[test]
fn route_table_from_the_catalog() {
    let catalog = catalog::Catalog::load_workspace().unwrap();
    let table = RouteTable::from_catalog(&catalog, |name| if name == "api" { 1 } else { 2 });
    assert_eq!(table.pick("/api").unwrap().name, "api");
    assert_eq!(table.pick("/api/messages").unwrap().name, "api");
    assert_eq!(table.pick("/apiary").unwrap().name, "web");
    assert_eq!(table.pick("/").unwrap().name, "web");
    assert!(proxy::prefix_matches("/", "/anything"));
    assert!(!proxy::prefix_matches("/api", "/ap"));
}
