//! The real `api` binary: configuration errors, readiness across database outages, graceful
//! shutdown, JSON logs with request ids, metrics on their own port.

mod common;

use std::time::Duration;

use common::{ApiProcess, api_command, expect_error, migrate, migrated_db, wait_for_status};
use serde_json::{Value, json};

async fn run_expecting_failure(env: &[(&str, &str)], variable: &str) {
    let out = api_command()
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run api");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{env:?} should fail");
    assert!(
        stderr.contains(variable),
        "{env:?}: stderr should name {variable}: {stderr}"
    );
}

#[tokio::test]
async fn configuration_errors_exit_non_zero_naming_the_variable() {
    let db = "postgres://u@127.0.0.1:1/db";
    run_expecting_failure(&[("DATABASE_URL", db)], "PORT").await;
    run_expecting_failure(&[("PORT", "abc"), ("DATABASE_URL", db)], "PORT").await;
    run_expecting_failure(&[("PORT", "70000"), ("DATABASE_URL", db)], "PORT").await;
    run_expecting_failure(&[("PORT", "3000")], "DATABASE_URL").await;
    run_expecting_failure(
        &[("PORT", "3000"), ("DATABASE_URL", "not a url")],
        "DATABASE_URL",
    )
    .await;
    run_expecting_failure(
        &[("PORT", "3000"), ("PGHOST", "h"), ("PGPORT", "x")],
        "PGPORT",
    )
    .await;
    run_expecting_failure(
        &[("PORT", "3000"), ("PGHOST", "h"), ("PGSSLMODE", "maybe")],
        "PGSSLMODE",
    )
    .await;
    run_expecting_failure(
        &[
            ("PORT", "3000"),
            ("PGHOST", "h"),
            ("PGSSLROOTCERT", "/nonexistent/ca.pem"),
        ],
        "PGSSLROOTCERT",
    )
    .await;
    run_expecting_failure(
        &[
            ("PORT", "3000"),
            ("DATABASE_URL", db),
            ("METRICS_PORT", "-1"),
        ],
        "METRICS_PORT",
    )
    .await;
    run_expecting_failure(
        &[
            ("PORT", "3000"),
            ("DATABASE_URL", db),
            ("LOG_FORMAT", "yaml"),
        ],
        "LOG_FORMAT",
    )
    .await;
}

#[tokio::test]
async fn starts_with_the_database_down_and_recovers() {
    let server = test_postgres::PgServer::launch();
    let db = server.create_database().await;
    migrate(&db).await;
    server.stop();

    let api = ApiProcess::start(&[("DATABASE_URL", db.url().to_owned())]).await;
    let client = reqwest::Client::new();
    // Live without the database, not ready.
    assert_eq!(
        client
            .get(api.url("/api/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    expect_error(
        client.get(api.url("/api/ready")).send().await.unwrap(),
        503,
        "database_unavailable",
    )
    .await;
    expect_error(
        client.get(api.url("/api/messages")).send().await.unwrap(),
        503,
        "database_unavailable",
    )
    .await;
    let resp = client
        .post(api.url("/api/messages"))
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    expect_error(resp, 503, "database_unavailable").await;
    // Client mistakes are still reported as such.
    expect_error(
        client
            .get(api.url("/api/messages/abc"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_id",
    )
    .await;

    server.start();
    wait_for_status(
        &client,
        &api.url("/api/ready"),
        200,
        Duration::from_secs(20),
    )
    .await;
    let resp = client
        .post(api.url("/api/messages"))
        .json(&json!({"content": "back"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // An outage while running (pooled connections go stale), then recovery again.
    server.stop();
    wait_for_status(
        &client,
        &api.url("/api/ready"),
        503,
        Duration::from_secs(20),
    )
    .await;
    expect_error(
        client.get(api.url("/api/messages")).send().await.unwrap(),
        503,
        "database_unavailable",
    )
    .await;
    server.start();
    wait_for_status(
        &client,
        &api.url("/api/ready"),
        200,
        Duration::from_secs(20),
    )
    .await;
    let page: Value = client
        .get(api.url("/api/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["content"], "back");

    api.signal("-TERM");
    let (status, _) = api.wait_exit().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let db = migrated_db().await;
    // Configured through the libpq variables this time.
    let env: Vec<(&str, String)> = db.pg_env();
    let api = ApiProcess::start(&env).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(api.url("/api/messages"))
        .json(&json!({"content": "slow"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Block the next request in the database with a table lock.
    let mut conn = db.connect().await;
    sqlx::raw_sql("begin; lock table messages in access exclusive mode")
        .execute(&mut conn)
        .await
        .unwrap();
    let url = api.url(&format!("/api/messages/{}", created["id"]));
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !in_flight.is_finished(),
        "the request should be blocked on the lock"
    );

    api.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // No new connections once shutting down.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", api.port))
            .await
            .is_err(),
        "listener closed after SIGTERM"
    );
    assert!(!in_flight.is_finished());

    sqlx::raw_sql("rollback").execute(&mut conn).await.unwrap();
    let resp = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["content"], "slow");
    let (status, _) = api.wait_exit().await;
    assert!(status.success(), "clean exit after draining: {status}");
}

#[tokio::test]
async fn sigint_stops_the_server() {
    let db = migrated_db().await;
    let api = ApiProcess::start(&[("DATABASE_URL", db.url().to_owned())]).await;
    api.signal("-INT");
    let (status, _) = api.wait_exit().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_metrics_are_on_their_own_port() {
    let db = migrated_db().await;
    let api = ApiProcess::start(&[("DATABASE_URL", db.url().to_owned())]).await;
    let client = reqwest::Client::new();

    let resp = client
        .get(api.url("/api/messages/abc"))
        .header("x-request-id", "log-test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "log-test-123");
    assert_eq!(resp.status(), 400);
    for _ in 0..2 {
        let resp = client
            .get(api.url("/api/messages/424242"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }

    let metrics_url = format!("http://127.0.0.1:{}/metrics", api.metrics_port);
    let resp = client.get(&metrics_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = resp.text().await.unwrap();
    let has = |status: &str| {
        body.lines().any(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/messages/{id}""#)
                && l.contains(&format!(r#"status="{status}""#))
        })
    };
    assert!(has("400") && has("404"), "{body}");
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(!body.contains("424242"), "raw paths must not be labels");
    // Not exposed on the public port.
    expect_error(
        client.get(api.url("/metrics")).send().await.unwrap(),
        404,
        "route_not_found",
    )
    .await;

    api.signal("-TERM");
    let (status, stdout) = api.wait_exit().await;
    assert!(status.success());
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| {
            l["message"] == "finished processing request"
                && l["spans"].as_array().is_some_and(|spans| {
                    spans
                        .iter()
                        .any(|s| s["name"] == "request" && s["request_id"] == "log-test-123")
                })
        })
        .unwrap_or_else(|| panic!("no request log line with the request id:\n{stdout}"));
    assert_eq!(finished["status"], 400);
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}
