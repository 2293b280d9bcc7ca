//! The real `migrate` binary: CLI mode, configuration errors, and the Lambda entry point end to
//! end against an in-test Lambda Runtime API and a Secrets Manager stand-in.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use test_postgres::TestDb;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_migrate");

/// Variables the binary must not inherit from the developer's shell.
const SCRUB: &[&str] = &[
    "DATABASE_URL",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "DB_SECRET_ARN",
];

fn migrate_cmd() -> Command {
    let mut cmd = Command::new(BIN);
    for v in SCRUB {
        cmd.env_remove(v);
    }
    cmd.env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run migrate")
}

/// The JSON summary: the last line of stdout (log lines may precede it).
fn parse_summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("JSON summary expected: {}", text(out)))
}

#[tokio::test]
async fn cli_up_and_status_with_database_url() {
    let db = test_postgres::database().await;
    let out = run(migrate_cmd().arg("status").env("DATABASE_URL", db.url()));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("pending").count(), 4, "{stdout}");

    let out = run(migrate_cmd().arg("up").env("DATABASE_URL", db.url()));
    assert!(out.status.success(), "{}", text(&out));
    let summary = parse_summary(&out);
    assert_eq!(summary["applied"].as_array().unwrap().len(), 4);
    assert_eq!(summary["already_applied"], 0);

    let out = run(migrate_cmd().arg("status").env("DATABASE_URL", db.url()));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("applied").count(), 4, "{stdout}");
    assert!(stdout.contains("create messages"), "{stdout}");
}

#[tokio::test]
async fn up_prints_only_its_summary_on_stdout() {
    let db = test_postgres::database().await;
    let out = run(migrate_cmd()
        .arg("up")
        .env("DATABASE_URL", db.url())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info"));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("stdout is the summary alone: {}", text(&out)));
    assert!(summary["applied"].is_array(), "{summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("applying migration"),
        "logs on stderr: {}",
        text(&out)
    );
}

#[tokio::test]
async fn status_reports_a_failed_migration_as_up_does() {
    let db = test_postgres::database().await;
    let out = run(migrate_cmd().arg("up").env("DATABASE_URL", db.url()));
    assert!(out.status.success(), "{}", text(&out));
    // What a crashed non-transactional migration leaves behind.
    let mut conn = db.connect().await;
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
        .execute(&mut conn)
        .await
        .unwrap();

    let up = run(migrate_cmd().arg("up").env("DATABASE_URL", db.url()));
    assert!(!up.status.success(), "{}", text(&up));
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("partially applied"),
        "{}",
        text(&up)
    );

    let status = run(migrate_cmd().arg("status").env("DATABASE_URL", db.url()));
    assert!(
        !status.status.success(),
        "status must fail as up does: {}",
        text(&status)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_eq!(stdout.matches("FAILED").count(), 1, "{stdout}");
    assert!(stdout.contains("partially applied"), "{stdout}");
}

#[tokio::test]
async fn cli_up_with_libpq_variables() {
    let db = test_postgres::database().await;
    let out = run(migrate_cmd().arg("up").envs(db.pg_env()));
    assert!(out.status.success(), "{}", text(&out));
    let summary = parse_summary(&out);
    assert_eq!(summary["applied"].as_array().unwrap().len(), 4);
    let out = run(migrate_cmd().arg("up").envs(db.pg_env()));
    let summary = parse_summary(&out);
    assert_eq!(summary, json!({"applied": [], "already_applied": 4}));
}

#[test]
fn configuration_errors_name_the_variable() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "DATABASE_URL"),
        (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (vec![("PGHOST", "127.0.0.1"), ("PGPORT", "nope")], "PGPORT"),
        (
            vec![("PGHOST", "127.0.0.1"), ("PGSSLMODE", "sometimes")],
            "PGSSLMODE",
        ),
        (
            vec![
                ("PGHOST", "127.0.0.1"),
                ("PGSSLROOTCERT", "/does/not/exist.pem"),
            ],
            "PGSSLROOTCERT",
        ),
        (
            vec![("DATABASE_URL", "postgres://u@h/db"), ("LOG_FORMAT", "xml")],
            "LOG_FORMAT",
        ),
    ];
    for (env, variable) in cases {
        let out = run(migrate_cmd().arg("up").envs(env.clone()));
        assert!(!out.status.success(), "{env:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(variable),
            "{env:?} should name {variable}: {}",
            text(&out)
        );
    }
    // Lambda mode: the secret ARN is required.
    let out = run(migrate_cmd()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("PGHOST", "127.0.0.1"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DB_SECRET_ARN"),
        "{}",
        text(&out)
    );
    // Unknown subcommand.
    let out = run(migrate_cmd().arg("sideways"));
    assert!(!out.status.success());
}

#[tokio::test]
async fn cli_reports_unreachable_database() {
    // A port nobody listens on: fails (after the connect retries) with a clear message.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        run(migrate_cmd()
            .args(["status", "--connect-timeout", "2"])
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{port}/x?sslmode=disable"),
            ))
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect to the database"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

// ---------------------------------------------------------------------------------------------
// Lambda: a stand-in for the Lambda Runtime API and for Secrets Manager, on one local server.

#[derive(Debug)]
enum Outcome {
    Response(Value),
    Error {
        error_type: Option<String>,
        body: Value,
    },
}

struct Fake {
    secret: String,
    invocations_left: Mutex<u32>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    secret_requests: Mutex<Vec<Value>>,
}

