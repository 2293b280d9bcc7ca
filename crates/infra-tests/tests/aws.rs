//! The AWS environments (`infra/<env>/main.tf.json`, rendered from `nix/aws/`):
//! terraform init from the local mirror, validate and an offline plan with
//! fake credentials; the security properties asserted over the plan (and over
//! the rendered JSON where a value is only known after apply); checkov with no
//! finding that lacks a written skip; and staging applied to and destroyed
//! from moto. What moto does not prove: crates/infra-tests/README.md.

use infra_tests::{
    FAKE_ACCOUNT, Moto, Plan, Workspace, canonical_json, catalog, catalog_names, checkov_plan,
    declared_skips, endpoint_provider, environment_vars, offline_provider, policy_statements,
    render, string_list,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const ENVIRONMENTS: [&str; 2] = ["production", "staging"];

/// Where the images and the Lambda zip hold the RDS CA bundle
/// (`nix/aws/rds-ca-bundle.pem`; nix/images.nix and nix/lambda.nix copy it).
const IMAGE_CA_BUNDLE: &str = "/etc/ssl/certs/rds-ca-bundle.pem";
const LAMBDA_CA_BUNDLE: &str = "/var/task/rds-ca-bundle.pem";

fn render_path(env: &str) -> String {
    format!("infra/{env}/main.tf.json")
}

/// validate + plan + show -json of one environment, once per test binary.
fn plan(env: &str) -> &'static Plan {
    static PRODUCTION: OnceLock<Plan> = OnceLock::new();
    static STAGING: OnceLock<Plan> = OnceLock::new();
    let cell = match env {
        "production" => &PRODUCTION,
        "staging" => &STAGING,
        other => panic!("unknown environment {other}"),
    };
    cell.get_or_init(|| {
        let workspace = Workspace::new(&render_path(env), offline_provider());
        workspace.init();
        workspace.validate();
        let vars = environment_vars(workspace.path());
        workspace.plan(&vars)
    })
}

/// Services and jobs of the catalog with `database = true`.
fn database_clients() -> (BTreeSet<String>, BTreeSet<String>) {
    let catalog = catalog();
    let with_database = |key: &str| -> BTreeSet<String> {
        catalog
            .get(key)
            .and_then(|t| t.as_table())
            .into_iter()
            .flatten()
            .filter(|(_, w)| w.get("database").and_then(|d| d.as_bool()) == Some(true))
            .map(|(name, _)| name.clone())
            .collect()
    };
    (with_database("services"), with_database("jobs"))
}

fn resources_of<'a>(render: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    render["resource"][kind]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

#[test]
fn renders_are_canonical_json() {
    for env in ENVIRONMENTS {
        let path = render_path(env);
        let text = std::fs::read_to_string(infra_tests::repo_root().join(&path)).unwrap();
        assert_eq!(
            text,
            canonical_json(&render(&path)),
            "{path} is not canonical (`jq -S .`): run scripts/render"
        );
    }
}

#[test]
fn every_environment_plans_from_empty_state() {
    for env in ENVIRONMENTS {
        let actions = plan(env).actions();
        assert!(actions.len() > 50, "{env}: suspiciously small plan");
        for (address, action) in &actions {
            assert_eq!(action, &["create"], "{env}: {address} is not a create");
        }
        let mut names: Vec<String> = plan(env)
            .json
            .pointer("/planned_values/outputs")
            .and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        for output in [
            "cluster_name",
            "ecr_repository_urls",
            "migration_lambda_name",
            "service_names",
            "url",
        ] {
            assert!(
                names.iter().any(|n| n == output),
                "{env}: no output {output}"
            );
        }
    }
}

