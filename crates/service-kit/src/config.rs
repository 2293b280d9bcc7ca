//! Configuration from environment variables, with errors that name the variable.

use std::fmt::Display;
use std::str::FromStr;

/// A missing or invalid configuration variable. The message always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set (or is empty).
    #[error("{name} is not set{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Missing {
        /// Variable name.
        name: String,
        /// Optional hint on what to set.
        hint: Option<String>,
    },
    /// The variable is set but its value could not be used.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        name: String,
        /// Why the value is not acceptable (never contains secrets).
        reason: String,
    },
}

impl ConfigError {
    /// A `Missing` error for `name`.
    pub fn missing(name: impl Into<String>) -> Self {
        Self::Missing {
            name: name.into(),
            hint: None,
        }
    }

    /// A `Missing` error for `name` with a hint, e.g. "set DATABASE_URL or PGHOST".
    pub fn missing_with_hint(name: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Missing {
            name: name.into(),
            hint: Some(hint.into()),
        }
    }

    /// An `Invalid` error for `name`.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Name of the offending variable.
    pub fn variable(&self) -> &str {
        match self {
            Self::Missing { name, .. } | Self::Invalid { name, .. } => name,
        }
    }
}

/// Raw value of `name`; `None` when unset or empty. Non-UTF-8 values are an error.
pub fn env_raw(name: &str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ConfigError::invalid(name, "value is not valid UTF-8"))
        }
    }
}

fn parse<T>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.trim()
        .parse::<T>()
        .map_err(|e| ConfigError::invalid(name, format!("{raw:?}: {e}")))
}

/// Required variable parsed with `FromStr`.
///
/// `env_var::<u16>("PORT")` fails with `PORT is not set` or `PORT is invalid: "abc": invalid digit found in string`.
/// Do not use it for secrets: the invalid value is quoted in the error.
pub fn env_var<T>(name: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match env_raw(name)? {
        Some(raw) => parse(name, &raw),
        None => Err(ConfigError::missing(name)),
    }
}

/// Optional variable: `Ok(None)` when unset or empty, an error when set but invalid.
pub fn env_var_opt<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    env_raw(name)?.map(|raw| parse(name, &raw)).transpose()
}

/// Variable with a default used when unset or empty; an error when set but invalid.
pub fn env_var_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(env_var_opt(name)?.unwrap_or(default))
}

/// `BIND_ADDRESS`: the address the service's listeners bind (default `0.0.0.0`, every
/// interface, as containers need; the local stack sets the router's address).
pub fn bind_address() -> Result<std::net::IpAddr, ConfigError> {
    env_var_or("BIND_ADDRESS", std::net::IpAddr::from([0, 0, 0, 0]))
}

/// Unwrap a configuration result, or print `configuration error: <message>` to stderr
/// and exit the process with status 2. Use it in `main` only.
pub fn exit_on_config_error<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_variable() {
        let e = ConfigError::missing("PORT");
        assert_eq!(e.to_string(), "PORT is not set");
        let e = ConfigError::missing_with_hint("DATABASE_URL", "or set PGHOST");
        assert_eq!(e.to_string(), "DATABASE_URL is not set (or set PGHOST)");
        let e = parse::<u16>("PORT", "abc").unwrap_err();
        assert_eq!(e.variable(), "PORT");
        assert!(e.to_string().starts_with("PORT is invalid: \"abc\""), "{e}");
        let e = parse::<u16>("PORT", "70000").unwrap_err();
        assert!(e.to_string().contains("PORT"), "{e}");
        assert_eq!(parse::<u16>("PORT", " 8080 ").unwrap(), 8080);
    }

    #[test]
    fn unset_variables() {
        let name = "SERVICE_KIT_TEST_SURELY_UNSET_VARIABLE";
        assert_eq!(
            env_var::<u16>(name).unwrap_err(),
            ConfigError::missing(name)
        );
        assert_eq!(env_var_opt::<u16>(name).unwrap(), None);
        assert_eq!(env_var_or::<u16>(name, 7).unwrap(), 7);
    }
}