async fn next_invocation(State(fake): State<Arc<Fake>>) -> Response {
    let give = {
        let mut left = fake.invocations_left.lock().unwrap();
        let give = *left > 0;
        *left = left.saturating_sub(1);
        give
    };
    if !give {
        // Like the real API: block until there is an invocation (the test ends before).
        std::future::pending::<()>().await;
    }
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    (
        [
            (
                "lambda-runtime-aws-request-id",
                "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned(),
            ),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:migrate".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                    .to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        r#"{"source":"test"}"#,
    )
        .into_response()
}

async fn invocation_response(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    assert_eq!(id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    let _ = fake.outcomes.send(Outcome::Response(
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ));
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    assert_eq!(id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = fake.outcomes.send(Outcome::Error { error_type, body });
    StatusCode::ACCEPTED
}

async fn init_error(State(fake): State<Arc<Fake>>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = fake.outcomes.send(Outcome::Error {
        error_type: Some("init".into()),
        body,
    });
    StatusCode::ACCEPTED
}

/// Secrets Manager, JSON 1.1 protocol: `POST /` with `X-Amz-Target: secretsmanager.<Operation>`.
async fn secrets_manager(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if target != "secretsmanager.GetSecretValue" {
        return (StatusCode::BAD_REQUEST, "unexpected operation").into_response();
    }
    assert!(
        headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().starts_with("AWS4-HMAC-SHA256")),
        "requests are signed"
    );
    let request: Value = serde_json::from_slice(&body).unwrap();
    fake.secret_requests.lock().unwrap().push(request.clone());
    let body = json!({
        "ARN": request["SecretId"],
        "Name": "rds!db-test",
        "VersionId": "00000000-0000-0000-0000-000000000001",
        "SecretString": fake.secret,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1.7e9,
    });
    (
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn start_fake(secret: Value) -> (String, Arc<Fake>, mpsc::UnboundedReceiver<Outcome>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake {
        secret: secret.to_string(),
        invocations_left: Mutex::new(1),
        outcomes: tx,
        secret_requests: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .route("/", post(secrets_manager))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, fake, rx)
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-test-AbCdEf";

/// Start the binary in Lambda mode against the fakes; returns the child (killed on drop).
fn spawn_lambda(addr: &str, db: &TestDb) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(BIN);
    for v in SCRUB {
        cmd.env_remove(v);
    }
    cmd.env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "migrate")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-key")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", format!("http://{addr}"))
        .env("DB_SECRET_ARN", SECRET_ARN)
        .env("PGHOST", &db.host)
        .env("PGPORT", db.port.to_string())
        .env("PGDATABASE", &db.name)
        .env("PGSSLMODE", "disable")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn migrate in Lambda mode")
}

async fn outcome(rx: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("the function reports within 60s")
        .expect("outcome")
}

/// A login role owning the test database: proves the secret's credentials are the ones used.
async fn create_owner_role(db: &TestDb) -> String {
    let role = format!("migrator_{}", db.name);
    let mut conn = db.connect().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create role \"{role}\" login password 'from-the-secret'; \
         alter database \"{db}\" owner to \"{role}\"; \
         alter schema public owner to \"{role}\"",
        db = db.name
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    role
}

#[tokio::test]
async fn lambda_applies_migrations_with_the_secret_credentials() {
    let db = test_postgres::database().await;
    let role = create_owner_role(&db).await;
    let (addr, fake, mut rx) =
        start_fake(json!({"username": role, "password": "from-the-secret", "engine": "postgres"}))
            .await;
    let mut child = spawn_lambda(&addr, &db);

    match outcome(&mut rx).await {
        Outcome::Response(body) => {
            assert_eq!(body["already_applied"], 0, "{body}");
            let applied: Vec<i64> = serde_json::from_value(body["applied"].clone()).unwrap();
            let expected: Vec<i64> = migrate::MIGRATOR.iter().map(|m| m.version).collect();
            assert_eq!(applied, expected);
        }
        other => panic!("expected a response, got {other:?}"),
    }
    assert_eq!(
        fake.secret_requests.lock().unwrap()[0]["SecretId"],
        SECRET_ARN
    );

    let mut conn = db.connect().await;
    let owner: String =
        sqlx::query_scalar("select tableowner::text from pg_tables where tablename = 'messages'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(owner, role, "migrations ran as the secret's user");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn lambda_reports_a_failing_migration_as_a_function_error() {
    let db = test_postgres::database().await;
    // A conflicting object: the embedded `create messages` migration cannot apply.
    let mut conn = db.connect().await;
    sqlx::raw_sql("create table messages (legacy text)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (addr, _fake, mut rx) = start_fake(json!({"username": db.user, "password": "x"})).await;
    let mut child = spawn_lambda(&addr, &db);

    match outcome(&mut rx).await {
        Outcome::Error { error_type, body } => {
            assert_eq!(body["errorType"], "MigrationError", "{body}");
            assert!(
                error_type.is_some(),
                "the runtime sets Lambda-Runtime-Function-Error-Type"
            );
            let message = body["errorMessage"].as_str().unwrap();
            let first = migrate::MIGRATOR.iter().next().unwrap();
            assert!(
                message.contains(&format!(
                    "migration {} (create messages) failed",
                    first.version
                )),
                "{message}"
            );
            assert!(message.contains("already exists"), "{message}");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    // Rolled back: nothing recorded as applied, the legacy table untouched.
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 0);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn lambda_reports_a_bad_secret_without_leaking_it() {
    let db = test_postgres::database().await;
    let (addr, _fake, mut rx) = start_fake(json!({"user": "someone", "pass": "hunter2"})).await;
    let mut child = spawn_lambda(&addr, &db);
    match outcome(&mut rx).await {
        Outcome::Error { body, .. } => {
            assert_eq!(body["errorType"], "SecretError", "{body}");
            let message = body["errorMessage"].as_str().unwrap();
            assert!(message.contains("username"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    child.kill().await.unwrap();
}
