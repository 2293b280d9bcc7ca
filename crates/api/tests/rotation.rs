//! Credentials that rotate: the real `api` binary reads its database user name and password
//! from a Secrets Manager secret (`DB_SECRET_ARN`) and keeps serving, without a restart, when
//! the password changes in PostgreSQL and in the secret together, as an RDS rotation does; and
//! the pool's timer alone picks up a rotation.
//!
//! Secrets Manager is moto on loopback (AWS is out of reach here; moto speaks its API), PostgreSQL
//! a throwaway server that checks passwords (`scram-sha-256`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use common::{ApiProcess, migrate, wait_for_status};
use serde_json::json;
use service_kit::db::{SecretCredentials, SecretSource, is_credentials_rejected};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection};
use test_postgres::{PgServer, TestDb};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const BEFORE: &str = "password-before-rotation";
const AFTER: &str = "password-after-rotation";
/// Concurrent clients of the steady load.
const CLIENTS: usize = 4;
/// Requests after the api has settled that must all succeed.
const SETTLED_REQUESTS: usize = 400;

/// A login role that may use the messages table, with a password the server checks.
async fn create_app_role(db: &TestDb) -> String {
    let role = format!("app_{}", db.name);
    let mut conn = db.connect().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create role \"{role}\" login password '{BEFORE}'; \
         grant select, insert, update, delete on all tables in schema public to \"{role}\"; \
         grant usage on all sequences in schema public to \"{role}\""
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    role
}

/// Secrets Manager on moto (fake credentials, loopback only).
async fn secrets_manager(endpoint: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    Client::from_conf(config)
}

/// The database's secret as RDS names and shapes it, holding `role`'s first password.
async fn create_db_secret(secrets: &Client, db: &TestDb, role: &str) -> String {
    secrets
        .create_secret()
        .name(format!("rds!db-{}", db.name))
        .secret_string(secret_string(role, BEFORE))
        .send()
        .await
        .expect("CreateSecret on moto")
        .arn
        .expect("an ARN")
}

fn secret_string(role: &str, password: &str) -> String {
    json!({"username": role, "password": password, "engine": "postgres"}).to_string()
}

/// End every session but ours that began before `cutoff`, the moment the password changed:
/// those may have logged in with the old password (even one still authenticating then, not yet
/// showing its user). What the pool does anyway as connections age out, or a failover does: the
/// api's next requests need new connections. Returns once all of them are gone.
async fn end_sessions_started_before(admin: &mut PgConnection, cutoff: OffsetDateTime) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended = 0;
    loop {
        // Two statements: in one, the planner may call pg_terminate_backend before filtering.
        let pids: Vec<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity where backend_type = 'client backend' \
             and pid <> pg_backend_pid() and backend_start < $1",
        )
        .bind(cutoff)
        .fetch_all(&mut *admin)
        .await
        .unwrap();
        if pids.is_empty() {
            return ended;
        }
        assert!(
            Instant::now() < deadline,
            "{} sessions outlived pg_terminate_backend",
            pids.len()
        );
        sqlx::query("select pg_terminate_backend(pid) from unnest($1::int[]) as pid")
            .bind(&pids)
            .execute(&mut *admin)
            .await
            .unwrap();
        ended += pids.len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Outcome of one request of the load.
struct Sample {
    started: Instant,
    finished: Instant,
    ok: bool,
    what: String,
}

type Samples = Arc<Mutex<Vec<Sample>>>;

/// `CLIENTS` loops of create-then-list until `stop` (or two minutes: the test stays bounded).
fn steady_load(base: String, samples: Samples, stop: Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    (0..CLIENTS)
        .map(|worker| {
            let (client, base, samples, stop) =
                (client.clone(), base.clone(), samples.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    n += 1;
                    let request = if n.is_multiple_of(2) {
                        client
                            .post(format!("{base}/api/messages"))
                            .json(&json!({"content": format!("worker {worker} message {n}")}))
                    } else {
                        client.get(format!("{base}/api/messages?limit=5"))
                    };
                    let started = Instant::now();
                    let (ok, what) = match request.send().await {
                        Ok(r) if r.status().is_success() => (true, String::new()),
                        Ok(r) => (
                            false,
                            format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                        ),
                        Err(e) => (false, e.to_string()),
                    };
                    let finished = Instant::now();
                    samples.lock().unwrap().push(Sample {
                        started,
                        finished,
                        ok,
                        what,
                    });
                }
            })
        })
        .collect()
}

