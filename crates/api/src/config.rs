//! Configuration, from the environment only.

use std::net::IpAddr;
use std::time::Duration;

use service_kit::config::{ConfigError, env_var, env_var_or};
use service_kit::db::SecretSource;
use sqlx::postgres::PgConnectOptions;

/// Settings of the api.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDRESS` (default `0.0.0.0`): the address both listeners bind.
    pub bind: IpAddr,
    /// `PORT` (required): the public HTTP port.
    pub port: u16,
    /// `METRICS_PORT` (default 9100): Prometheus `/metrics`, not routed by the load balancer.
    pub metrics_port: u16,
    /// `DATABASE_URL`, or `PGHOST` and the other libpq variables.
    pub database: PgConnectOptions,
    /// `DB_SECRET_ARN`: user name and password from this secret, re-read as it rotates.
    pub database_secret: Option<SecretSource>,
    /// Maximum time to handle a request (503 `timeout` after it).
    pub request_timeout: Duration,
    /// Maximum wait for a database connection (503 `database_unavailable` after it).
    pub db_acquire_timeout: Duration,
    /// Pool size.
    pub max_connections: u32,
    /// On SIGTERM/SIGINT, how long in-flight requests may still run.
    pub drain_timeout: Duration,
}

impl Config {
    /// Read and validate the environment; errors name the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let port = env_var("PORT")?;
        let metrics_port = env_var_or("METRICS_PORT", 9100)?;
        let database = service_kit::db::settings_from_env()?;
        Ok(Self {
            bind: service_kit::config::bind_address()?,
            port,
            metrics_port,
            database_secret: database.secret,
            ..Self::defaults(database.options)
        })
    }

    /// Default timeouts and pool size, with the given database (`port` 0, `metrics_port` 9100).
    pub fn defaults(database: PgConnectOptions) -> Self {
        Self {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 0,
            metrics_port: 9100,
            database,
            database_secret: None,
            request_timeout: Duration::from_secs(10),
            db_acquire_timeout: Duration::from_secs(3),
            max_connections: 10,
            drain_timeout: Duration::from_secs(20),
        }
    }
}
