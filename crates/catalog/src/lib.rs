//! The service catalog, `services.toml` at the workspace root, read from Rust.
//!
//! Nix reads the same file with `builtins.fromTOML` (`nix/catalog.nix`) and applies
//! the same rules, so a catalog that loads here renders there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// File name of the catalog at the workspace root.
pub const FILE_NAME: &str = "services.toml";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub jobs: BTreeMap<String, Job>,
}

/// A long-running HTTP service behind the shared load balancer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub port: u16,
    pub metrics_port: u16,
    pub route: String,
    pub health: String,
    pub cpu: u32,
    pub memory: u32,
    pub instances: Instances,
    #[serde(default)]
    pub database: bool,
    #[serde(default)]
    pub upstreams: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Instances {
    pub desired: u32,
    pub min: u32,
    pub max: u32,
}

/// A run-to-completion job, such as the database migration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Job {
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub command: Vec<String>,
    pub cpu: u32,
    pub memory: u32,
    #[serde(default)]
    pub database: bool,
    /// Also packaged as the AWS migration Lambda.
    #[serde(default)]
    pub lambda: bool,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid catalog: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid catalog: {0}")]
    Invalid(String),
}

impl Catalog {
    /// The crates of every service and job, sorted, each once: what the local stack and the
    /// benchmark build.
    pub fn crate_names(&self) -> Vec<&str> {
        let mut crates: Vec<&str> = self
            .services
            .values()
            .map(|s| s.crate_name.as_str())
            .chain(self.jobs.values().map(|j| j.crate_name.as_str()))
            .collect();
        crates.sort_unstable();
        crates.dedup();
        crates
    }

    /// Loads and validates the catalog at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let catalog: Catalog = toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Loads `services.toml` from the workspace root this crate was built in.
    pub fn load_workspace() -> Result<Self, Error> {
        Self::load(workspace_root().join(FILE_NAME))
    }

    /// Parses and validates catalog text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let catalog: Catalog = toml::from_str(text).map_err(|source| Error::Parse {
            path: PathBuf::from(FILE_NAME),
            source: Box::new(source),
        })?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// The rules `nix/catalog.nix` enforces too.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        let mut ports = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for (name, service) in &self.services {
            if !is_dns_label(name) {
                return invalid(format!(
                    "service name `{name}` must be lowercase letters, digits and dashes"
                ));
            }
            for port in [service.port, service.metrics_port] {
                if port == 0 || !ports.insert(port) {
                    return invalid(format!(
                        "service `{name}`: port {port} is zero or used twice"
                    ));
                }
            }
            if !service.route.starts_with('/')
                || (service.route.len() > 1 && service.route.ends_with('/'))
            {
                return invalid(format!(
                    "service `{name}`: route `{}` must start with `/` and not end with one",
                    service.route
                ));
            }
            if !routes.insert(service.route.as_str()) {
                return invalid(format!("route `{}` is declared twice", service.route));
            }
            if !service.health.starts_with('/') {
                return invalid(format!("service `{name}`: health path must start with `/`"));
            }
            let i = service.instances;
            if !(i.min <= i.desired && i.desired <= i.max && i.max >= 1) {
                return invalid(format!(
                    "service `{name}`: instances need min <= desired <= max and max >= 1"
                ));
            }
            for upstream in &service.upstreams {
                if upstream == name || !self.services.contains_key(upstream) {
                    return invalid(format!(
                        "service `{name}`: upstream `{upstream}` is not another service"
                    ));
                }
            }
        }
        if !self.services.is_empty() && !routes.contains("/") {
            return invalid("exactly one service must own the route `/`".into());
        }
        for (name, job) in &self.jobs {
            if !is_dns_label(name) || self.services.contains_key(name) {
                return invalid(format!(
                    "job name `{name}` must be a unique lowercase DNS label"
                ));
            }
            if job.command.is_empty() {
                return invalid(format!("job `{name}`: command must not be empty"));
            }
        }
        if self.jobs.values().filter(|job| job.lambda).count() > 1 {
            return invalid("at most one job can be the migration Lambda".into());
        }
        Ok(())
    }

    /// Services in the order they must start: upstreams before their callers.
    pub fn start_order(&self) -> Vec<(&str, &Service)> {
        let mut ordered: Vec<(&str, &Service)> = Vec::new();
        let mut placed = BTreeSet::new();
        while ordered.len() < self.services.len() {
            let before = ordered.len();
            for (name, service) in &self.services {
                if !placed.contains(name.as_str())
                    && service
                        .upstreams
                        .iter()
                        .all(|u| placed.contains(u.as_str()))
                {
                    placed.insert(name.as_str());
                    ordered.push((name.as_str(), service));
                }
            }
            assert!(ordered.len() > before, "upstream cycle in the catalog");
        }
        ordered
    }
}

impl Service {
    /// The environment variable through which a caller learns this service's address.
    pub fn url_variable(name: &str) -> String {
        format!("{}_URL", name.to_ascii_uppercase().replace('-', "_"))
    }

    /// Whether `path` is routed to this service by the load balancer (prefix match on
    /// whole segments; `/` matches everything the other routes do not).
    pub fn matches(&self, path: &str) -> bool {
        self.route == "/"
            || path == self.route
            || path
                .strip_prefix(self.route.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// The workspace root that holds `services.toml`.
///
/// `WORKSPACE_ROOT` wins when set (the Nix-built tools run from the store, where the
/// compile-time path is a build directory); then the workspace this crate was built
/// in; then the nearest ancestor of the current directory that has a catalog.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("WORKSPACE_ROOT") {
        return PathBuf::from(root);
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf);
    if let Some(root) = built_in.filter(|root| root.join(FILE_NAME).is_file()) {
        return root;
    }
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.ancestors()
                .find(|dir| dir.join(FILE_NAME).is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_catalog_is_valid() {
        let catalog = Catalog::load_workspace().expect("services.toml loads");
        assert!(catalog.services.contains_key("api"));
        assert!(catalog.services.contains_key("web"));
        assert!(catalog.jobs["migrate"].lambda);
        let order: Vec<_> = catalog.start_order().into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, ["api", "web"]);
    }

    #[test]
    fn routes_match_whole_segments() {
        let catalog = Catalog::load_workspace().unwrap();
        let api = &catalog.services["api"];
        assert!(api.matches("/api"));
        assert!(api.matches("/api/messages"));
        assert!(!api.matches("/apiary"));
    }

    fn base() -> String {
        std::fs::read_to_string(workspace_root().join(FILE_NAME)).unwrap()
    }

    #[test]
    fn rejects_unknown_upstream() {
        let text = base().replace("upstreams = [\"api\"]", "upstreams = [\"nope\"]");
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("upstream `nope`"), "{err}");
    }

    #[test]
    fn rejects_duplicate_port() {
        let text = base().replace("port = 3001", "port = 3000");
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("port 3000"), "{err}");
    }

    #[test]
    fn rejects_unknown_field() {
        let text = base().replace("crate = \"web\"", "crate = \"web\"\nimage = \"x\"");
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("image"), "{err}");
    }

    #[test]
    fn rejects_missing_root_route() {
        let text = base().replace("route = \"/\"", "route = \"/web\"");
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("route `/`"), "{err}");
    }
}
