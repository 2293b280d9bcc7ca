//! Database migrations of the suite: the SQL files of `migrations/` (repo root), embedded.
//!
//! [`run`] applies pending migrations under sqlx's advisory lock (safe when several run at
//! once), each in its own transaction, refusing to run when an applied migration was changed
//! (checksum) or is unknown to this binary. [`status`] reports without changing anything.

pub mod lambda;

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{AppliedMigration, Migrate, MigrateError, Migration, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Name of sqlx's bookkeeping table.
const TABLE: &str = "_sqlx_migrations";

/// Default time to wait for the database to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Number of migrations found already applied.
    pub already_applied: usize,
}

/// State of one migration (see [`status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Applied, checksum matches.
    Applied,
    /// Not yet applied.
    Pending,
    /// Applied, but the file has changed since.
    Changed,
    /// Applied to the database but not known to this binary.
    Unknown,
    /// Recorded as failed (`success = false`): a run left it partially applied, and
    /// `up` refuses to run until it is repaired (see [`Error::Dirty`]).
    Failed,
}

/// One line of [`status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// Version (the timestamp of the file name).
    pub version: i64,
    /// Description (the rest of the file name).
    pub description: String,
    /// State.
    pub state: State,
}

/// Errors of a migration run. Messages name the migration concerned and never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration failed; its transaction was rolled back.
    #[error("migration {version} ({description}) failed and was rolled back: {reason}")]
    Failed {
        /// Version of the failed migration.
        version: i64,
        /// Its description.
        description: String,
        /// The database's message, with the line and column in the migration's file when
        /// the database names a position.
        reason: String,
    },
    /// An applied migration no longer matches its file.
    #[error(
        "migration {version} ({description}) was already applied but its file has changed since \
         (checksum mismatch); never edit an applied migration, add a new one"
    )]
    Changed {
        /// Version of the changed migration.
        version: i64,
        /// Its description.
        description: String,
    },
    /// The database has a migration this binary does not know.
    #[error(
        "migration {0} is applied in the database but unknown to this binary (is this binary older than the database?)"
    )]
    Unknown(i64),
    /// A previous run left a migration half applied (only possible for non-transactional ones).
    #[error(
        "migration {0} is partially applied; fix the schema by hand and delete its row from _sqlx_migrations"
    )]
    Dirty(i64),
    /// Any other error while reading or writing the bookkeeping table.
    #[error("migration bookkeeping failed: {0}")]
    Bookkeeping(#[from] MigrateError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Bookkeeping(MigrateError::Execute(e))
    }
}

/// Connect one connection (migrations need a single session for the advisory lock),
/// retrying for up to `wait` while the database is unreachable (e.g. still starting).
pub async fn connect(options: &PgConnectOptions, wait: Duration) -> Result<PgConnection, Error> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(options))
                .await;
        let error = match attempt {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Connect(error));
        }
        tracing::warn!(%error, "database not reachable yet, retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn up_migrations(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
}

