//! AWS Lambda entry point: each invocation applies the pending migrations and returns
//! `{"applied":[versions…],"already_applied":N}`; any failure is a function error.
//!
//! Credentials come from the RDS-managed master secret `DB_SECRET_ARN` (JSON with `username`
//! and `password`), fetched from Secrets Manager on every invocation (so rotation just works);
//! host, port, database and TLS settings from the `PG*` variables. The Secrets Manager endpoint
//! follows the standard AWS configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...).

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Deserialize;
use service_kit::config::{ConfigError, env_var};
use sqlx::postgres::PgConnectOptions;

use crate::{Error, MIGRATOR, Summary};

/// Settings of the Lambda function, read once at cold start.
#[derive(Clone)]
pub struct LambdaConfig {
    /// ARN (or name) of the database secret.
    pub secret_arn: String,
    /// Host, port, database, TLS from `PG*`; user and password replaced by the secret's.
    pub options: PgConnectOptions,
}

impl LambdaConfig {
    /// Read `DB_SECRET_ARN` and the `PG*` variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secret_arn: env_var("DB_SECRET_ARN")?,
            options: service_kit::db::from_pg_env()?,
        })
    }
}

#[derive(Deserialize)]
struct DbSecret {
    username: String,
    password: String,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The secret could not be read or parsed.
    #[error("database secret: {0}")]
    Secret(String),
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

async fn fetch_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<DbSecret, InvocationError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            InvocationError::Secret(format!(
                "GetSecretValue failed: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    let text = out
        .secret_string()
        .ok_or_else(|| InvocationError::Secret("the secret has no SecretString".to_owned()))?;
    // Never include the secret text in errors.
    serde_json::from_str(text).map_err(|_| {
        InvocationError::Secret(
            "SecretString is not JSON with string fields `username` and `password`".to_owned(),
        )
    })
}

async fn invoke(
    config: &LambdaConfig,
    client: &aws_sdk_secretsmanager::Client,
) -> Result<Summary, InvocationError> {
    let secret = fetch_secret(client, &config.secret_arn).await?;
    let options = config
        .options
        .clone()
        .username(&secret.username)
        .password(&secret.password);
    let mut conn = crate::connect(&options, crate::CONNECT_TIMEOUT).await?;
    let summary = crate::run(&MIGRATOR, &mut conn).await?;
    tracing::info!(applied = ?summary.applied, already_applied = summary.already_applied, "migrations done");
    Ok(summary)
}

/// Run the Lambda runtime loop (talks to `AWS_LAMBDA_RUNTIME_API`) until the process ends.
pub async fn run(config: LambdaConfig) -> Result<(), lambda_runtime::Error> {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let config = &config;
    let client = &client;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            tracing::info!(request_id = %event.context.request_id, "migration invocation");
            let result = invoke(config, client).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "migration invocation failed");
            }
            result
        },
    ))
    .await
}
