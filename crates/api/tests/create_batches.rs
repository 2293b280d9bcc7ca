//! Creates inserted together (`crates/api/src/create_batches.rs`): under concurrency each
//! create is answered with its own message, a key repeated within a batch creates one message,
//! and a message the database refuses fails only its own create. Real PostgreSQL, the api's
//! router in-process, many creates in flight at once so that batches form.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{TestApp, migrated_db};
use futures::future::join_all;
use serde_json::{Value, json};

/// `count` creates sent at once; `body(i)` is the i-th body, `key(i)` its Idempotency-Key.
async fn create_all(
    app: &Arc<TestApp>,
    count: usize,
    body: impl Fn(usize) -> Value,
    key: impl Fn(usize) -> Option<String>,
) -> Vec<(u16, Value)> {
    join_all((0..count).map(|i| {
        let app = app.clone();
        let mut request = app.client.post(app.url("/api/messages")).json(&body(i));
        if let Some(key) = key(i) {
            request = request.header("idempotency-key", key);
        }
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp.headers().get("location").cloned();
            let body: Value = resp.json().await.unwrap();
            if status == 201 {
                let id = body["id"].as_i64().unwrap();
                assert_eq!(location.unwrap(), format!("/api/messages/{id}").as_str());
            }
            (status, body)
        }
    }))
    .await
}

async fn stored_count(db: &test_postgres::TestDb) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_creates_are_each_answered_with_their_own_message() {
    const CREATES: usize = 200;
    let db = migrated_db().await;
    let app = Arc::new(TestApp::spawn(&db).await);
    // Every third content repeats another (rows of equal content may swap ids, nothing else);
    // every fifth create has a key of its own.
    let content = |i: usize| format!("message {}", if i.is_multiple_of(3) { i / 3 } else { i });
    let answers = create_all(
        &app,
        CREATES,
        |i| json!({"content": format!("  {}  ", content(i))}),
        |i| i.is_multiple_of(5).then(|| format!("key-{i}")),
    )
    .await;
    let mut ids = HashSet::new();
    for (i, (status, message)) in answers.iter().enumerate() {
        assert_eq!(*status, 201, "create {i}: {message}");
        assert_eq!(message["content"], content(i), "create {i}");
        assert!(ids.insert(message["id"].as_i64().unwrap()), "create {i}");
        let stored: Value = app
            .get(&format!("/api/messages/{}", message["id"]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(&stored, message, "create {i}");
    }
    assert_eq!(stored_count(&db).await, CREATES as i64);
    // Rows inserted by one statement share its transaction id: fewer transactions than rows
    // means creates did share batches (otherwise this test would prove nothing about them).
    let mut conn = db.connect().await;
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(transactions < CREATES as i64, "{transactions} transactions");
}

#[tokio::test]
async fn a_key_repeated_by_concurrent_creates_creates_one_message() {
    let db = migrated_db().await;
    let app = Arc::new(TestApp::spawn(&db).await);
    let answers = create_all(
        &app,
        40,
        |i| json!({"content": format!("attempt {i}")}),
        |i| Some(format!("order-{}", i % 2)),
    )
    .await;
    let mut by_key = [None, None];
    for (i, (status, message)) in answers.iter().enumerate() {
        assert_eq!(*status, 201, "create {i}: {message}");
        let first = by_key[i % 2].get_or_insert_with(|| message.clone());
        assert_eq!(message, first, "create {i} answers the key's one message");
    }
    assert_ne!(by_key[0], by_key[1]);
    assert_eq!(stored_count(&db).await, 2);
}

#[tokio::test]
async fn a_message_the_database_refuses_fails_only_its_own_create() {
    let db = migrated_db().await;
    // A rule only the database knows, so the api's validation lets the message through.
    let mut conn = db.connect().await;
    sqlx::query("ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (content <> 'poison')")
        .execute(&mut conn)
        .await
        .unwrap();
    let app = Arc::new(TestApp::spawn(&db).await);
    let poisoned = |i: usize| i % 10 == 3;
    let answers = create_all(
        &app,
        100,
        |i| json!({"content": if poisoned(i) { "poison".to_owned() } else { format!("fine {i}") }}),
        |_| None,
    )
    .await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if poisoned(i) {
            assert_eq!(*status, 500, "create {i}: {body}");
            assert_eq!(body["error"]["code"], "internal", "create {i}");
        } else {
            assert_eq!(*status, 201, "create {i}: {body}");
            assert_eq!(body["content"], format!("fine {i}"));
        }
    }
    assert_eq!(stored_count(&db).await, 90);
}
