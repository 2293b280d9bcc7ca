//! The first page kept per instance (`crates/api/src/first_pages.rs`) is never served once a
//! write has been acknowledged, by the same instance, by another one, or by any other client of
//! the database; and it is served, as kept, while nothing changes.
//!
//! Two "instances" are two api routers with their own pools and kept pages, in-process, on one
//! real PostgreSQL database; the counting test runs the real binary and reads its metrics port.

mod common;

use std::collections::HashSet;

use common::{ApiProcess, TestApp, message_ids, migrated_db};
use serde_json::{Value, json};

/// The ids of the first page of `limit` messages, as `app` serves it.
async fn first_page_ids(app: &TestApp, limit: u32) -> Vec<i64> {
    let resp = app.get(&format!("/api/messages?limit={limit}")).await;
    assert_eq!(resp.status(), 200);
    message_ids(&resp.json().await.unwrap())
}

async fn first_page(app: &TestApp) -> Value {
    app.get("/api/messages?limit=100")
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn writes_acknowledged_anywhere_show_on_every_instance_at_once() {
    let db = migrated_db().await;
    let a = TestApp::spawn(&db).await;
    let b = TestApp::spawn(&db).await;

    for round in 0..20 {
        // B reads (and keeps) its first page, then A creates: B's next read has the message.
        let before = first_page(&b).await;
        let created = a.create(&format!("round {round}")).await;
        let after = first_page(&b).await;
        assert_ne!(before, after, "round {round}");
        assert_eq!(after["messages"][0], created, "round {round}");
    }

    let top = first_page(&b).await["messages"][0].clone();
    let id = top["id"].as_i64().unwrap();
    let resp = a
        .patch_json(&format!("/api/messages/{id}"), json!({"content": "edited"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(first_page(&b).await["messages"][0]["content"], "edited");

    assert_eq!(a.delete(&format!("/api/messages/{id}")).await.status(), 204);
    assert!(!first_page_ids(&b, 100).await.contains(&id));

    // A write by another client of the database (a migration, an operator's psql session).
    let mut conn = db.connect().await;
    sqlx::query("INSERT INTO messages (content) VALUES ('written in SQL')")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        first_page(&b).await["messages"][0]["content"],
        "written in SQL"
    );

    // A transaction still open when the page is read, committed later.
    let mut open = db.connect().await;
    sqlx::query("BEGIN").execute(&mut open).await.unwrap();
    sqlx::query("INSERT INTO messages (content) VALUES ('committed late')")
        .execute(&mut open)
        .await
        .unwrap();
    let while_open = first_page(&b).await;
    assert_eq!(while_open["messages"][0]["content"], "written in SQL");
    assert_eq!(first_page(&b).await, while_open, "nothing committed yet");
    sqlx::query("COMMIT").execute(&mut open).await.unwrap();
    assert_eq!(
        first_page(&b).await["messages"][0]["content"],
        "committed late"
    );
}

/// Writers on one instance, readers churning the kept pages of another: every create, once
/// acknowledged, is on the other instance's first page from then on.
#[tokio::test]
async fn concurrent_readers_never_see_an_acknowledged_create_missing() {
    const WRITERS: usize = 3;
    const CREATES_PER_WRITER: usize = 25;
    let db = migrated_db().await;
    let a = std::sync::Arc::new(TestApp::spawn(&db).await);
    let b = std::sync::Arc::new(TestApp::spawn(&db).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (b, stop) = (b.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    first_page_ids(&b, 100).await;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let mut acknowledged = HashSet::new();
                for i in 0..CREATES_PER_WRITER {
                    let created = a.create(&format!("writer {w} create {i}")).await;
                    acknowledged.insert(created["id"].as_i64().unwrap());
                    // At most 75 messages exist: all are on the page of 100.
                    let seen: HashSet<i64> = first_page_ids(&b, 100).await.into_iter().collect();
                    let missing: Vec<_> = acknowledged.difference(&seen).collect();
                    assert!(missing.is_empty(), "writer {w}: {missing:?} missing");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    assert_eq!(
        first_page_ids(&b, 100).await.len(),
        WRITERS * CREATES_PER_WRITER
    );
}

/// Through the real binary: a page read twice with nothing written in between is served as
/// kept, the same bytes; each page size is kept on its own; pages below a cursor are always read.
/// On a server of its own: a write to any database of the cluster (the other tests') changes
/// the snapshot.
#[tokio::test]
async fn an_unchanged_first_page_is_served_as_kept() {
    let server = test_postgres::PgServer::launch();
    let db = server.create_database().await;
    common::migrate(&db).await;
    let api = ApiProcess::start(&[("DATABASE_URL", db.url().to_owned())]).await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let resp = client
            .post(api.url("/api/messages"))
            .json(&json!({"content": format!("message {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let get = |path: &'static str| {
        let (client, url) = (client.clone(), api.url(path));
        async move {
            // Let the previous request's connection return to the pool first (sqlx pings it on
            // release, in a task of its own): otherwise the pool opens another, and every new
            // connection forgets the kept pages (`FirstPages::forget_all`).
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "application/json");
            resp.bytes().await.unwrap()
        }
    };
    let first = get("/api/messages?limit=3").await;
    assert_eq!(get("/api/messages?limit=3").await, first);
    assert_eq!(get("/api/messages?limit=3").await, first);
    let other_size = get("/api/messages").await;
    assert_ne!(other_size, first);
    assert_eq!(get("/api/messages").await, other_size);
    get("/api/messages?limit=2&cursor=4").await;
    get("/api/messages?limit=2&cursor=4").await;

    let metrics = client
        .get(format!("http://127.0.0.1:{}/metrics", api.metrics_port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("api_first_page_reads_total{")
                    && l.contains(&format!(r#"result="{result}""#))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {result} count in:\n{metrics}"))
    };
    assert_eq!(count("read"), 2, "one read per page size");
    assert_eq!(count("kept"), 3, "the repeats");
}
