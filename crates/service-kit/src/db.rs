//! PostgreSQL connection settings from the environment (feature `db`).
//!
//! Either `DATABASE_URL` (`postgres://user:pass@host:port/db?sslmode=...`), or the libpq variables
//! `PGHOST` (required in that case), `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT`. `DATABASE_URL` wins when both are set.
//! Or, where the password rotates (AWS), `DB_SECRET_ARN` names a Secrets Manager secret holding
//! the user name and password, and the `PG*` variables give the rest ([`settings_from_env`],
//! [`SecretCredentials`]). Errors name the variable and never echo a password.

mod secret;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::config::{ConfigError, env_raw, env_var, env_var_opt, env_var_or};

pub use secret::{
    CredentialsRejected, SecretCredentials, SecretError, is_credentials_rejected,
    refresh_when_rejected,
};

/// Where the user name and password come from when they rotate: a Secrets Manager secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    /// `DB_SECRET_ARN`: ARN (or name) of a secret whose `SecretString` is JSON with `username`
    /// and `password` (the shape of RDS's managed master secret).
    pub arn: String,
    /// `DB_SECRET_REFRESH_SECONDS` (default 300): how often a long-running service re-reads it.
    pub refresh_interval: Duration,
}

/// The database settings of a service.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Host, port, database, TLS; user name and password too unless [`Self::secret`] is set.
    pub options: PgConnectOptions,
    /// When set, the user name and password come from this secret instead.
    pub secret: Option<SecretSource>,
}

/// Default of `DB_SECRET_REFRESH_SECONDS`.
pub const DEFAULT_SECRET_REFRESH: Duration = Duration::from_secs(300);

/// `DB_SECRET_ARN` and the `PG*` variables when the ARN is set, else as
/// [`connect_options_from_env`]. With a secret, `DATABASE_URL` and `PGPASSWORD` are refused
/// (two sources of one password would hide which one is used).
pub fn settings_from_env() -> Result<DatabaseSettings, ConfigError> {
    let Some(secret) = secret_source_from_env()? else {
        return Ok(DatabaseSettings {
            options: connect_options_from_env()?,
            secret: None,
        });
    };
    if env_raw("DATABASE_URL")?.is_some() {
        return Err(ConfigError::invalid(
            "DATABASE_URL",
            "not used with DB_SECRET_ARN: give PGHOST, PGPORT, PGDATABASE and PGSSLMODE instead",
        ));
    }
    if env_raw("PGPASSWORD")?.is_some() {
        return Err(ConfigError::invalid(
            "PGPASSWORD",
            "must not be set with DB_SECRET_ARN, whose secret holds the password",
        ));
    }
    Ok(DatabaseSettings {
        options: from_pg_env()?,
        secret: Some(secret),
    })
}

/// `DB_SECRET_ARN` (optional) and `DB_SECRET_REFRESH_SECONDS` (1..=86400, default 300).
pub fn secret_source_from_env() -> Result<Option<SecretSource>, ConfigError> {
    if env_raw("DB_SECRET_ARN")?.is_none() {
        return Ok(None);
    }
    let arn: String = env_var("DB_SECRET_ARN")?;
    let seconds: u64 = env_var_or(
        "DB_SECRET_REFRESH_SECONDS",
        DEFAULT_SECRET_REFRESH.as_secs(),
    )?;
    if !(1..=86_400).contains(&seconds) {
        return Err(ConfigError::invalid(
            "DB_SECRET_REFRESH_SECONDS",
            format!("{seconds}: must be 1..=86400"),
        ));
    }
    Ok(Some(SecretSource {
        arn: arn.trim().to_owned(),
        refresh_interval: Duration::from_secs(seconds),
    }))
}

/// Connection options from `DATABASE_URL`, or else from the `PG*` variables.
pub fn connect_options_from_env() -> Result<PgConnectOptions, ConfigError> {
    match env_raw("DATABASE_URL")? {
        Some(url) => from_url(&url),
        None if env_raw("PGHOST")?.is_some() => from_pg_env(),
        None => Err(ConfigError::missing_with_hint(
            "DATABASE_URL",
            "set DATABASE_URL, or PGHOST and the other libpq PG* variables",
        )),
    }
}

/// Parse a `postgres://` URL given in `DATABASE_URL`.
pub fn from_url(url: &str) -> Result<PgConnectOptions, ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::invalid(
            "DATABASE_URL",
            "expected a postgres:// or postgresql:// URL",
        ));
    }
    PgConnectOptions::from_str(url).map_err(|e| {
        ConfigError::invalid("DATABASE_URL", format!("not a valid PostgreSQL URL: {e}"))
    })
}

/// Connection options from the libpq variables only (`PGHOST` required; `PGPORT` default 5432;
/// `PGUSER`, `PGPASSWORD`, `PGDATABASE` optional; `PGSSLMODE` one of
/// `disable|allow|prefer|require|verify-ca|verify-full`; `PGSSLROOTCERT` an existing file).
///
/// The Lambda migration uses this and then sets username and password from its secret.
pub fn from_pg_env() -> Result<PgConnectOptions, ConfigError> {
    let host = env_raw("PGHOST")?.ok_or_else(|| {
        ConfigError::missing_with_hint("PGHOST", "the database host name or address")
    })?;
    // Start from sqlx's own reading of the PG* variables, then validate and set each explicitly.
    let mut options = PgConnectOptions::new_without_pgpass().host(&host);
    if let Some(port) = env_var_opt::<u16>("PGPORT")? {
        if port == 0 {
            return Err(ConfigError::invalid("PGPORT", "must be 1..=65535"));
        }
        options = options.port(port);
    } else {
        options = options.port(5432);
    }
    if let Some(user) = env_raw("PGUSER")? {
        options = options.username(&user);
    }
    if let Some(password) = env_raw("PGPASSWORD")? {
        options = options.password(&password);
    }
    if let Some(database) = env_raw("PGDATABASE")? {
        options = options.database(&database);
    }
    if let Some(mode) = env_raw("PGSSLMODE")? {
        let mode = PgSslMode::from_str(&mode).map_err(|_| {
            ConfigError::invalid(
                "PGSSLMODE",
                format!(
                    "{mode:?}: expected one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            )
        })?;
        options = options.ssl_mode(mode);
    }
    if let Some(cert) = env_raw("PGSSLROOTCERT")? {
        if !std::path::Path::new(&cert).is_file() {
            return Err(ConfigError::invalid(
                "PGSSLROOTCERT",
                format!("{cert:?}: no such file"),
            ));
        }
        options = options.ssl_root_cert(cert);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_errors_name_the_variable_without_echoing_it() {
        let e = from_url("mysql://u:secret@h/db").unwrap_err();
        assert_eq!(e.variable(), "DATABASE_URL");
        assert!(!e.to_string().contains("secret"));
        let o = from_url("postgres://u:p@db.example:6543/app?sslmode=require").unwrap();
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_database(), Some("app"));
    }
}