#[test]
fn database_is_private_and_reachable_only_from_its_clients() {
    let (services, jobs) = database_clients();
    // Services through their own security group; the migration job through
    // the Lambda's. Other jobs have no runtime on AWS and get no path.
    let mut expected: BTreeSet<String> = services
        .iter()
        .map(|s| format!("aws_security_group.service_{s}"))
        .collect();
    if !jobs.is_empty() {
        expected.insert("aws_security_group.migration".to_owned());
    }
    assert!(
        expected.contains("aws_security_group.service_api")
            && expected.contains("aws_security_group.migration"),
        "the catalog's database clients should include api and the migration job"
    );

    for env in ENVIRONMENTS {
        let plan = plan(env);
        let db = plan.values("aws_db_instance.main");
        assert_eq!(
            db["publicly_accessible"], false,
            "{env}: database is public"
        );
        assert_eq!(db["engine"], "postgres");
        assert!(
            db["engine_version"].as_str().unwrap().starts_with("16"),
            "{env}: not PostgreSQL 16"
        );
        assert_eq!(
            plan.references("aws_db_instance.main", "vpc_security_group_ids"),
            [
                "aws_security_group.database.id",
                "aws_security_group.database"
            ],
            "{env}: the database must sit in its own security group only"
        );
        let subnets = plan.references("aws_db_subnet_group.main", "subnet_ids");
        assert!(
            !subnets.is_empty()
                && subnets
                    .iter()
                    .filter(|r| r.ends_with(".id"))
                    .all(|r| r.starts_with("aws_subnet.private_")),
            "{env}: database subnets must be private: {subnets:?}"
        );

        // Every rule that opens the database's group, and who it admits.
        let mut admitted = BTreeSet::new();
        for rule in plan.of_type("aws_vpc_security_group_ingress_rule") {
            let target = plan.references(&rule.address, "security_group_id");
            if !target.contains(&"aws_security_group.database".to_owned()) {
                continue;
            }
            assert_eq!(rule.values["from_port"], 5432, "{env}: {}", rule.address);
            assert_eq!(rule.values["to_port"], 5432, "{env}: {}", rule.address);
            assert!(
                rule.values["cidr_ipv4"].is_null() && rule.values["cidr_ipv6"].is_null(),
                "{env}: {} admits an address range",
                rule.address
            );
            let sources = plan.references(&rule.address, "referenced_security_group_id");
            let source = sources
                .iter()
                .find(|r| !r.ends_with(".id"))
                .unwrap_or_else(|| panic!("{env}: {} admits no security group", rule.address));
            admitted.insert(source.clone());
        }
        assert_eq!(
            admitted, expected,
            "{env}: the database admits exactly its clients"
        );
        assert!(
            plan.of_type("aws_security_group_rule").is_empty(),
            "{env}: legacy aws_security_group_rule resources bypass this check"
        );
        let db_group = &render(&render_path(env))["resource"]["aws_security_group"]["database"];
        assert!(
            db_group.get("ingress").is_none() && db_group.get("egress").is_none(),
            "{env}: inline rules on the database group bypass this check"
        );
    }
}

#[test]
fn database_forces_tls_encrypts_with_a_rotating_key_and_backs_up() {
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let params = plan.values("aws_db_parameter_group.main");
        let force_ssl = params["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "rds.force_ssl")
            .unwrap_or_else(|| panic!("{env}: no rds.force_ssl"));
        assert_eq!(force_ssl["value"], "1", "{env}: TLS not forced");
        assert_eq!(
            plan.references("aws_db_instance.main", "parameter_group_name")[0],
            "aws_db_parameter_group.main.name"
        );

        let db = plan.values("aws_db_instance.main");
        assert_eq!(db["storage_encrypted"], true, "{env}");
        assert_eq!(
            plan.references("aws_db_instance.main", "kms_key_id")[0],
            "aws_kms_key.database.arn",
            "{env}: storage must use the customer-managed key"
        );
        assert!(
            db["backup_retention_period"].as_u64().unwrap() >= 1,
            "{env}"
        );
        for key in plan.of_type("aws_kms_key") {
            assert_eq!(
                key.values["enable_key_rotation"], true,
                "{env}: {} does not rotate",
                key.address
            );
        }
        if env == "production" {
            assert_eq!(db["multi_az"], true);
            assert_eq!(db["deletion_protection"], true);
            assert_eq!(db["skip_final_snapshot"], false);
            assert!(db["final_snapshot_identifier"].is_string());
        }
    }
}

