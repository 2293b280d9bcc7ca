//! Database credentials read from a Secrets Manager secret and kept current in a pool.
//!
//! RDS rotates its managed master secret (every 7 days by default): it sets a new password in
//! the database, then makes the secret's new version current. Open connections keep working
//! (a password change ends no session); new ones need the new password. So a long-running
//! service re-reads the secret on a timer (`DB_SECRET_REFRESH_SECONDS`) and as soon as the
//! database rejects the credentials (SQLSTATE 28P01), and swaps the pool's connect options
//! ([`sqlx::Pool::set_connect_options`], used by every connection opened afterwards): no restart,
//! and only requests that needed a new connection between the rotation and the next read fail.
//!
//! The Secrets Manager endpoint and the AWS credentials follow the standard AWS configuration
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, the ECS task role, ...). The password is never logged,
//! and errors never quote the secret.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Notify;

use super::SecretSource;

/// Shortest time between two reads, however many requests are rejected meanwhile.
const MIN_READ_GAP: Duration = Duration::from_secs(1);
/// After a read that found the version already applied, the next may come this soon, the gap
/// doubling up to [`MIN_READ_GAP`]: the database can take a new password a moment before the
/// secret shows it (RDS's rotation changes the database first), and a second look within a
/// second ends the rejections early.
const RECHECK_GAP: Duration = Duration::from_millis(100);
/// Longest wait for one read (the SDK retries inside it).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed read, the next one comes this soon (or at the refresh interval if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The fields used of the secret's JSON (RDS's managed secret also has e.g. `engine`).
#[derive(Deserialize)]
struct DbSecret {
    username: String,
    password: String,
}

/// Why the secret could not be used. Never contains the secret's text.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager did not answer, or refused (permissions, unknown secret, ...).
    #[error("GetSecretValue failed: {0}")]
    Fetch(String),
    /// The secret is binary.
    #[error("the secret has no SecretString")]
    NoSecretString,
    /// The secret is not the expected JSON.
    #[error("SecretString is not JSON with string fields `username` and `password`")]
    Shape,
}

/// Reads `DB_SECRET_ARN`'s user name and password into connect options, and keeps a pool's
/// options current ([`Self::keep_fresh`]).
pub struct SecretCredentials {
    client: Client,
    source: SecretSource,
    /// Host, port, database and TLS; the secret supplies user name and password.
    base: PgConnectOptions,
    read_now: Notify,
    /// `VersionId` of the secret last given to the pool, to log each change once.
    applied_version: Mutex<Option<String>>,
}

impl SecretCredentials {
    /// Secrets Manager as configured by the standard AWS environment. Sends no request.
    pub async fn from_env(source: &SecretSource, base: PgConnectOptions) -> Self {
        let aws = aws_config::load_from_env().await;
        Self::new(Client::new(&aws), source, base)
    }

    /// With a given Secrets Manager client.
    pub fn new(client: Client, source: &SecretSource, base: PgConnectOptions) -> Self {
        Self {
            client,
            source: source.clone(),
            base,
            read_now: Notify::new(),
            applied_version: Mutex::new(None),
        }
    }

    /// Read the secret once: the base options with its user name and password.
    pub async fn connect_options(&self) -> Result<PgConnectOptions, SecretError> {
        Ok(self.read().await?.0)
    }

