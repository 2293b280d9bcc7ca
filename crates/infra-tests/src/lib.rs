//! Shared helpers for the infrastructure tests, one module per concern:
//! [`terraform`] (a scratch work directory, init/validate/plan/apply),
//! [`plan`] (the plan and its queries), [`checkov`], [`sts`] (the loopback
//! STS stand-in), [`moto`] (the AWS emulator) and [`policy`] (IAM documents
//! and the Service Authorization Reference extract). Here: the repository,
//! its committed renders and the service catalog.
//!
//! Everything fails (never skips) with a message naming what is missing: a
//! green run means the checks ran.

pub mod checkov;
pub mod moto;
pub mod plan;
pub mod policy;
pub mod sts;
pub mod terraform;

pub use checkov::{Finding, Skip, checkov_plan, checkov_program, declared_skips};
pub use moto::Moto;
pub use plan::{Plan, Planned};
pub use policy::{
    ActionAuthorization, ResourceType, ServiceAuthorization, policy_statements,
    reference_condition_key, resource_matches_type, string_list,
};
pub use sts::{FAKE_ACCOUNT, fake_sts};
pub use terraform::{
    AWS_SERVICES, Workspace, endpoint_provider, environment_vars, offline_provider, plugin_mirror,
};

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A committed render, e.g. `infra/staging/main.tf.json`, parsed.
pub fn render(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (run scripts/render)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not JSON: {e}"))
}

/// `jq -S .`: keys sorted at every level, two-space indent, trailing newline.
pub fn canonical_json(value: &Value) -> String {
    // serde_json's map is ordered by key unless `preserve_order` is enabled.
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).expect("serialise") + "\n"
}

/// The service catalog (`services.toml`), as plain TOML.
pub fn catalog() -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join("services.toml")).expect("services.toml");
    text.parse().expect("services.toml is TOML")
}

/// Names of the catalog's services and of its jobs.
pub fn catalog_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let catalog = catalog();
    let names = |key: &str| {
        catalog
            .get(key)
            .and_then(|t| t.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    (names("services"), names("jobs"))
}

/// Path to a program, or a panic that says it must be installed.
pub fn require_program(name: &str, hint: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| panic!("`{name}` is required and not on PATH: {hint}"))
}

pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