#[test]
fn no_password_passes_through_terraform() {
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let db = plan.values("aws_db_instance.main");
        assert_eq!(db["manage_master_user_password"], true, "{env}");
        assert!(db["password"].is_null(), "{env}: a password is in the plan");
        for resource in plan.resources().values() {
            assert!(
                !matches!(
                    resource.kind.as_str(),
                    "aws_secretsmanager_secret_version" | "random_password" | "aws_ssm_parameter"
                ),
                "{env}: {} would put a secret value into state",
                resource.address
            );
        }
        // No attribute anywhere in the plan carries a value named like a password.
        fn visit(value: &Value, path: &str, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        let lower = k.to_lowercase();
                        if (lower.contains("password") && lower != "manage_master_user_password")
                            && !(v.is_null() || v == &Value::Bool(false))
                        {
                            found.push(format!("{path}/{k}"));
                        }
                        visit(v, &format!("{path}/{k}"), found);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        visit(v, &format!("{path}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        for resource in plan.resources().values() {
            visit(&resource.values, &resource.address, &mut found);
        }
        assert!(found.is_empty(), "{env}: password-like values: {found:?}");
    }
}

#[test]
fn log_groups_keep_logs_and_are_encrypted() {
    for (env, days) in [("production", 365), ("staging", 30)] {
        let plan = plan(env);
        let groups = plan.of_type("aws_cloudwatch_log_group");
        assert!(groups.len() >= 4, "{env}: too few log groups");
        for group in groups {
            assert_eq!(
                group.values["retention_in_days"], days,
                "{env}: {} retention",
                group.address
            );
            assert_eq!(
                plan.references(&group.address, "kms_key_id")[0],
                "aws_kms_key.observability.arn",
                "{env}: {} is not encrypted with the observability key",
                group.address
            );
        }
    }
}

/// IAM documents contain interpolations, unknown until apply: read them from
/// the render, where they are JSON strings with `${…}` inside.
#[test]
fn no_policy_allows_every_action_on_every_resource() {
    for env in ENVIRONMENTS {
        let render = render(&render_path(env));
        let mut documents = Vec::new();
        for (kind, attribute) in [
            ("aws_iam_role_policy", "policy"),
            ("aws_iam_policy", "policy"),
            ("aws_iam_role", "assume_role_policy"),
            ("aws_kms_key_policy", "policy"),
        ] {
            for (name, body) in resources_of(&render, kind) {
                documents.push((format!("{kind}.{name}"), body[attribute].clone()));
            }
        }
        assert!(documents.len() >= 5, "{env}: too few policy documents");
        for (address, document) in documents {
            for statement in policy_statements(&document) {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                let actions = string_list(&statement["Action"]);
                let resources = string_list(&statement["Resource"]);
                assert!(
                    !(actions.iter().any(|a| a == "*") && resources.iter().any(|r| r == "*")),
                    "{env}: {address} allows * on *: {statement}"
                );
                assert!(
                    statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
                    "{env}: {address} uses NotAction/NotResource: {statement}"
                );
            }
        }
        // AWS-managed policies: only the documented service-role minimum.
        for (address, body) in resources_of(&render, "aws_iam_role_policy_attachment") {
            let arn = body["policy_arn"].as_str().unwrap_or_default();
            assert!(
                arn.starts_with("arn:aws:iam::aws:policy/service-role/"),
                "{env}: {address} attaches {arn}"
            );
        }
    }
}

/// Every role carries the bootstrap's permissions boundary (so whatever the
/// deploy role writes on it stays within the boundary), named through the
/// caller's account and partition: the render names no account.
#[test]
fn every_role_has_the_environment_boundary() {
    let boundary =
        format!("arn:aws:iam::{FAKE_ACCOUNT}:policy/iac-experiment-environment-boundary");
    for env in ENVIRONMENTS {
        let roles = plan(env).of_type("aws_iam_role");
        assert!(roles.len() >= 3, "{env}: too few roles");
        for role in roles {
            assert_eq!(
                role.values["permissions_boundary"], boundary,
                "{env}: {} has no environment boundary",
                role.address
            );
        }
        let text = std::fs::read_to_string(infra_tests::repo_root().join(render_path(env)))
            .expect("render");
        assert!(
            !text.contains(FAKE_ACCOUNT)
                && !text
                    .match_indices("iam::")
                    .any(|(i, _)| text[i + 5..].starts_with(|c: char| c.is_ascii_digit())),
            "{env}: the render names an account"
        );
    }
}

#[test]
fn load_balancer_routes_api_and_defaults_to_web() {
    let (services, _) = catalog_names();
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let alb = plan.values("aws_lb.main");
        assert_eq!(alb["drop_invalid_header_fields"], true, "{env}");
        assert_eq!(alb["internal"], false, "{env}");
        assert_eq!(alb["load_balancer_type"], "application", "{env}");

        let rule = plan.values("aws_lb_listener_rule.api");
        let patterns = &rule["condition"][0]["path_pattern"][0]["values"];
        let mut patterns: Vec<&str> = patterns
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        patterns.sort_unstable();
        assert_eq!(patterns, ["/api", "/api/*"], "{env}");
        assert_eq!(rule["action"][0]["type"], "forward");
        assert!(
            plan.references("aws_lb_listener_rule.api", "action")
                .contains(&"aws_lb_target_group.api.arn".to_owned())
                || render(&render_path(env))["resource"]["aws_lb_listener_rule"]["api"]["action"]
                    [0]["target_group_arn"]
                    == "${aws_lb_target_group.api.arn}",
            "{env}: /api must forward to the api target group"
        );
        let listener = &render(&render_path(env))["resource"]["aws_lb_listener"]["http"];
        assert_eq!(
            listener["default_action"]["target_group_arn"], "${aws_lb_target_group.web.arn}",
            "{env}: the default action goes to web"
        );

        for service in &services {
            let group = plan.values(&format!("aws_lb_target_group.{service}"));
            assert_eq!(group["target_type"], "ip");
            assert!(
                group["health_check"][0]["path"]
                    .as_str()
                    .unwrap()
                    .starts_with('/'),
                "{env}: {service} health check"
            );
        }
        assert_eq!(
            plan.values("aws_lb_target_group.api")["health_check"][0]["path"],
            "/api/health"
        );
    }
}