/// Wait (bounded) until `found` returns something from the samples so far.
async fn wait_for<T>(samples: &Samples, what: &str, found: impl Fn(&[Sample]) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = found(&samples.lock().unwrap()) {
            return t;
        }
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keeps_serving_through_a_password_rotation_under_load() {
    let server = PgServer::launch();
    server.require_passwords();
    let db = server.create_database().await;
    migrate(&db).await;
    let role = create_app_role(&db).await;
    let mut admin = db.connect().await;

    let moto = infra_tests::Moto::start();
    let secrets = secrets_manager(&moto.endpoint).await;
    let arn = create_db_secret(&secrets, &db, &role).await;

    // The refresh timer is far away: only a rejected password can make the api re-read the secret.
    let mut api = ApiProcess::start(&[
        ("PGHOST", db.host.clone()),
        ("PGPORT", db.port.to_string()),
        ("PGDATABASE", db.name.clone()),
        ("PGSSLMODE", "disable".to_owned()),
        ("DB_SECRET_ARN", arn.clone()),
        ("DB_SECRET_REFRESH_SECONDS", "3600".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ])
    .await;
    let pid = api.child.id();
    // Drained as it comes: the api logs every request, and a full pipe would stall it.
    let mut stdout = api.child.stdout.take().expect("piped stdout");
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    wait_for_status(
        &reqwest::Client::new(),
        &api.url("/api/ready"),
        200,
        Duration::from_secs(15),
    )
    .await;

    let samples = Samples::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(api.url(""), samples.clone(), stop.clone());
    wait_for(&samples, "load before the rotation", |s| {
        (s.len() >= 100).then_some(())
    })
    .await;

    // The rotation: PostgreSQL first, then the secret (RDS's order). Then every session of the
    // api ends, so its next requests need new connections, with the new password.
    let rotated_at = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "alter role \"{role}\" password '{AFTER}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let password_changed: OffsetDateTime = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret_string(&role, AFTER))
        .send()
        .await
        .expect("PutSecretValue on moto");
    assert!(
        end_sessions_started_before(&mut admin, password_changed).await > 0,
        "the api held no database session under load"
    );
    let old_sessions_gone = Instant::now();

    // Settled: a request started after the old sessions were gone succeeded (so on a connection
    // made with the new password), and the pool's acquire timeout has passed since: a connection
    // attempt that began with the old password just before the api swapped in the new one can
    // still be refused until then (seen under CI's load, where each SCRAM login takes tens of
    // milliseconds). From then on, every request must succeed.
    let first_success = wait_for(&samples, "a success after the rotation", |s| {
        s.iter()
            .filter(|s| s.ok && s.started > old_sessions_gone)
            .map(|s| s.finished)
            .min()
    })
    .await;
    let acquire_timeout =
        api::Config::defaults(sqlx::postgres::PgConnectOptions::new_without_pgpass())
            .db_acquire_timeout;
    let settled = first_success + acquire_timeout;
    tokio::time::sleep_until(settled).await;
    wait_for(&samples, "enough load after settling", |s| {
        (s.iter().filter(|s| s.started > settled).count() >= SETTLED_REQUESTS).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }

    // The same process served throughout, and the old password is really refused.
    assert!(api.child.try_wait().unwrap().is_none(), "the api exited");
    assert_eq!(api.child.id(), pid, "the api was restarted");
    let old = db.connect_options().username(&role).password(BEFORE);
    let refused = PgConnection::connect_with(&old).await.err();
    assert!(
        refused.as_ref().is_some_and(is_credentials_rejected),
        "the old password still works: {refused:?}"
    );
    api.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), api.child.wait())
        .await
        .expect("the api exits on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let logs = logs.await.unwrap();
    assert!(
        logs.contains("database credentials read from DB_SECRET_ARN"),
        "{logs}"
    );
    for password in [BEFORE, AFTER] {
        assert!(!logs.contains(password), "a password in the logs");
    }
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();

    let samples = samples.lock().unwrap();
    let failed = |window: &dyn Fn(Instant) -> bool| -> Vec<String> {
        samples
            .iter()
            .filter(|s| !s.ok && window(s.started))
            .map(|s| {
                format!(
                    "{:?} after the rotation: {}",
                    s.started - rotated_at,
                    s.what
                )
            })
            .collect()
    };
    let none: Vec<String> = Vec::new();
    assert_eq!(failed(&|t| t < rotated_at), none, "before the rotation");
    let while_settling = failed(&|t| t >= rotated_at && t < settled).len();
    assert_eq!(
        failed(&|t| t >= settled),
        none,
        "requests failed after the api settled at {:?} ({while_settling} failed while it \
         settled); the api's warnings:\n{}",
        settled - rotated_at,
        warnings.join("\n")
    );
}

#[tokio::test]
/// The timer alone, with no rejected request to prompt it, carries a rotated password into the
/// pool (`service_kit::db::SecretCredentials`, without the api around it).
async fn the_refresh_timer_carries_a_rotated_password_into_the_pool() {
    let server = PgServer::launch();
    server.require_passwords();
    let db = server.create_database().await;
    let role = format!("app_{}", db.name);
    let mut admin = db.connect().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create role \"{role}\" login password '{BEFORE}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    let moto = infra_tests::Moto::start();
    let secrets = secrets_manager(&moto.endpoint).await;
    let arn = create_db_secret(&secrets, &db, &role).await;

    // Host, port and database only: user name and password come from the secret.
    let base = PgConnectOptions::new_without_pgpass()
        .host(&db.host)
        .port(db.port)
        .database(&db.name)
        .ssl_mode(PgSslMode::Disable);
    let source = SecretSource {
        arn,
        refresh_interval: Duration::from_secs(1),
    };
    let credentials = Arc::new(SecretCredentials::new(
        secrets.clone(),
        &source,
        base.clone(),
    ));
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(base);
    credentials.clone().keep_fresh(pool.clone()).await;
    let user: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&pool)
        .await
        .expect("the pool connects with the secret's credentials");
    assert_eq!(user, role);

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "alter role \"{role}\" password '{AFTER}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    secrets
        .put_secret_value()
        .secret_id(&source.arn)
        .secret_string(secret_string(&role, AFTER))
        .send()
        .await
        .expect("PutSecretValue on moto");

    // The options the pool would open its next connection with take the new password.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match PgConnection::connect_with(&pool.connect_options()).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) if is_credentials_rejected(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the pool still has the old password 15 s after the rotation: {e}"),
        }
    }
    // The connection opened before the rotation still serves.
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn secret_settings_that_cannot_work_exit_2_naming_the_variable() {
    let base = [
        ("PORT", "3000"),
        ("PGHOST", "127.0.0.1"),
        (
            "DB_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-x",
        ),
    ];
    for ((name, value), variable) in [
        (("PGPASSWORD", "hunter2"), "PGPASSWORD"),
        (
            ("DATABASE_URL", "postgres://u:hunter2@h/db"),
            "DATABASE_URL",
        ),
        (
            ("DB_SECRET_REFRESH_SECONDS", "0"),
            "DB_SECRET_REFRESH_SECONDS",
        ),
        (
            ("DB_SECRET_REFRESH_SECONDS", "soon"),
            "DB_SECRET_REFRESH_SECONDS",
        ),
    ] {
        let out = common::api_command()
            .envs(base)
            .env(name, value)
            .output()
            .await
            .expect("run api");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(variable), "{name}={value}: {stderr}");
        assert!(!stderr.contains("hunter2"), "a password echoed: {stderr}");
    }
}
