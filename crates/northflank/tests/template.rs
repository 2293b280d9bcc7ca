//! Properties of the rendered template, northflank/template.json, checked
//! against the service catalog.

use std::path::{Path, PathBuf};

use catalog::Catalog;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    let path = root().join("northflank/template.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn catalog() -> Catalog {
    Catalog::load(root().join("services.toml")).unwrap()
}

/// Every node, depth first, in template order.
fn nodes(template: &Value) -> Vec<&Value> {
    fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(node);
        if node["kind"] == "Workflow" {
            for step in node["spec"]["steps"].as_array().unwrap() {
                walk(step, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&template["spec"], &mut out);
    out
}

fn node<'a>(all: &[&'a Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|n| n["kind"] == kind && n["spec"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} node named {name}"))
}

fn position(all: &[&Value], r#ref: &str) -> usize {
    all.iter()
        .position(|n| n["ref"] == r#ref)
        .unwrap_or_else(|| panic!("no node {ref}"))
}

fn image_argument(name: &str) -> String {
    format!("{}_IMAGE", name.to_uppercase().replace('-', "_"))
}

/// Northflank's plans (id, millicpu, MiB), as in nix/northflank/plans.nix.
const PLANS: [(&str, u64, u64); 9] = [
    ("nf-compute-10", 100, 256),
    ("nf-compute-20", 200, 512),
    ("nf-compute-50", 500, 1024),
    ("nf-compute-100-1", 1000, 1024),
    ("nf-compute-100-2", 1000, 2048),
    ("nf-compute-100-4", 1000, 4096),
    ("nf-compute-200", 2000, 4096),
    ("nf-compute-200-8", 2000, 8192),
    ("nf-compute-400", 4000, 8192),
];

/// A plan fits a catalog size (Fargate CPU units, MiB) when it has at least
/// the memory and no plan with enough memory is nearer in relative CPU and memory.
fn assert_plan_fits(plan: &Value, cpu: u32, memory: u32, what: &str) {
    let (cpu, memory) = (f64::from(cpu) / 1024.0, f64::from(memory));
    let distance = |p: &(&str, u64, u64)| {
        ((p.1 as f64 / 1000.0) - cpu).abs() / cpu + ((p.2 as f64) - memory).abs() / memory
    };
    let chosen = PLANS
        .iter()
        .find(|p| plan == p.0)
        .unwrap_or_else(|| panic!("{what}: unknown plan {plan}"));
    assert!(
        chosen.2 as f64 >= memory,
        "{what}: {plan} has less memory than the catalog"
    );
    for other in PLANS.iter().filter(|p| p.2 as f64 >= memory) {
        assert!(
            distance(chosen) <= distance(other),
            "{what}: {} is nearer than {plan}",
            other.0
        );
    }
}

#[test]
fn the_database_has_tls_and_no_external_access() {
    let t = template();
    let all = nodes(&t);
    let db = node(&all, "Addon", "database");
    assert_eq!(db["spec"]["type"], "postgresql");
    assert_eq!(db["spec"]["tlsEnabled"], true);
    assert_eq!(db["spec"]["externalAccessEnabled"], false);
    assert!(db["spec"].get("ipPolicies").is_none_or(|p| p == &json!([])));
}

#[test]
fn the_database_storage_class_is_the_platforms_default() {
    // Northflank's reference marks `billing.storageClass` as configurable only behind
    // a feature flag; `ssd` is from older documentation. Without the flag a value is
    // at best ignored, so the template leaves it out.
    let t = template();
    let all = nodes(&t);
    let billing = &node(&all, "Addon", "database")["spec"]["billing"];
    assert!(billing.get("storageClass").is_none(), "{billing}");
    assert!(
        billing["storage"].as_u64().is_some_and(|mb| mb >= 1024),
        "{billing}"
    );
}

#[test]
fn the_connection_is_restricted_to_the_database_clients() {
    let t = template();
    let c = catalog();
    let all = nodes(&t);
    let group = node(&all, "SecretGroup", "database-connection");
    let spec = &group["spec"];
    assert_eq!(spec["restrictions"]["restricted"], true);
    assert_eq!(spec["restrictions"]["tags"], json!([]));
    let mut expected: Vec<Value> = c
        .services
        .iter()
        .filter(|(_, s)| s.database)
        .map(|(n, _)| json!({"id": n, "type": "service"}))
        .chain(
            c.jobs
                .iter()
                .filter(|(_, j)| j.database)
                .map(|(n, _)| json!({"id": n, "type": "job"})),
        )
        .collect();
    let mut got = spec["restrictions"]["nfObjects"]
        .as_array()
        .unwrap()
        .clone();
    expected.sort_by_key(Value::to_string);
    got.sort_by_key(Value::to_string);
    assert_eq!(got, expected);
    assert_eq!(
        got,
        [
            json!({"id": "api", "type": "service"}),
            json!({"id": "migrate", "type": "job"})
        ],
        "today: the api and the migration job only"
    );

    let deps = spec["addonDependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(
        deps[0]["addonId"],
        format!("${{refs.{}.id}}", position_ref(&all, "Addon"))
    );
    let mut aliases: Vec<&str> = deps[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|k| k["aliases"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    aliases.sort_unstable();
    assert_eq!(
        aliases,
        ["PGDATABASE", "PGHOST", "PGPASSWORD", "PGPORT", "PGUSER"]
    );
    assert_eq!(
        spec["secrets"]["variables"],
        json!({"PGSSLMODE": "require"})
    );

    // Nothing else is handed the connection another way.
    let groups = all.iter().filter(|n| n["kind"] == "SecretGroup").count();
    assert_eq!(groups, 1);
}

fn position_ref(all: &[&Value], kind: &str) -> String {
    all.iter().find(|n| n["kind"] == kind).unwrap()["ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_service_matches_the_catalog() {
    let t = template();
    let c = catalog();
    let all = nodes(&t);
    let deployments = all
        .iter()
        .filter(|n| n["kind"] == "DeploymentService")
        .count();
    assert_eq!(deployments, c.services.len());
    for (name, s) in &c.services {
        let spec = &node(&all, "DeploymentService", name)["spec"];
        assert_eq!(
            spec["ports"],
            json!([
                {"name": "http", "internalPort": s.port, "public": true, "protocol": "HTTP"},
                {"name": "metrics", "internalPort": s.metrics_port, "public": false, "protocol": "HTTP"},
            ]),
            "{name}: ports"
        );
        let checks = spec["healthChecks"].as_array().unwrap();
        assert!(!checks.is_empty(), "{name}: no health check");
        for check in checks {
            assert_eq!(check["protocol"], "HTTP");
            assert_eq!(check["path"], s.health.as_str(), "{name}: health path");
            assert_eq!(check["port"], s.port, "{name}: health port");
        }
        let types: Vec<&Value> = checks.iter().map(|c| &c["type"]).collect();
        assert!(
            types.contains(&&json!("livenessProbe")) && types.contains(&&json!("readinessProbe"))
        );

        assert_plan_fits(&spec["billing"]["deploymentPlan"], s.cpu, s.memory, name);
        assert_eq!(
            spec["deployment"]["instances"], s.instances.desired,
            "{name}: instances"
        );
        let scaling = &spec["autoscaling"]["horizontal"];
        assert_eq!(scaling["minReplicas"], s.instances.min);
        assert_eq!(scaling["maxReplicas"], s.instances.max);
        assert_eq!(scaling["enabled"], s.instances.min < s.instances.max);

        let env = &spec["runtimeEnvironment"];
        assert_eq!(env["PORT"], s.port.to_string());
        assert_eq!(env["METRICS_PORT"], s.metrics_port.to_string());
        for (key, value) in &s.env {
            assert_eq!(env[key], value.as_str(), "{name}: {key}");
        }
        for upstream in &s.upstreams {
            let port = c.services[upstream].port;
            assert_eq!(
                env[catalog::Service::url_variable(upstream)],
                format!("http://{upstream}:{port}"),
                "{name}: reaches {upstream} at Northflank's internal address"
            );
        }
    }
    let web = &node(&all, "DeploymentService", "web")["spec"]["runtimeEnvironment"];
    assert_eq!(web["API_URL"], "http://api:3000");
}

#[test]
fn images_and_credentials_are_arguments_never_values() {
    let t = template();
    let c = catalog();
    let all = nodes(&t);
    let mut expected = serde_json::Map::new();
    for name in c.services.keys().chain(c.jobs.keys()) {
        expected.insert(image_argument(name), json!(""));
    }
    expected.insert("REGISTRY_CREDENTIALS".into(), json!(""));
    assert_eq!(t["arguments"], Value::Object(expected));

    let workloads = all
        .iter()
        .filter(|n| n["kind"] == "DeploymentService" || n["kind"] == "ManualJob");
    for w in workloads {
        let name = w["spec"]["name"].as_str().unwrap();
        assert_eq!(
            w["spec"]["deployment"]["external"],
            json!({
                "imagePath": format!("${{args.{}}}", image_argument(name)),
                "credentials": "${args.REGISTRY_CREDENTIALS}",
            }),
            "{name}: pulled from the registry, never built by Northflank"
        );
    }
    let text = t.to_string();
    for literal in ["ghcr.io", "dkr.ecr", "sha256:", "vcsData", "buildSettings"] {
        assert!(!text.contains(literal), "the template bakes in `{literal}`");
    }
}

#[test]
fn the_migration_succeeds_before_any_service_rolls() {
    let t = template();
    let c = catalog();
    let all = nodes(&t);
    let migrate = c
        .jobs
        .iter()
        .find(|(_, j)| j.lambda)
        .map(|(n, _)| n.as_str())
        .unwrap();
    let job = node(&all, "ManualJob", migrate);
    // nix/images.nix makes the catalog `command` the image's entrypoint.
    assert_eq!(
        job["spec"]["deployment"]["docker"],
        json!({"configType": "default"})
    );
    let run = all.iter().find(|n| n["kind"] == "JobRun").unwrap();
    assert_eq!(run["condition"], "success", "the run is awaited");
    assert_eq!(
        run["spec"]["jobId"],
        format!("${{refs.{}.id}}", job["ref"].as_str().unwrap())
    );

    // In the sequential workflow of the project: database ready, then the run, then the services.
    let resources = all.iter().find(|n| n["ref"] == "resources").unwrap();
    assert_eq!(resources["spec"]["type"], "sequential");
    assert_eq!(
        resources["spec"]["context"]["projectId"],
        "${refs.project.id}"
    );
    let steps: Vec<&str> = resources["spec"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "database",
            "connection",
            "jobs",
            "database-running",
            "migration",
            "services"
        ]
    );
    for name in c.services.keys() {
        assert!(
            position(&all, "migration") < position(&all, name),
            "{name} rolls after the migration"
        );
    }
    assert!(position(&all, "project") < position(&all, "database"));
    assert_eq!(t["spec"]["spec"]["type"], "sequential");
    assert_eq!(t["apiVersion"], "v1.2");
    assert_eq!(
        t["options"]["autorun"], false,
        "runs only with the arguments of a build"
    );
}

#[test]
fn the_file_is_canonical_json() {
    let path = root().join("northflank/template.json");
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    // serde_json's map is sorted (no preserve_order), as `jq -S .` sorts keys.
    assert_eq!(text, serde_json::to_string_pretty(&value).unwrap() + "\n");
}