#[test]
fn images_are_immutable_and_scanned() {
    let (services, jobs) = catalog_names();
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let repositories = plan.of_type("aws_ecr_repository");
        assert_eq!(repositories.len(), services.len() + jobs.len(), "{env}");
        // A destroyable environment (its database unprotected) loses its
        // images with it; a protected one keeps them (a destroy fails).
        let destroyable = plan.values("aws_db_instance.main")["deletion_protection"] == false;
        assert_eq!(
            destroyable,
            env == "staging",
            "{env}: which environment is disposable"
        );
        for repo in repositories {
            assert_eq!(
                repo.values["force_delete"], destroyable,
                "{env}: {} force_delete",
                repo.address
            );
            assert_eq!(repo.values["image_tag_mutability"], "IMMUTABLE", "{env}");
            assert_eq!(
                repo.values["image_scanning_configuration"][0]["scan_on_push"], true,
                "{env}"
            );
            assert!(
                repo.values["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{env}/"))
            );
        }
        assert_eq!(
            plan.of_type("aws_ecr_lifecycle_policy").len(),
            services.len() + jobs.len()
        );
    }
}

/// Container definitions embed ARNs known only after apply: read the render.
#[test]
fn containers_run_read_only_as_non_root() {
    let (services, _) = catalog_names();
    let (database_services, _) = database_clients();
    for env in ENVIRONMENTS {
        let render = render(&render_path(env));
        for service in &services {
            let task = &render["resource"]["aws_ecs_task_definition"][service];
            assert_eq!(task["requires_compatibilities"][0], "FARGATE");
            let containers: Value =
                serde_json::from_str(task["container_definitions"].as_str().unwrap()).unwrap();
            let container = &containers[0];
            assert_eq!(container["readonlyRootFilesystem"], true, "{env}/{service}");
            let user = container["user"].as_str().unwrap_or("root");
            assert!(
                !(user.is_empty() || user == "root" || user.starts_with("0")),
                "{env}/{service} runs as root"
            );
            assert_eq!(container["logConfiguration"]["logDriver"], "awslogs");
            if database_services.contains(service) {
                let environment = container_environment(container);
                assert_eq!(
                    environment["PGSSLMODE"], "verify-full",
                    "{env}/{service}: the server must be authenticated"
                );
                assert_eq!(
                    environment["PGSSLROOTCERT"], IMAGE_CA_BUNDLE,
                    "{env}/{service}: the RDS CA bundle in the images"
                );
            }
            let ecs = &render["resource"]["aws_ecs_service"][service];
            assert_eq!(ecs["deployment_circuit_breaker"]["rollback"], true);
            assert_eq!(ecs["network_configuration"]["assign_public_ip"], false);
            assert_eq!(ecs["service_connect_configuration"]["enabled"], true);
        }
        let web: Value = serde_json::from_str(
            render["resource"]["aws_ecs_task_definition"]["web"]["container_definitions"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(
            web[0]["environment"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "API_URL" && e["value"] == "http://api:3000"),
            "{env}: web must reach api by its Service Connect name"
        );
    }
}

fn container_environment(container: &Value) -> BTreeMap<&str, &str> {
    container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect()
}

/// Credentials that survive RDS's rotation of the master secret (README, "AWS"): ECS `secrets`
/// are resolved once at task start and go stale, so no task definition carries a password or
/// an ECS secret. A database service gets the secret's ARN and reads it itself, with a task role
/// that may read exactly that secret and decrypt only through Secrets Manager; its execution
/// role reads no secret. Container definitions embed ARNs known only after apply: the render.
#[test]
fn database_services_read_the_rotating_secret_with_their_task_role_only() {
    const SECRET: &str = "${aws_db_instance.main.master_user_secret[0].secret_arn}";
    let (services, _) = catalog_names();
    let (database_services, _) = database_clients();
    for env in ENVIRONMENTS {
        let render = render(&render_path(env));
        let resources = &render["resource"];
        for service in &services {
            let task = &resources["aws_ecs_task_definition"][service];
            let containers: Value =
                serde_json::from_str(task["container_definitions"].as_str().unwrap()).unwrap();
            let container = &containers[0];
            assert!(
                container.get("secrets").is_none(),
                "{env}/{service}: ECS secrets are read once, at task start"
            );
            let environment = container_environment(container);
            for variable in ["PGPASSWORD", "PGUSER", "DATABASE_URL"] {
                assert!(
                    !environment.contains_key(variable),
                    "{env}/{service}: {variable}"
                );
            }
            let execution = &resources["aws_iam_role_policy"][format!("execution_{service}")];
            for statement in policy_statements(&execution["policy"]) {
                let actions = string_list(&statement["Action"]);
                assert!(
                    !actions
                        .iter()
                        .any(|a| a.starts_with("secretsmanager:") || a.starts_with("kms:")),
                    "{env}/{service}: the execution role reads secrets: {actions:?}"
                );
            }
            if !database_services.contains(service) {
                assert!(task.get("task_role_arn").is_none(), "{env}/{service}");
                assert!(
                    !environment.contains_key("DB_SECRET_ARN"),
                    "{env}/{service}"
                );
                continue;
            }
            assert_eq!(environment["DB_SECRET_ARN"], SECRET, "{env}/{service}");
            let region = container["logConfiguration"]["options"]["awslogs-region"]
                .as_str()
                .unwrap();
            assert_eq!(environment["AWS_REGION"], region, "{env}/{service}");
            assert_eq!(
                task["task_role_arn"],
                format!("${{aws_iam_role.task_{service}.arn}}"),
                "{env}/{service}"
            );
            let role = &resources["aws_iam_role"][format!("task_{service}")];
            assert_eq!(
                role["permissions_boundary"],
                "${local.permissions_boundary}"
            );
            let task_role = format!("aws_iam_role.task_{service}.");
            for (name, attachment) in resources_of(&render, "aws_iam_role_policy_attachment") {
                let role = attachment["role"].as_str().unwrap_or_default();
                assert!(
                    !role.contains(&task_role),
                    "{env}: {name} widens the task role"
                );
            }
            let policy = &resources["aws_iam_role_policy"][format!("task_{service}")];
            let mut granted = BTreeSet::new();
            for statement in policy_statements(&policy["policy"]) {
                let actions = string_list(&statement["Action"]);
                let targets = string_list(&statement["Resource"]);
                match actions.as_slice() {
                    [action] if action == "secretsmanager:GetSecretValue" => {
                        assert_eq!(targets, [SECRET], "{env}/{service}");
                    }
                    [action] if action == "kms:Decrypt" => {
                        assert_eq!(targets, ["${aws_kms_key.database.arn}"], "{env}/{service}");
                        assert_eq!(
                            statement["Condition"]["StringEquals"]["kms:ViaService"],
                            format!("secretsmanager.{region}.amazonaws.com"),
                            "{env}/{service}: decrypt only through Secrets Manager"
                        );
                    }
                    other => {
                        panic!("{env}/{service}: the task role may only read the secret: {other:?}")
                    }
                }
                assert_eq!(statement["Effect"], "Allow");
                granted.insert(actions[0].clone());
            }
            assert_eq!(granted.len(), 2, "{env}/{service}: {granted:?}");
        }
    }
}

#[test]
fn migration_function_is_private_and_uses_tls() {
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let function = plan.values("aws_lambda_function.migration");
        assert_eq!(function["runtime"], "provided.al2023");
        assert_eq!(function["handler"], "bootstrap");
        // -1: unreserved. Reserving any concurrency fails on new accounts
        // (quota 10, the unreserved minimum); the advisory lock serialises runs.
        assert_eq!(
            function["reserved_concurrent_executions"], -1,
            "{env}: the migration function reserves concurrency"
        );
        assert_eq!(function["architectures"][0], "x86_64");
        // The variables hold ARNs known only after apply: read the render.
        let render = render(&render_path(env));
        let body = &render["resource"]["aws_lambda_function"]["migration"];
        let variables = &body["environment"]["variables"];
        assert_eq!(
            variables["PGSSLMODE"], "verify-full",
            "{env}: the server must be authenticated"
        );
        assert_eq!(
            variables["PGSSLROOTCERT"], LAMBDA_CA_BUNDLE,
            "{env}: the RDS CA bundle in the zip"
        );
        // The environment holds no secret, so no customer-managed key: the
        // read-only plan role cannot decrypt one, and every plan would show
        // the environment changed.
        assert!(
            body.get("kms_key_arn").is_none() && function["kms_key_arn"].is_null(),
            "{env}: the function's environment is encrypted with a key the plan role cannot use"
        );
        for (name, value) in variables.as_object().unwrap() {
            let upper = name.to_uppercase();
            assert!(
                !["PASSWORD", "TOKEN", "SECRET_VALUE", "KEY"]
                    .iter()
                    .any(|s| upper.contains(s)),
                "{env}: {name}={value} looks like a secret in the function's environment"
            );
        }
        // No active tracing: the function's security group has no path to X-Ray.
        assert_eq!(
            function["tracing_config"][0]["mode"], "PassThrough",
            "{env}"
        );
        assert_eq!(variables["PGPORT"], "5432", "{env}");
        assert_eq!(
            body["source_code_hash"],
            "${filebase64sha256(var.migration_lambda_zip)}"
        );
        for key in ["DB_SECRET_ARN", "PGHOST", "PGDATABASE"] {
            assert!(variables[key].is_string(), "{env}: no {key}");
        }
        let subnets = string_list(&body["vpc_config"]["subnet_ids"]);
        assert!(
            !subnets.is_empty()
                && subnets
                    .iter()
                    .all(|s| s.starts_with("${aws_subnet.private_")),
            "{env}: the function must run in the private subnets: {subnets:?}"
        );
        // The role reads exactly the master secret and decrypts with exactly its key.
        let policy = &render["resource"]["aws_iam_role_policy"]["migration"]["policy"];
        for statement in policy_statements(policy) {
            let actions = string_list(&statement["Action"]);
            let resources = string_list(&statement["Resource"]);
            if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                assert_eq!(
                    resources,
                    ["${aws_db_instance.main.master_user_secret[0].secret_arn}"]
                );
            }
            if actions.iter().any(|a| a.starts_with("kms:")) {
                assert_eq!(resources, ["${aws_kms_key.database.arn}"]);
            }
            assert!(
                actions.iter().all(|a| !a.starts_with("xray:")),
                "{env}: the function sends no traces"
            );
        }
    }
}

