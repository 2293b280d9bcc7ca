//! AWS Lambda entry point: each invocation applies the pending migrations and returns
//! `{"applied":[versions…],"already_applied":N}`; any failure is a function error.
//!
//! Credentials come from the RDS-managed master secret `DB_SECRET_ARN` (JSON with `username`
//! and `password`), fetched from Secrets Manager on every invocation (so rotation just works);
//! host, port, database and TLS settings from the `PG*` variables. The Secrets Manager endpoint
//! follows the standard AWS configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...).

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use service_kit::config::ConfigError;
use service_kit::db::{SecretCredentials, SecretSource};
use sqlx::postgres::PgConnectOptions;

use crate::{Error, MIGRATOR, Summary};

/// Settings of the Lambda function, read once at cold start.
#[derive(Clone)]
pub struct LambdaConfig {
    /// `DB_SECRET_ARN`: the secret holding user name and password.
    pub secret: SecretSource,
    /// Host, port, database, TLS from `PG*`; user and password replaced by the secret's.
    pub options: PgConnectOptions,
}

impl LambdaConfig {
    /// Read `DB_SECRET_ARN` and the `PG*` variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secret: service_kit::db::secret_source_from_env()?
                .ok_or_else(|| ConfigError::missing("DB_SECRET_ARN"))?,
            options: service_kit::db::from_pg_env()?,
        })
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The secret could not be read or parsed.
    #[error("database secret: {0}")]
    Secret(#[from] service_kit::db::SecretError),
    /// Connecting or migrating failed.
    #[error(transparent)]
    Migrate(#[from] Error),
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        let error_type = match &e {
            InvocationError::Secret(_) => "SecretError",
            InvocationError::Migrate(Error::Connect(_)) => "ConnectError",
            InvocationError::Migrate(_) => "MigrationError",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

async fn invoke(credentials: &SecretCredentials) -> Result<Summary, InvocationError> {
    let options = credentials.connect_options().await?;
    let mut conn = crate::connect(&options, crate::CONNECT_TIMEOUT).await?;
    let summary = crate::run(&MIGRATOR, &mut conn).await?;
    tracing::info!(applied = ?summary.applied, already_applied = summary.already_applied, "migrations done");
    Ok(summary)
}

/// Run the Lambda runtime loop (talks to `AWS_LAMBDA_RUNTIME_API`) until the process ends.
pub async fn run(config: LambdaConfig) -> Result<(), lambda_runtime::Error> {
    let credentials = SecretCredentials::from_env(&config.secret, config.options).await;
    let credentials = &credentials;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            tracing::info!(request_id = %event.context.request_id, "migration invocation");
            let result = invoke(credentials).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "migration invocation failed");
            }
            result
        },
    ))
    .await
}
