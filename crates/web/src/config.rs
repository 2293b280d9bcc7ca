//! Configuration from the environment; every error names the variable.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use service_kit::{ConfigError, env_var, env_var_or};

/// Runtime configuration of the web service.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDRESS`: the address both listeners bind (default `0.0.0.0`).
    pub bind: IpAddr,
    /// `PORT`: listen port (default 3001, the catalog's port).
    pub port: u16,
    /// `METRICS_PORT`: Prometheus `/metrics` port (default 9101).
    pub metrics_port: u16,
    /// `API_URL`: base URL of the api, e.g. `http://127.0.0.1:3000` (required).
    pub api_url: Url,
    /// `API_TIMEOUT_MS`: total time allowed for one api call (default 5000).
    pub api_timeout: Duration,
    /// `API_MAX_CONNECTIONS`: most concurrent api calls (and idle pooled connections), default 64.
    pub api_max_connections: usize,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let api_url: Url = env_var("API_URL").map_err(|e| match e {
            ConfigError::Missing { name, .. } => ConfigError::missing_with_hint(
                name,
                "base URL of the api, e.g. http://127.0.0.1:3000",
            ),
            other => other,
        })?;
        if !matches!(api_url.scheme(), "http" | "https") || api_url.host().is_none() {
            return Err(ConfigError::invalid(
                "API_URL",
                format!("{api_url:?}: expected an http(s) URL such as http://127.0.0.1:3000"),
            ));
        }
        let timeout_ms: u64 = env_var_or("API_TIMEOUT_MS", 5000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::invalid("API_TIMEOUT_MS", "must be at least 1"));
        }
        let api_max_connections: usize = env_var_or("API_MAX_CONNECTIONS", 64)?;
        if api_max_connections == 0 {
            return Err(ConfigError::invalid(
                "API_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            bind: service_kit::config::bind_address()?,
            port: env_var_or("PORT", 3001)?,
            metrics_port: env_var_or("METRICS_PORT", 9101)?,
            api_url,
            api_timeout: Duration::from_millis(timeout_ms),
            api_max_connections,
        })
    }
}