#[test]
fn every_environment_has_alarms_to_an_email_topic_and_a_dashboard() {
    for env in ENVIRONMENTS {
        let plan = plan(env);
        let subscription = plan.values("aws_sns_topic_subscription.alert_email");
        assert_eq!(subscription["protocol"], "email");
        let alarms: BTreeSet<String> = plan
            .of_type("aws_cloudwatch_metric_alarm")
            .iter()
            .map(|a| a.values["metric_name"].as_str().unwrap().to_owned())
            .collect();
        for metric in [
            "HTTPCode_ELB_5XX_Count",
            "UnHealthyHostCount",
            "CPUUtilization",
            "MemoryUtilization",
            "FreeStorageSpace",
            "DatabaseConnections",
            "Errors",
        ] {
            assert!(alarms.contains(metric), "{env}: no {metric} alarm");
        }
        assert_eq!(plan.of_type("aws_cloudwatch_dashboard").len(), 1);
        let tags = &plan.json["configuration"]["provider_config"]["aws"]["expressions"]["default_tags"]
            [0]["tags"]["constant_value"];
        for key in ["Project", "Environment", "ManagedBy"] {
            assert!(tags[key].is_string(), "{env}: no default tag {key}");
        }
    }
}

/// checkov reads no skips from Terraform JSON, so the rendered `"//"` skips
/// (each with a reason, next to its resource) are matched here: every finding
/// must be skipped with a reason, and every skip must still be needed.
#[test]
fn checkov_finds_nothing_unexplained() {
    for env in ENVIRONMENTS {
        let skips = declared_skips(&render(&render_path(env)));
        for skip in &skips {
            assert!(
                skip.reason.len() >= 20,
                "{env}: skip of {} on {} needs a written reason",
                skip.check,
                skip.resource
            );
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), plan(env).json.to_string()).unwrap();
        let findings = checkov_plan(file.path());

        let skipped: BTreeSet<(&str, &str)> = skips
            .iter()
            .map(|s| (s.resource.as_str(), s.check.as_str()))
            .collect();
        let unexplained: Vec<String> = findings
            .iter()
            .filter(|f| !skipped.contains(&(f.resource.as_str(), f.check.as_str())))
            .map(|f| format!("{} {} ({})", f.check, f.resource, f.name))
            .collect();
        assert!(
            unexplained.is_empty(),
            "{env}: checkov failures without a skip (fix them, or add a skip with a reason \
             next to the resource in nix/aws):\n  {}",
            unexplained.join("\n  ")
        );
        let found: BTreeSet<(&str, &str)> = findings
            .iter()
            .map(|f| (f.resource.as_str(), f.check.as_str()))
            .collect();
        let stale: Vec<String> = skips
            .iter()
            .filter(|s| !found.contains(&(s.resource.as_str(), s.check.as_str())))
            .map(|s| format!("{} {}", s.check, s.resource))
            .collect();
        assert!(
            stale.is_empty(),
            "{env}: skips for checks that pass now (remove them):\n  {}",
            stale.join("\n  ")
        );
    }
}

