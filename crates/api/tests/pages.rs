//! Paging both ways: `cursor` walks to older pages, `after` back to newer ones.

mod common;

use common::{TestApp, expect_error, message_ids as ids, migrated_db};
use serde_json::Value;

#[tokio::test]
async fn after_walks_back_to_newer_pages() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(app.create(&format!("m{i}")).await["id"].as_i64().unwrap());
    }
    let newest_first: Vec<i64> = created.iter().rev().copied().collect();

    let first: Value = app.get("/api/messages?limit=3").await.json().await.unwrap();
    assert_eq!(ids(&first), newest_first[0..3]);
    assert!(first["prev_cursor"].is_null(), "{first}");
    let cursor = first["next_cursor"].as_i64().unwrap();

    let second: Value = app
        .get(&format!("/api/messages?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&second), newest_first[3..6]);
    let back = second["prev_cursor"].as_i64().expect("page 2 links back");

    let again: Value = app
        .get(&format!("/api/messages?limit=3&after={back}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&again), newest_first[0..3], "the newer page is page 1");
    assert!(again["prev_cursor"].is_null(), "nothing newer: {again}");
    assert_eq!(again["next_cursor"], first["next_cursor"]);

    // From the oldest page, `after` gives the page just above it, full.
    let oldest = newest_first[6];
    let above: Value = app
        .get(&format!("/api/messages?limit=3&after={oldest}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&above), newest_first[3..6]);
    assert_eq!(above["prev_cursor"], newest_first[3]);

    // `cursor` wins over `after`.
    let both: Value = app
        .get(&format!(
            "/api/messages?limit=3&cursor={cursor}&after={oldest}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&both), ids(&second));
    let resp = app.get("/api/messages?after=x").await;
    let body = expect_error(resp, 400, "invalid_query").await;
    assert_eq!(body["error"]["field"], "after");
}
