//! Every route and its error cases, over real HTTP against a real database.

mod common;

use std::time::Duration;

use common::{TestApp, expect_error, migrated_db};
use serde_json::{Value, json};

#[tokio::test]
async fn health_and_ready() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let resp = app.get("/api/health").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let resp = app.get("/api/ready").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn create_get_update_delete() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;

    let resp = app
        .post_json("/api/messages", json!({"content": "  hello world \n"}))
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/messages/{id}"));
    assert_eq!(created["content"], "hello world", "content is trimmed");
    let created_at = created["created_at"].as_str().unwrap();
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 created_at");
    assert_eq!(created["updated_at"], created["created_at"]);
    assert_eq!(created.as_object().unwrap().len(), 4, "{created}");

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, created);

    tokio::time::sleep(Duration::from_millis(10)).await;
    let resp = app
        .patch_json(&location, json!({"content": " edited "}))
        .await;
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["id"], id);
    assert_eq!(updated["content"], "edited");
    assert_eq!(updated["created_at"], created["created_at"]);
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(
        parse(&updated["updated_at"]) > parse(&created["updated_at"]),
        "{updated}"
    );
    assert_eq!(
        app.get(&location).await.json::<Value>().await.unwrap(),
        updated
    );

    let resp = app.delete(&location).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.text().await.unwrap().is_empty());

    // Soft-deleted: gone from every route, but the row is kept.
    expect_error(app.get(&location).await, 404, "not_found").await;
    expect_error(app.delete(&location).await, 404, "not_found").await;
    expect_error(
        app.patch_json(&location, json!({"content": "x"})).await,
        404,
        "not_found",
    )
    .await;
    let page: Value = app.get("/api/messages").await.json().await.unwrap();
    assert_eq!(page["messages"], json!([]));
    let mut conn = db.connect().await;
    let deleted: bool =
        sqlx::query_scalar("select deleted_at is not null from messages where id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(deleted);
}

#[tokio::test]
async fn content_validation() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let max = "é".repeat(2000);
    let created = app.create(&format!("  {max}  ")).await;
    assert_eq!(created["content"].as_str().unwrap().chars().count(), 2000);
    let path = format!("/api/messages/{}", created["id"]);

    for (body, code, status) in [
        (json!({"content": ""}), "validation_failed", 422),
        (json!({"content": " \n\t "}), "validation_failed", 422),
        (
            json!({"content": "x".repeat(2001)}),
            "validation_failed",
            422,
        ),
        (
            json!({"content": "é".repeat(2001)}),
            "validation_failed",
            422,
        ),
        // PostgreSQL text cannot hold NUL: a validation error, not a 500 from the database.
        (json!({"content": "a\u{0}b"}), "validation_failed", 422),
        (json!({}), "invalid_body", 422),
        (json!({"content": 42}), "invalid_body", 422),
        (json!({"content": null}), "invalid_body", 422),
        (json!("content"), "invalid_body", 422),
    ] {
        let resp = app.post_json("/api/messages", body.clone()).await;
        let err = expect_error(resp, status, code).await;
        if code == "validation_failed" {
            assert_eq!(err["error"]["field"], "content", "{err}");
        }
        let resp = app.patch_json(&path, body.clone()).await;
        expect_error(resp, status, code).await;
    }
    // Failed updates changed nothing.
    let fetched: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn malformed_requests_are_client_errors() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let id = app.create("x").await["id"].as_i64().unwrap();
    for path in ["/api/messages".to_owned(), format!("/api/messages/{id}")] {
        let method = if path == "/api/messages" {
            reqwest::Method::POST
        } else {
            reqwest::Method::PATCH
        };
        let send = |body: &'static str, content_type: Option<&'static str>| {
            let mut req = app
                .client
                .request(method.clone(), app.url(&path))
                .body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req.send()
        };
        expect_error(
            send("{\"content\": ", Some("application/json"))
                .await
                .unwrap(),
            400,
            "malformed_json",
        )
        .await;
        expect_error(
            send("not json", Some("application/json")).await.unwrap(),
            400,
            "malformed_json",
        )
        .await;
        expect_error(
            send("{\"content\":\"x\"}", Some("text/plain"))
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        )
        .await;
        expect_error(
            send("{\"content\":\"x\"}", None).await.unwrap(),
            415,
            "unsupported_media_type",
        )
        .await;
        expect_error(
            send("", Some("application/json")).await.unwrap(),
            400,
            "malformed_json",
        )
        .await;
        let ok = send(
            "{\"content\":\"x\"}",
            Some("application/json; charset=utf-8"),
        )
        .await
        .unwrap();
        assert!(ok.status().is_success(), "{}", ok.status());

        let huge = json!({"content": "x".repeat(api::BODY_LIMIT + 1)}).to_string();
        let resp = app
            .client
            .request(method.clone(), app.url(&path))
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        expect_error(resp, 413, "payload_too_large").await;
    }
}