/// Apply and destroy staging against moto on loopback. Proves the plan is
/// applyable resource by resource and the graph destroys cleanly, also once
/// images exist in its repositories; see the README for what moto does not
/// check.
#[test]
fn staging_applies_and_destroys_on_moto() {
    let moto = Moto::start();
    let workspace = Workspace::new(&render_path("staging"), endpoint_provider(&moto.endpoint));
    workspace.init();
    let vars = environment_vars(workspace.path());
    workspace.write_json("test.auto.tfvars.json", &vars);
    workspace.terraform(&["apply", "-auto-approve", "-input=false"]);

    let outputs: Value =
        serde_json::from_str(&workspace.terraform(&["output", "-json"])).expect("outputs");
    assert!(
        outputs["url"]["value"]
            .as_str()
            .unwrap()
            .starts_with("http://"),
        "url: {}",
        outputs["url"]
    );
    assert_eq!(outputs["cluster_name"]["value"], "staging");
    assert_eq!(outputs["migration_lambda_name"]["value"], "staging-migrate");
    let (services, jobs) = catalog_names();
    for name in services.iter().chain(&jobs) {
        assert!(
            outputs["ecr_repository_urls"]["value"][name]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("staging/{name}"))),
            "no ECR repository URL for {name}"
        );
    }
    for name in &services {
        assert_eq!(outputs["service_names"]["value"][name], name.as_str());
    }

    // The roles as moto returns them: created with the environment boundary,
    // named through moto's account (the data sources resolved against it).
    let state: Value =
        serde_json::from_str(&workspace.terraform(&["show", "-json"])).expect("state");
    let roles: Vec<&Value> = state
        .pointer("/values/root_module/resources")
        .and_then(Value::as_array)
        .expect("resources in state")
        .iter()
        .filter(|r| r["type"] == "aws_iam_role")
        .collect();
    assert!(roles.len() >= 3, "too few roles in state");
    for role in roles {
        assert_eq!(
            role["values"]["permissions_boundary"],
            format!("arn:aws:iam::{FAKE_ACCOUNT}:policy/iac-experiment-environment-boundary"),
            "{}",
            role["address"]
        );
    }

    // Images in every repository, pushed through the ECR API as a deploy
    // does: a repository that holds images is deleted only when forced.
    for name in services.iter().chain(&jobs) {
        moto.put_image("us-east-1", &format!("staging/{name}"), "stand-in");
    }

    workspace.terraform(&["destroy", "-auto-approve", "-input=false"]);
    let left = workspace.terraform(&["state", "list"]);
    assert!(left.trim().is_empty(), "left after destroy:\n{left}");
}