    async fn read(&self) -> Result<(PgConnectOptions, Option<String>), SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.source.arn)
            .send()
            .await
            .map_err(|e| SecretError::Fetch(DisplayErrorContext(&e).to_string()))?;
        let text = out.secret_string().ok_or(SecretError::NoSecretString)?;
        let secret: DbSecret = serde_json::from_str(text).map_err(|_| SecretError::Shape)?;
        let options = self
            .base
            .clone()
            .username(&secret.username)
            .password(&secret.password);
        Ok((options, out.version_id().map(str::to_owned)))
    }

    /// Read the secret and give it to `pool` for its next connections; open ones stay as they are.
    /// True when the secret's version differs from the one applied before.
    pub async fn refresh(&self, pool: &PgPool) -> Result<bool, SecretError> {
        let (options, version) = self.read().await?;
        pool.set_connect_options(options);
        let mut applied = self.applied_version.lock().expect("not poisoned");
        let changed = *applied != version;
        if changed {
            tracing::info!(
                secret_version = version.as_deref().unwrap_or("unknown"),
                "database credentials read from DB_SECRET_ARN"
            );
            *applied = version;
        }
        Ok(changed)
    }

    /// The database rejected the credentials: read the secret again now (at most once a second).
    pub fn refresh_soon(&self) {
        self.read_now.notify_one();
    }

    /// Read the secret into `pool` now (waiting at most 10 s, so a service can start while
    /// Secrets Manager is unreachable), then keep it current in a background task: every
    /// `refresh_interval`, on [`Self::refresh_soon`], and 5 s after a failed read.
    pub async fn keep_fresh(self: Arc<Self>, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let (mut wait, _) = self.refresh_logged(&pool).await;
        tokio::spawn(async move {
            let mut gap = MIN_READ_GAP;
            loop {
                tokio::time::sleep(gap).await;
                tokio::select! {
                    () = tokio::time::sleep(wait.saturating_sub(gap)) => {}
                    () = self.read_now.notified() => {}
                }
                let changed;
                (wait, changed) = self.refresh_logged(&pool).await;
                gap = next_gap(gap, changed);
            }
        })
    }

    /// One refresh; returns how long to wait before the next timed one, and whether it found a
    /// new version.
    async fn refresh_logged(&self, pool: &PgPool) -> (Duration, bool) {
        let error = match tokio::time::timeout(READ_TIMEOUT, self.refresh(pool)).await {
            Ok(Ok(changed)) => return (self.source.refresh_interval, changed),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {READ_TIMEOUT:?}"),
        };
        tracing::warn!(
            %error,
            "cannot read the database secret DB_SECRET_ARN; keeping the current credentials"
        );
        (RETRY_AFTER_FAILURE.min(self.source.refresh_interval), false)
    }
}

/// The gap before the next read: [`MIN_READ_GAP`] after a new version; after the same version,
/// [`RECHECK_GAP`], doubling on each further unchanged read up to [`MIN_READ_GAP`] and then from
/// [`RECHECK_GAP`] again: at most five reads in 2.5 s while the database keeps rejecting a
/// secret that does not change.
fn next_gap(gap: Duration, changed: bool) -> Duration {
    if changed {
        MIN_READ_GAP
    } else if gap >= MIN_READ_GAP {
        RECHECK_GAP
    } else {
        (gap * 2).min(MIN_READ_GAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_reads_look_again_soon_then_back_off_to_the_minimum_gap() {
        let mut gap = MIN_READ_GAP;
        let mut gaps = Vec::new();
        for _ in 0..6 {
            gap = next_gap(gap, false);
            gaps.push(gap.as_millis());
        }
        assert_eq!(gaps, [100, 200, 400, 800, 1000, 100]);
        assert_eq!(next_gap(RECHECK_GAP, true), MIN_READ_GAP);
    }
}

/// Response extension a service's error type sets when the database rejected the credentials
/// ([`is_credentials_rejected`]); [`refresh_when_rejected`] reacts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsRejected;

/// The database refused the user name or password (SQLSTATE class 28: 28P01 wrong password,
/// 28000 e.g. no such role or no `pg_hba.conf` entry).
pub fn is_credentials_rejected(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("28")),
        _ => false,
    }
}

/// axum middleware: after a response marked [`CredentialsRejected`], re-read the secret now.
///
/// `router.layer(axum::middleware::from_fn_with_state(credentials, refresh_when_rejected))`
pub async fn refresh_when_rejected(
    State(credentials): State<Arc<SecretCredentials>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<CredentialsRejected>().is_some() {
        credentials.refresh_soon();
    }
    response
}
