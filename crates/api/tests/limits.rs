//! What the request head already shows to be too large is refused at once, in the JSON error
//! shape with an `x-request-id`; what hyper refuses below the router is as documented.

mod common;

use std::time::Duration;

use common::{TestApp, expect_error, migrated_db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (and no more) on a raw connection; returns everything the server answers
/// until it closes the connection or 5 s pass.
async fn raw_exchange(app: &TestApp, head: &str) -> String {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn declared_oversized_body_is_refused_without_waiting_for_it() {
    let db = migrated_db().await;
    // A request timeout longer than the exchange: waiting for the body would end in
    // nothing (or a 503 `timeout`), never in a 413.
    let app = TestApp::spawn_with(&db, |c| c.request_timeout = Duration::from_secs(30)).await;
    let answer = raw_exchange(
        &app,
        "POST /api/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 70000\r\n\r\n{\"content\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");
}

#[tokio::test]
async fn long_uris_and_large_headers_get_json_errors() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;

    let long = format!("/api/messages?cursor={}", "9".repeat(api::MAX_URI_BYTES));
    let resp = app.get(&long).await;
    assert!(resp.headers().contains_key("x-request-id"));
    expect_error(resp, 414, "uri_too_long").await;

    let mut request = app.client.get(app.url("/api/health"));
    for i in 0..=api::MAX_HEADERS {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    let resp = request.send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    expect_error(resp, 431, "headers_too_large").await;

    let resp = app
        .client
        .get(app.url("/api/health"))
        .header("x-big", "a".repeat(api::MAX_HEADER_BYTES))
        .send()
        .await
        .unwrap();
    expect_error(resp, 431, "headers_too_large").await;
}

#[tokio::test]
async fn malformed_request_lines_get_hyper_s_empty_400() {
    // Documented exception (service-kit's serve module): hyper answers before any router.
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let answer = raw_exchange(&app, "NOT A REQUEST\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains('{'), "hyper's 400 has no body: {answer}");
}