/// `verify-full` needs the CA that signs the server's certificate: the
/// committed bundle holds, unexpired, the root of each environment's region
/// for its `ca_cert_identifier` (rds-ca-rsa2048-g1 → "Amazon RDS <region>
/// Root CA RSA2048 G1"). Checked with `openssl x509`.
#[test]
fn the_rds_ca_bundle_holds_each_environments_root() {
    let openssl =
        infra_tests::require_program("openssl", "install OpenSSL (apt-get install openssl)");
    let bundle =
        std::fs::read_to_string(infra_tests::repo_root().join("nix/aws/rds-ca-bundle.pem"))
            .expect("nix/aws/rds-ca-bundle.pem");
    let end = "-----END CERTIFICATE-----";
    let mut subjects = Vec::new();
    for block in bundle.split_inclusive(end).filter(|b| b.contains(end)) {
        let pem = &block[block
            .find("-----BEGIN CERTIFICATE-----")
            .expect("a PEM block")..];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, pem).unwrap();
        let output = std::process::Command::new(&openssl)
            .args(["x509", "-noout", "-subject", "-checkend", "0", "-in"])
            .arg(&file)
            .output()
            .expect("run openssl");
        let subject = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "expired or unreadable: {subject}");
        subjects.push(subject);
    }
    for env in ENVIRONMENTS {
        let render = render(&render_path(env));
        let region = render["provider"]["aws"]["region"].as_str().unwrap();
        let identifier = render["resource"]["aws_db_instance"]["main"]["ca_cert_identifier"]
            .as_str()
            .unwrap();
        let (kind, generation) = match identifier {
            "rds-ca-rsa2048-g1" => ("RSA2048", "G1"),
            "rds-ca-rsa4096-g1" => ("RSA4096", "G1"),
            "rds-ca-ecc384-g1" => ("ECC384", "G1"),
            other => panic!("{env}: unknown ca_cert_identifier {other}"),
        };
        let root = format!("CN = Amazon RDS {region} Root CA {kind} {generation}");
        assert!(
            subjects.iter().any(|s| s.contains(&format!("{root},"))),
            "{env}: the bundle lacks `{root}`"
        );
    }
}

