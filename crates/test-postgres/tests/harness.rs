use std::time::Duration;

use sqlx::Connection;
use test_postgres::{PgServer, database};

#[tokio::test]
async fn each_test_gets_a_fresh_database() {
    let a = database().await;
    let b = database().await;
    assert_ne!(a.name, b.name);
    let pool = a.pool().await;
    sqlx::raw_sql("create table t (x int); insert into t values (1)")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = b.connect().await;
    let exists: bool = sqlx::query_scalar("select to_regclass('t') is not null")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "databases must be isolated");
    let current: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, b.name);
    let env = a.pg_env();
    assert!(env.iter().any(|(k, v)| *k == "PGDATABASE" && *v == a.name));
}

#[tokio::test]
async fn server_stops_and_restarts_on_the_same_port() {
    let server = PgServer::launch();
    let port = server.port();
    let db = server.create_database().await;
    let mut conn = db.connect().await;
    sqlx::raw_sql("create table kept (x int); insert into kept values (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    server.stop();
    assert!(!server.is_running());
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::PgConnection::connect_with(&db.connect_options()),
    )
    .await
    .expect("connect fails fast");
    assert!(err.is_err(), "server must be down");

    server.start();
    assert_eq!(server.port(), port);
    let mut conn = db.connect().await;
    let x: i32 = sqlx::query_scalar("select x from kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(x, 42, "data survives a restart");
}

#[test]
fn server_listens_on_loopback_only_and_cleans_up() {
    let server = PgServer::launch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listen: String = rt.block_on(async {
        let db = server.create_database().await;
        let mut conn = db.connect().await;
        sqlx::query_scalar("show listen_addresses")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(listen, "127.0.0.1");
    let port = server.port();
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server stopped on drop"
    );
}