fn check_applied(migrator: &Migrator, applied: &[AppliedMigration]) -> Result<(), Error> {
    let known: HashMap<i64, &Migration> = up_migrations(migrator).map(|m| (m.version, m)).collect();
    for a in applied {
        match known.get(&a.version) {
            None => return Err(Error::Unknown(a.version)),
            Some(m) if m.checksum != a.checksum => {
                return Err(Error::Changed {
                    version: m.version,
                    description: m.description.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Apply the pending migrations of `migrator`.
///
/// Holds sqlx's advisory lock for the whole run, so concurrent runs serialise: one applies,
/// the others then find nothing to do. Each migration runs in a transaction with its
/// bookkeeping row: a failure leaves the schema as it was before that migration.
pub async fn run(migrator: &Migrator, conn: &mut PgConnection) -> Result<Summary, Error> {
    conn.lock().await?;
    let result = run_locked(migrator, conn).await;
    // Release the lock even on failure (the session may also simply be closed).
    let unlocked = conn.unlock().await;
    let summary = result?;
    unlocked?;
    Ok(summary)
}

async fn run_locked(migrator: &Migrator, conn: &mut PgConnection) -> Result<Summary, Error> {
    conn.ensure_migrations_table(TABLE).await?;
    if let Some(version) = conn.dirty_version(TABLE).await? {
        return Err(Error::Dirty(version));
    }
    let applied = conn.list_applied_migrations(TABLE).await?;
    check_applied(migrator, &applied)?;
    let done: HashMap<i64, ()> = applied.iter().map(|a| (a.version, ())).collect();
    let mut summary = Summary {
        applied: Vec::new(),
        already_applied: done.len(),
    };
    for migration in up_migrations(migrator) {
        if done.contains_key(&migration.version) {
            continue;
        }
        tracing::info!(version = migration.version, description = %migration.description, "applying migration");
        match conn.apply(TABLE, migration).await {
            Ok(elapsed) => {
                tracing::info!(version = migration.version, ?elapsed, "applied migration");
                summary.applied.push(migration.version);
            }
            Err(MigrateError::ExecuteMigration(source, _) | MigrateError::Execute(source)) => {
                return Err(Error::Failed {
                    version: migration.version,
                    description: migration.description.to_string(),
                    reason: failure_reason(&source, migration.sql.as_str()),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(summary)
}

/// The database's message for a failed migration, located in the migration's SQL.
///
/// Postgres reports a position as a 1-based character offset into the statement text, which
/// here is the whole file; its `line` field is a line of Postgres' own C source, so it is
/// never shown.
fn failure_reason(error: &sqlx::Error, sql: &str) -> String {
    let Some(database) = error.as_database_error() else {
        return error.to_string();
    };
    let mut reason = database.message().to_owned();
    let position = database
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| match pg.position() {
            Some(sqlx::postgres::PgErrorPosition::Original(offset)) => Some(offset),
            _ => None,
        });
    if let Some((line, column)) = position.and_then(|offset| line_and_column(sql, offset)) {
        reason.push_str(&format!(" (at line {line}, column {column} of the file)"));
    }
    reason
}

/// Line and column (1-based) of the `offset`-th character (1-based) of `text`.
fn line_and_column(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before: String = text.chars().take(offset.checked_sub(1)?).collect();
    if before.chars().count() + 1 != offset {
        return None;
    }
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// State of every migration, known or applied, ordered by version. Changes nothing
/// (creates the bookkeeping table if missing). A migration recorded as failed is
/// [`State::Failed`], as `up` sees it.
pub async fn status(
    migrator: &Migrator,
    conn: &mut PgConnection,
) -> Result<Vec<MigrationStatus>, Error> {
    conn.ensure_migrations_table(TABLE).await?;
    let applied: HashMap<i64, AppliedMigration> = conn
        .list_applied_migrations(TABLE)
        .await?
        .into_iter()
        .map(|a| (a.version, a))
        .collect();
    // `TABLE`, spelled out: a query's text must be a literal.
    let failed: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = false")
            .fetch_all(&mut *conn)
            .await?;
    let mut out: Vec<MigrationStatus> = up_migrations(migrator)
        .map(|m| MigrationStatus {
            version: m.version,
            description: m.description.to_string(),
            state: match applied.get(&m.version) {
                None => State::Pending,
                Some(_) if failed.contains(&m.version) => State::Failed,
                Some(a) if a.checksum != m.checksum => State::Changed,
                Some(_) => State::Applied,
            },
        })
        .collect();
    for version in applied.keys() {
        if !migrator.version_exists(*version) {
            out.push(MigrationStatus {
                version: *version,
                description: String::new(),
                state: if failed.contains(version) {
                    State::Failed
                } else {
                    State::Unknown
                },
            });
        }
    }
    out.sort_by_key(|s| s.version);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::line_and_column;

    #[test]
    fn positions_become_lines_and_columns() {
        let sql = "create table a (x int);\ninsert into nowhere values (1);\n";
        assert_eq!(line_and_column(sql, 1), Some((1, 1)));
        assert_eq!(line_and_column(sql, 25), Some((2, 1)));
        assert_eq!(line_and_column(sql, 37), Some((2, 13)));
        assert_eq!(line_and_column(sql, 0), None);
        assert_eq!(line_and_column(sql, 1000), None);
    }
}
