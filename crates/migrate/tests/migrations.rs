//! Properties of the migration runner, against a real PostgreSQL.

use std::path::Path;

use migrate::{Error, MIGRATOR, State};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

async fn migrator_from(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrator) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let migrator = Migrator::new(dir.path().to_path_buf()).await.unwrap();
    (dir, migrator)
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

async fn table_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("select to_regclass($1) is not null")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn applied_versions(conn: &mut PgConnection) -> Vec<i64> {
    sqlx::query_scalar("select version from _sqlx_migrations order by version")
        .fetch_all(conn)
        .await
        .unwrap()
}

fn embedded_versions() -> Vec<i64> {
    MIGRATOR.iter().map(|m| m.version).collect()
}

#[tokio::test]
async fn embedded_migrations_apply_once() {
    assert_eq!(
        embedded_versions().len(),
        4,
        "create messages, soft delete, updated_at, idempotency key"
    );
    let db = test_postgres::database().await;
    let mut conn = db.connect().await;

    let status = migrate::status(&MIGRATOR, &mut conn).await.unwrap();
    assert!(status.iter().all(|s| s.state == State::Pending));

    let first = migrate::run(&MIGRATOR, &mut conn).await.unwrap();
    assert_eq!(first.applied, embedded_versions());
    assert_eq!(first.already_applied, 0);
    let second = migrate::run(&MIGRATOR, &mut conn).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, 4);
    assert_eq!(
        serde_json::to_value(&second).unwrap(),
        serde_json::json!({"applied": [], "already_applied": 4})
    );

    let status = migrate::status(&MIGRATOR, &mut conn).await.unwrap();
    assert!(
        status.iter().all(|s| s.state == State::Applied),
        "{status:?}"
    );

    // The resulting schema: the columns the api relies on.
    let columns: Vec<String> = sqlx::query_scalar(
        "select column_name::text from information_schema.columns
         where table_name = 'messages' order by ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "content",
            "created_at",
            "deleted_at",
            "updated_at",
            "idempotency_key"
        ]
    );
    // The content bound is enforced by the database too.
    let err = sqlx::query("insert into messages (content) values ('')")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("messages_content_length"), "{err}");
}

#[tokio::test]
async fn updated_at_backfills_existing_rows() {
    let db = test_postgres::database().await;
    let mut conn = db.connect().await;
    let versions = embedded_versions();
    // Apply the first two, insert a row, then the third.
    let first_two = Migrator::with_migrations(MIGRATOR.iter().take(2).cloned().collect());
    migrate::run(&first_two, &mut conn).await.unwrap();
    sqlx::query(
        "insert into messages (content, created_at) values ('old', '2020-01-01T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let summary = migrate::run(&MIGRATOR, &mut conn).await.unwrap();
    assert_eq!(summary.applied, versions[2..]);
    assert_eq!(summary.already_applied, 2);
    let same: bool = sqlx::query_scalar("select updated_at = created_at from messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(same);
}

#[tokio::test]
async fn concurrent_runs_apply_once() {
    let db = test_postgres::database().await;
    let mut a = db.connect().await;
    let mut b = db.connect().await;
    let (ra, rb) = tokio::join!(
        migrate::run(&MIGRATOR, &mut a),
        migrate::run(&MIGRATOR, &mut b)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut results = [ra, rb];
    results.sort_by_key(|s| s.applied.len());
    assert!(results[0].applied.is_empty(), "{results:?}");
    assert_eq!(results[0].already_applied, 4);
    assert_eq!(results[1].applied, embedded_versions());
    assert_eq!(applied_versions(&mut a).await, embedded_versions());
}

#[tokio::test]
async fn failing_migration_rolls_back_and_is_named() {
    let db = test_postgres::database().await;
    let mut conn = db.connect().await;
    let (dir, migrator) = migrator_from(&[
        ("1_first.sql", "create table first (x int);"),
        (
            "2_broken.sql",
            "create table second (x int);\ninsert into nowhere values (1);",
        ),
    ])
    .await;
    let err = migrate::run(&migrator, &mut conn).await.unwrap_err();
    match &err {
        Error::Failed {
            version,
            description,
            ..
        } => {
            assert_eq!(*version, 2);
            assert_eq!(description, "broken");
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("migration 2 (broken) failed"), "{message}");
    assert!(
        message.contains("nowhere"),
        "the database error is kept: {message}"
    );
    // Located in the file (line 2, where `nowhere` starts), not in Postgres' C sources.
    assert!(
        message.contains("at line 2, column 13 of the file"),
        "{message}"
    );
    // Migration 1 committed, migration 2 left nothing behind.
    assert!(table_exists(&mut conn, "first").await);
    assert!(!table_exists(&mut conn, "second").await);
    assert_eq!(applied_versions(&mut conn).await, vec![1]);

    // The advisory lock was released: after fixing the file, another session succeeds.
    write_files(
        dir.path(),
        &[("2_broken.sql", "create table second (x int);")],
    );
    let fixed = Migrator::new(dir.path().to_path_buf()).await.unwrap();
    let mut other = db.connect().await;
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        migrate::run(&fixed, &mut other),
    )
    .await
    .expect("lock released")
    .unwrap();
    assert_eq!(summary.applied, vec![2]);
    assert_eq!(summary.already_applied, 1);
}

#[tokio::test]
async fn changed_applied_migration_is_refused() {
    let db = test_postgres::database().await;
    let mut conn = db.connect().await;
    let (dir, migrator) = migrator_from(&[
        ("1_first.sql", "create table first (x int);"),
        ("2_second.sql", "create table second (x int);"),
    ])
    .await;
    migrate::run(&migrator, &mut conn).await.unwrap();

    write_files(
        dir.path(),
        &[
            ("1_first.sql", "create table first (x bigint);"),
            ("3_third.sql", "create table third (x int);"),
        ],
    );
    let edited = Migrator::new(dir.path().to_path_buf()).await.unwrap();
    let err = migrate::run(&edited, &mut conn).await.unwrap_err();
    assert!(matches!(err, Error::Changed { version: 1, .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("migration 1 (first)") && message.contains("checksum"),
        "{message}"
    );
    // Nothing else ran.
    assert!(!table_exists(&mut conn, "third").await);

    let status = migrate::status(&edited, &mut conn).await.unwrap();
    let states: Vec<_> = status
        .iter()
        .map(|s| (s.version, s.state.clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, State::Changed),
            (2, State::Applied),
            (3, State::Pending)
        ]
    );
}

#[tokio::test]
async fn unknown_applied_migration_is_refused() {
    let db = test_postgres::database().await;
    let mut conn = db.connect().await;
    let (_dir, newer) = migrator_from(&[
        ("1_first.sql", "create table first (x int);"),
        ("2_second.sql", "create table second (x int);"),
    ])
    .await;
    migrate::run(&newer, &mut conn).await.unwrap();
    let (_dir2, older) = migrator_from(&[("1_first.sql", "create table first (x int);")]).await;
    let err = migrate::run(&older, &mut conn).await.unwrap_err();
    assert!(matches!(err, Error::Unknown(2)), "{err:?}");
    assert!(err.to_string().contains("migration 2"), "{err}");
    let status = migrate::status(&older, &mut conn).await.unwrap();
    assert_eq!(status[1].state, State::Unknown);
    conn.close().await.unwrap();
}
