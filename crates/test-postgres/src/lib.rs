//! Test harness for code that needs a real PostgreSQL.
//!
//! - [`database()`] gives each test its own fresh, empty database. When `DATABASE_URL` is set,
//!   databases are created on that server (and dropped afterwards); otherwise ONE throwaway
//!   server per test process is started from the PostgreSQL binaries on `PATH` (`initdb`,
//!   `pg_ctl`, `postgres`): temp dir, free port, `127.0.0.1` only, `fsync=off`, removed when the
//!   test process exits.
//! - [`PgServer`] is a server of your own, for tests that stop and restart it
//!   ([`PgServer::stop`], [`PgServer::start`] on the same port).
//!
//! PostgreSQL refuses to run as root: when the effective uid is 0 (CI), the server runs as
//! `nobody` (through `runuser`, or `setpriv`), with its directory chowned to that user.
//!
//! ```no_run
//! # async fn t() {
//! let db = test_postgres::database().await;
//! let pool = db.pool().await;
//! sqlx::query("select 1").execute(&pool).await.unwrap();
//! # }
//! ```

mod server;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

pub use server::PgServer;

/// A fresh database created for one test.
#[derive(Debug)]
pub struct TestDb {
    /// Host (always `127.0.0.1` for a throwaway server).
    pub host: String,
    /// TCP port of the server.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password, if the server needs one.
    pub password: Option<String>,
    /// Name of the database (unique per test).
    pub name: String,
    url: String,
    drop_on_exit: Option<String>,
}

impl TestDb {
    /// `postgres://` URL of this database (what you would put in `DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same settings as libpq variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
    /// `PGPASSWORD` if any, `PGSSLMODE=disable` for a throwaway server), to pass to a child process.
    pub fn pg_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.name.clone()),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD", p.clone()));
        }
        if self.drop_on_exit.is_none() {
            env.push(("PGSSLMODE", "disable".to_owned()));
        }
        env
    }

    /// sqlx connection options for this database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.url.parse().expect("valid test database URL")
    }

    /// A small connection pool on this database.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(self.connect_options())
            .await
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }

    /// One connection on this database.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.connect_options())
            .await
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Only on an external (DATABASE_URL) server: a throwaway server is removed whole.
        let Some(admin_url) = self.drop_on_exit.take() else {
            return;
        };
        let name = self.name.clone();
        // Runs on its own thread and runtime: Drop may be called inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

enum Shared {
    External(String),
    Local(Box<PgServer>),
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Shared::External(url),
        _ => Shared::Local(Box::new(PgServer::launch())),
    })
}

/// A fresh, empty database for one test, on the shared server of this test process
/// (`DATABASE_URL`'s server if set, else a throwaway local one started on first use).
pub async fn database() -> TestDb {
    match shared() {
        Shared::External(url) => create_database_at(url, true).await,
        Shared::Local(server) => server.create_database().await,
    }
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "test_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Replace the database of a `postgres://` URL (keeps user, password, host, query).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub(crate) async fn create_database_at(admin_url: &str, external: bool) -> TestDb {
    let name = unique_name();
    let mut conn = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
    let url = with_database(admin_url, &name);
    let options: PgConnectOptions = url.parse().expect("valid database URL");
    let options = options.disable_statement_logging();
    TestDb {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        user: options.get_username().to_owned(),
        password: password_of(admin_url),
        name,
        url,
        drop_on_exit: external.then(|| admin_url.to_owned()),
    }
}

fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    Some(percent_decode(password))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rewriting() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u@h:5/", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(password_of("postgres://u:p%40@h/db").as_deref(), Some("p@"));
        assert_eq!(password_of("postgres://u@h/db"), None);
    }
}
