//! `Idempotency-Key` on create: a retry returns the first result and adds nothing.

mod common;

use common::{TestApp, expect_error, migrated_db};
use serde_json::{Value, json};

async fn create_with_key(app: &TestApp, key: &str, content: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/api/messages"))
        .header("idempotency-key", key)
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn live_count(app: &TestApp) -> usize {
    let page: Value = app
        .get("/api/messages?limit=100")
        .await
        .json()
        .await
        .unwrap();
    page["messages"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_result() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;

    let (status, first) = create_with_key(&app, "form-1", "hello").await;
    assert_eq!(status, 201);
    let (status, again) = create_with_key(&app, "form-1", "hello").await;
    assert_eq!(status, 201);
    assert_eq!(again, first);
    assert_eq!(live_count(&app).await, 1);

    // Another key, or none, creates another message.
    let (_, other) = create_with_key(&app, "form-2", "hello").await;
    assert_ne!(other["id"], first["id"]);
    app.create("hello").await;
    app.create("hello").await;
    assert_eq!(live_count(&app).await, 4);
}

#[tokio::test]
async fn concurrent_retries_create_one_message() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let attempts = (0..8).map(|_| create_with_key(&app, "same", "once"));
    let results = futures::future::join_all(attempts).await;
    let first = &results[0].1;
    for (status, body) in &results {
        assert_eq!(*status, 201);
        assert_eq!(body, first);
    }
    assert_eq!(live_count(&app).await, 1);
}

#[tokio::test]
async fn invalid_keys_are_refused() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    for key in ["".to_owned(), "a".repeat(256), "has space".to_owned()] {
        let resp = app
            .client
            .post(app.url("/api/messages"))
            .header("idempotency-key", key.as_str())
            .json(&json!({ "content": "x" }))
            .send()
            .await
            .unwrap();
        let body = expect_error(resp, 400, "invalid_header").await;
        assert_eq!(body["error"]["field"], "Idempotency-Key");
    }
    assert_eq!(live_count(&app).await, 0);
}
