//! The load scenarios and their targets.

use super::ceiling::Statement;

/// One load scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// Service under load.
    pub service: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    /// `Some(false)`: run with Postgres `synchronous_commit = off`.
    pub synchronous_commit: Option<bool>,
    pub target_rps: f64,
    pub target_p99_ms: Option<f64>,
    /// The api statement whose pgbench rate bounds this scenario (its database ceiling).
    pub ceiling: Option<Statement>,
    /// Least `req/s ÷ ceiling` accepted.
    pub target_ceiling_ratio: Option<f64>,
    pub description: &'static str,
}

/// Every scenario, in run order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "api_health",
            service: "api",
            method: "GET",
            path: "/api/health",
            synchronous_commit: None,
            target_rps: 30_000.0,
            target_p99_ms: None,
            ceiling: None,
            target_ceiling_ratio: None,
            description: "api liveness, no database",
        },
        Scenario {
            name: "api_list",
            service: "api",
            method: "GET",
            path: "/api/messages?limit=100",
            synchronous_commit: None,
            target_rps: 5_000.0,
            target_p99_ms: Some(20.0),
            ceiling: Some(Statement::List { limit: 100 }),
            target_ceiling_ratio: Some(0.6),
            description: "api lists the first 100 messages (one statement; the rows are read only when something committed since the page was kept)",
        },
        Scenario {
            name: "web_index",
            service: "web",
            method: "GET",
            path: "/",
            synchronous_commit: None,
            target_rps: 3_000.0,
            target_p99_ms: None,
            ceiling: None,
            target_ceiling_ratio: None,
            description: "web page, server-rendered from an api call (50 messages)",
        },
        Scenario {
            name: "api_create",
            service: "api",
            method: "POST",
            path: "/api/messages",
            synchronous_commit: Some(true),
            target_rps: 4_000.0,
            target_p99_ms: None,
            ceiling: Some(Statement::Create),
            target_ceiling_ratio: Some(0.9),
            description: "api creates a message, answered once committed (synchronous_commit = on, the default; creates arriving together share a statement and a commit)",
        },
        Scenario {
            name: "api_create_async_commit",
            service: "api",
            method: "POST",
            path: "/api/messages",
            synchronous_commit: Some(false),
            target_rps: 4_000.0,
            target_p99_ms: None,
            ceiling: Some(Statement::Create),
            target_ceiling_ratio: None,
            description: "same, Postgres synchronous_commit = off (shows the cost of the WAL fsync)",
        },
    ]
}

/// Names of all scenarios, in run order.
pub fn scenario_names() -> Vec<&'static str> {
    scenarios().iter().map(|s| s.name).collect()
}

/// The scenarios named in `only` (all when empty), in run order; an unknown name is an error.
pub fn select(only: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let all = scenarios();
    if let Some(unknown) = only.iter().find(|o| !all.iter().any(|s| s.name == *o)) {
        anyhow::bail!(
            "unknown scenario `{unknown}` in --only (scenarios: {})",
            scenario_names().join(", ")
        );
    }
    Ok(all
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
        .collect())
}
