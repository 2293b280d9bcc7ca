//! PostgreSQL connection settings from the environment (feature `db`).
//!
//! Either `DATABASE_URL` (`postgres://user:pass@host:port/db?sslmode=...`), or the libpq variables
//! `PGHOST` (required in that case), `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT`. `DATABASE_URL` wins when both are set.
//! Errors name the variable and never echo a password.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::config::{ConfigError, env_raw, env_var_opt};

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