/// Replacements never collide with what they replace: target groups (a port
/// change) and the parameter group (a family change) are named by a prefix
/// and created before the old one is destroyed.
#[test]
fn replaced_resources_are_named_by_prefix_and_created_first() {
    for env in ENVIRONMENTS {
        let render = render(&render_path(env));
        let mut replaced: Vec<(String, &Value)> = resources_of(&render, "aws_lb_target_group")
            .into_iter()
            .map(|(name, body)| (format!("aws_lb_target_group.{name}"), body))
            .collect();
        replaced.push((
            "aws_db_parameter_group.main".to_owned(),
            &render["resource"]["aws_db_parameter_group"]["main"],
        ));
        assert!(
            replaced.len() >= 3,
            "{env}: target groups and the parameter group"
        );
        for (address, body) in replaced {
            assert!(
                body.get("name").is_none(),
                "{env}: {address} has a fixed name"
            );
            let prefix = body["name_prefix"]
                .as_str()
                .unwrap_or_else(|| panic!("{env}: {address} has no name_prefix"));
            if address.starts_with("aws_lb_target_group.") {
                assert!(
                    prefix.len() <= 6,
                    "{env}: {address}: AWS allows a 6-character prefix"
                );
            }
            assert_eq!(
                body["lifecycle"]["create_before_destroy"], true,
                "{env}: {address} is not created before it is destroyed"
            );
        }
    }
}