#[tokio::test]
async fn ids_must_be_integers_and_exist() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    for bad in ["abc", "1.5", "99999999999999999999999", "%20", "1;drop"] {
        let path = format!("/api/messages/{bad}");
        let err = expect_error(app.get(&path).await, 400, "invalid_id").await;
        assert_eq!(err["error"]["field"], "id");
        expect_error(
            app.patch_json(&path, json!({"content": "x"})).await,
            400,
            "invalid_id",
        )
        .await;
        expect_error(app.delete(&path).await, 400, "invalid_id").await;
    }
    for missing in ["0", "-1", "123456789", "9223372036854775807"] {
        let path = format!("/api/messages/{missing}");
        expect_error(app.get(&path).await, 404, "not_found").await;
        expect_error(
            app.patch_json(&path, json!({"content": "x"})).await,
            404,
            "not_found",
        )
        .await;
        expect_error(app.delete(&path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    expect_error(app.get("/api/nope").await, 404, "route_not_found").await;
    expect_error(app.get("/").await, 404, "route_not_found").await;
    let resp = app
        .client
        .put(app.url("/api/messages"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 405, "method_not_allowed").await;
    let resp = app
        .client
        .post(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 405, "method_not_allowed").await;
    let resp = app
        .client
        .put(app.url("/api/messages/1"))
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn list_is_newest_first_and_paginated_by_cursor() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            app.create(&format!("message {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // Delete two in the middle: excluded from pages.
    for id in [ids[20], ids[3]] {
        assert_eq!(
            app.delete(&format!("/api/messages/{id}")).await.status(),
            204
        );
    }
    let mut expected: Vec<i64> = ids
        .iter()
        .rev()
        .copied()
        .filter(|id| *id != ids[20] && *id != ids[3])
        .collect();

    // Default page size 20.
    let page: Value = app.get("/api/messages").await.json().await.unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 20);

    // Walk with limit 10: 10 + 10 + 3.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "10".to_owned())];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        let resp = app
            .client
            .get(app.url("/api/messages"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        pages += 1;
        let messages = page["messages"].as_array().unwrap();
        seen.extend(messages.iter().map(|m| m["id"].as_i64().unwrap()));
        match page["next_cursor"].as_i64() {
            Some(c) => {
                assert_eq!(c, *seen.last().unwrap());
                cursor = Some(c);
            }
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // Exactly one page: no next cursor.
    let resp = app
        .client
        .get(app.url("/api/messages?limit=23"))
        .send()
        .await
        .unwrap();
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 23);
    assert!(page["next_cursor"].is_null());
    let resp = app
        .client
        .get(app.url("/api/messages?limit=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Items have the Message shape.
    expected.truncate(1);
    let page: Value = app.get("/api/messages?limit=1").await.json().await.unwrap();
    let first = &page["messages"][0];
    assert_eq!(first["id"].as_i64().unwrap(), expected[0]);
    assert_eq!(first["content"], "message 24");
    assert!(first["created_at"].is_string() && first["updated_at"].is_string());

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-5", "limit"),
        ("limit=abc", "limit"),
        ("cursor=abc", "cursor"),
        ("limit=1.5", "limit"),
    ] {
        let err = expect_error(
            app.get(&format!("/api/messages?{query}")).await,
            400,
            "invalid_query",
        )
        .await;
        assert_eq!(err["error"]["field"], field, "{query}: {err}");
    }
}

#[tokio::test]
async fn request_ids_are_echoed() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let resp = app
        .client
        .get(app.url("/api/messages/abc"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    let resp = app.get("/api/health").await;
    assert!(!resp.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_error() {
    let db = migrated_db().await;
    let id = {
        let app = TestApp::spawn(&db).await;
        app.create("locked").await["id"].as_i64().unwrap()
    };
    let app = TestApp::spawn_with(&db, |c| c.request_timeout = Duration::from_millis(500)).await;
    // Hold a lock so the update blocks in the database.
    let mut conn = db.connect().await;
    sqlx::raw_sql("begin; lock table messages in access exclusive mode")
        .execute(&mut conn)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let resp = app
        .patch_json(&format!("/api/messages/{id}"), json!({"content": "y"}))
        .await;
    expect_error(resp, 503, "timeout").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    sqlx::raw_sql("rollback").execute(&mut conn).await.unwrap();
    // And the api is fine afterwards.
    let resp = app.get(&format!("/api/messages/{id}")).await;
    assert_eq!(resp.status(), 200);
}

/// The pool pings a connection idle for over `IDLE_BEFORE_PING` before a request gets it: one
/// the server ended meanwhile (a restart, a failover, a rotation ending old sessions) is
/// replaced, not answered as a 503.
#[tokio::test]
async fn a_connection_the_server_ended_while_idle_never_reaches_a_request() {
    let db = migrated_db().await;
    let app = TestApp::spawn_with(&db, |config| config.max_connections = 2).await;
    for _ in 0..4 {
        assert_eq!(app.get("/api/messages").await.status(), 200);
    }
    let mut admin = db.connect().await;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(ended >= 1, "the api's pooled connections were ended");
    tokio::time::sleep(api::IDLE_BEFORE_PING + std::time::Duration::from_millis(200)).await;
    for _ in 0..4 {
        assert_eq!(app.get("/api/messages").await.status(), 200);
    }
}
