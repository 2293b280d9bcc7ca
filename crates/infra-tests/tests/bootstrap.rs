//! The bootstrap configuration (`infra/bootstrap/main.tf.json`, from
//! `nix/bootstrap/`): terraform validate, an offline plan with fake
//! credentials, assertions over `terraform show -json` (state bucket, OIDC
//! trust, least privilege) and checkov with zero unexplained failures.

use infra_tests::{
    Plan, ServiceAuthorization, Workspace, canonical_json, checkov_plan, declared_skips,
    offline_provider, policy_statements, reference_condition_key, render, resource_matches_type,
    string_list as list,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const REPOSITORY: &str = "example-org/iac-experiment";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const OIDC: &str = "token.actions.githubusercontent.com";
const ENVIRONMENTS: [&str; 2] = ["production", "staging"];
/// The `Project` tag of every environment resource (nix/aws's `default_tags`).
const PROJECT: &str = "iac-experiment";

fn render_path() -> &'static str {
    "infra/bootstrap/main.tf.json"
}

struct Planned {
    workspace: Workspace,
    plan: Plan,
}

/// validate + plan + show -json, once for every test of this file.
fn planned() -> &'static Planned {
    static PLANNED: OnceLock<Planned> = OnceLock::new();
    PLANNED.get_or_init(|| {
        let workspace = Workspace::new(render_path(), offline_provider());
        // The fake credentials come from a file rather than the provider block,
        // which checkov reads from the plan (CKV_AWS_41, keys in a provider).
        let credentials = workspace.path().join("credentials");
        std::fs::write(
            &credentials,
            "[offline]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        )
        .unwrap();
        let mut provider = offline_provider();
        let settings = provider.as_object_mut().unwrap();
        settings.remove("access_key");
        settings.remove("secret_key");
        settings.insert("shared_credentials_files".into(), json!([credentials]));
        settings.insert("profile".into(), json!("offline"));
        workspace.write_json(
            "provider_override.tf.json",
            &json!({"provider": {"aws": provider}}),
        );
        workspace.init();
        workspace.validate();
        let plan = workspace.plan(&json!({
            "github_repository": REPOSITORY,
            "account_id": ACCOUNT,
            "region": REGION,
        }));
        Planned { workspace, plan }
    })
}

fn values(address: &str) -> Value {
    planned().plan.values(address)
}

/// A policy document attribute, which must be known at plan time.
fn statements_of(values: &Value, field: &str) -> Vec<Value> {
    assert!(
        values[field].is_string(),
        "{field} is known at plan time: {values}"
    );
    policy_statements(&values[field])
}

/// The permission statements a role gets: inline and attached policies.
fn role_statements(role: &str) -> Vec<Value> {
    let plan = &planned().plan;
    let role_ref = format!("aws_iam_role.{role}");
    let mut found = Vec::new();
    for resource in plan.resources().into_values() {
        if !plan
            .references(&resource.address, "role")
            .contains(&role_ref)
        {
            continue;
        }
        match resource.kind.as_str() {
            "aws_iam_role_policy" => found.extend(statements_of(&resource.values, "policy")),
            "aws_iam_role_policy_attachment" => {
                let policy = plan
                    .references(&resource.address, "policy_arn")
                    .into_iter()
                    .find(|r| r.starts_with("aws_iam_policy.") && r.matches('.').count() == 1)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} attaches a policy of this configuration",
                            resource.address
                        )
                    });
                found.extend(statements_of(&values(&policy), "policy"));
            }
            _ => {}
        }
    }
    assert!(!found.is_empty(), "role {role} has no permissions");
    found
}

#[test]
fn the_render_is_canonical_json() {
    let text = std::fs::read_to_string(infra_tests::repo_root().join(render_path())).unwrap();
    assert!(
        text == canonical_json(&render(render_path())),
        "infra/bootstrap/main.tf.json is not in `jq -S .` form: run scripts/render"
    );
}

#[test]
fn the_state_bucket_is_versioned_encrypted_private_and_tls_only() {
    let bucket = values("aws_s3_bucket.state");
    assert_eq!(
        bucket["bucket"],
        format!("iac-experiment-tfstate-{ACCOUNT}")
    );
    assert_eq!(bucket["force_destroy"], false);
    assert_eq!(
        values("aws_s3_bucket_versioning.state")["versioning_configuration"][0]["status"],
        "Enabled"
    );

    let sse = values("aws_s3_bucket_server_side_encryption_configuration.state");
    assert_eq!(
        sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"],
        "aws:kms"
    );

    let block = values("aws_s3_bucket_public_access_block.state");
    for field in [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ] {
        assert_eq!(block[field], true, "public access block: {field}");
    }
    assert_eq!(
        values("aws_s3_bucket_ownership_controls.state")["rule"][0]["object_ownership"],
        "BucketOwnerEnforced"
    );

    let arn = format!("arn:aws:s3:::iac-experiment-tfstate-{ACCOUNT}");
    let policy = statements_of(&values("aws_s3_bucket_policy.state"), "policy");
    let tls_only = policy.iter().any(|s| {
        s["Effect"] == "Deny"
            && s["Principal"] == "*"
            && list(&s["Action"]) == ["s3:*"]
            && BTreeSet::from_iter(list(&s["Resource"]))
                == BTreeSet::from([arn.clone(), format!("{arn}/*")])
            && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    });
    assert!(
        tls_only,
        "the bucket policy denies every request without TLS: {policy:?}"
    );
    assert!(
        policy.iter().all(|s| s["Effect"] == "Deny"),
        "the bucket policy grants nothing"
    );

    // Native S3 lock files: no DynamoDB lock table.
    assert!(
        planned()
            .plan
            .resources()
            .values()
            .all(|r| !r.kind.starts_with("aws_dynamodb"))
    );
    // The state is kept (prevent_destroy).
    assert_eq!(
        render(render_path())["resource"]["aws_s3_bucket"]["state"]["lifecycle"]["prevent_destroy"],
        true
    );
}

fn trust(role: &str) -> Value {
    let statements = statements_of(
        &values(&format!("aws_iam_role.{role}")),
        "assume_role_policy",
    );
    assert_eq!(statements.len(), 1, "{role}: one trust statement");
    statements[0].clone()
}

fn assert_github_trust(role: &str, subjects: &[String]) {
    let statement = trust(role);
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        statement["Principal"],
        json!({"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC}")})
    );
    let condition = statement["Condition"].as_object().unwrap();
    assert_eq!(
        condition.keys().collect::<Vec<_>>(),
        ["StringEquals"],
        "{role}: exact matches only (no StringLike wildcards)"
    );
    let equals = &condition["StringEquals"];
    assert_eq!(
        equals.as_object().unwrap().len(),
        2,
        "{role}: aud and sub only"
    );
    assert_eq!(list(&equals[format!("{OIDC}:aud")]), ["sts.amazonaws.com"]);
    let actual: BTreeSet<String> = list(&equals[format!("{OIDC}:sub")]).into_iter().collect();
    let expected: BTreeSet<String> = subjects.iter().cloned().collect();
    assert_eq!(actual, expected, "{role}: trusted subjects");
    assert!(actual.iter().all(|s| !s.contains('*')));
}

#[test]
fn github_oidc_provider() {
    let provider = values("aws_iam_openid_connect_provider.github");
    assert_eq!(provider["url"], format!("https://{OIDC}"));
    assert_eq!(list(&provider["client_id_list"]), ["sts.amazonaws.com"]);
}

#[test]
fn the_deploy_role_trusts_exactly_the_two_environments() {
    let subjects: Vec<String> = ENVIRONMENTS
        .iter()
        .map(|env| format!("repo:{REPOSITORY}:environment:{env}"))
        .collect();
    assert_github_trust("deploy", &subjects);
}

/// The deploy jobs run up to 120 minutes (deploy.yml's timeout-minutes) on
/// one session, which the role must allow (AWS's default is 3,600 s); the
/// pull requests' plan role keeps the default.
#[test]
fn sessions_last_as_long_as_the_jobs_of_each_role() {
    assert_eq!(values("aws_iam_role.deploy")["max_session_duration"], 7200);
    assert_eq!(values("aws_iam_role.plan")["max_session_duration"], 3600);
}

#[test]
fn the_plan_role_trusts_pull_requests() {
    assert_github_trust("plan", &[format!("repo:{REPOSITORY}:pull_request")]);
}

/// Every policy document of the configuration, with its address.
fn all_policies() -> Vec<(String, Vec<Value>)> {
    planned()
        .plan
        .resources()
        .into_values()
        .filter(|r| {
            matches!(
                r.kind.as_str(),
                "aws_iam_policy" | "aws_iam_role_policy" | "aws_s3_bucket_policy"
            )
        })
        .map(|r| (r.address, statements_of(&r.values, "policy")))
        .collect()
}

#[test]
fn no_statement_allows_everything() {
    for (address, policy) in all_policies() {
        for statement in policy.iter().filter(|s| s["Effect"] == "Allow") {
            let actions = list(&statement["Action"]);
            let resources = list(&statement["Resource"]);
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
            for action in &actions {
                assert!(
                    action != "*" && !action.ends_with(":*"),
                    "{address}: `{action}` grants a whole service"
                );
            }
            if resources.iter().any(|r| r == "*") {
                assert_eq!(
                    statement["Condition"]["StringEquals"]["aws:RequestedRegion"], REGION,
                    "{address}: {statement}: `*` resources only with a region condition"
                );
                assert!(
                    actions.iter().all(|a| !a.starts_with("iam:")),
                    "{address}: IAM on `*`"
                );
            }
            for resource in &resources {
                assert!(
                    resource == "*"
                        || resource.contains(ACCOUNT)
                        || resource.starts_with("arn:aws:s3:::")
                        || resource.starts_with("arn:aws:route53:::"),
                    "{address}: `{resource}` is outside this account"
                );
            }
        }
    }
}

#[test]
fn the_deploy_role_changes_iam_only_under_the_environment_prefixes() {
    let prefixed = |kind: &str| -> BTreeSet<String> {
        ENVIRONMENTS
            .iter()
            .map(|env| format!("arn:aws:iam::{ACCOUNT}:{kind}/{env}-*"))
            .collect()
    };
    for statement in role_statements("deploy") {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions = list(&statement["Action"]);
        let resources: BTreeSet<String> = list(&statement["Resource"]).into_iter().collect();
        let writes_iam = actions.iter().any(|a| {
            a.starts_with("iam:")
                && !["Get", "List"]
                    .iter()
                    .any(|read| a.starts_with(&format!("iam:{read}")))
        });
        if !writes_iam {
            continue;
        }
        if actions == ["iam:CreateServiceLinkedRole"] {
            assert_eq!(
                resources,
                BTreeSet::from([format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/*")])
            );
            assert!(statement["Condition"]["StringEquals"]["iam:AWSServiceName"].is_array());
            continue;
        }
        assert!(
            resources == prefixed("role") || resources == prefixed("policy"),
            "IAM changes only on environment roles/policies: {statement}"
        );
        if actions.contains(&"iam:PassRole".to_owned()) {
            assert_eq!(actions, ["iam:PassRole"]);
            let services = list(&statement["Condition"]["StringEquals"]["iam:PassedToService"]);
            assert!(services.contains(&"ecs-tasks.amazonaws.com".to_owned()));
            assert!(services.contains(&"lambda.amazonaws.com".to_owned()));
        }
        if actions.contains(&"iam:AttachRolePolicy".to_owned()) {
            let attachable = list(&statement["Condition"]["ArnLike"]["iam:PolicyARN"]);
            assert!(
                attachable
                    .iter()
                    .all(|arn| !arn.contains("AdministratorAccess") && !arn.ends_with(":policy/*")),
                "attachable policies: {attachable:?}"
            );
        }
    }
    let passes = role_statements("deploy")
        .into_iter()
        .filter(|s| list(&s["Action"]).contains(&"iam:PassRole".to_owned()))
        .count();
    assert_eq!(passes, 1, "one iam:PassRole statement");
}

const BOUNDARY_NAME: &str = "iac-experiment-environment-boundary";

fn boundary_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/{BOUNDARY_NAME}")
}

/// Whether the IAM ARN pattern `pattern` (`*` and `?` wildcards) matches `arn`.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), arn.as_bytes())
}

/// The deploy role writes policies on roles, so it could make any role an
/// administrator: it may create and change roles only with the environment
/// boundary, never remove or replace that boundary, and never change it.
#[test]
fn the_deploy_role_writes_roles_only_with_the_environment_boundary() {
    let boundary = boundary_arn();
    let statements = role_statements("deploy");
    let role_writes = [
        "iam:AttachRolePolicy",
        "iam:CreateRole",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
    ];
    let mut allowed = BTreeSet::new();
    for statement in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let actions = list(&statement["Action"]);
        for action in actions.iter().filter(|a| role_writes.contains(&a.as_str())) {
            assert_eq!(
                statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"], boundary,
                "{action} without the environment boundary: {statement}"
            );
            allowed.insert(action.clone());
        }
        assert!(
            !actions
                .iter()
                .any(|a| a == "iam:DeleteRolePermissionsBoundary"
                    || a.ends_with('*') && a.starts_with("iam:")),
            "removes boundaries: {statement}"
        );
        // No IAM write on the boundary policy itself (reading it is fine).
        let writes_iam = actions.iter().any(|a| {
            a.starts_with("iam:") && !a.starts_with("iam:Get") && !a.starts_with("iam:List")
        });
        if writes_iam {
            for resource in list(&statement["Resource"]) {
                assert!(
                    !arn_matches(&resource, &boundary),
                    "{resource} covers the boundary: {statement}"
                );
            }
        }
    }
    assert_eq!(
        allowed,
        role_writes.iter().map(|a| (*a).to_owned()).collect(),
        "the environments need every role write, with the boundary"
    );

    let denies = |action: &str, resource: &str| -> Vec<&Value> {
        statements
            .iter()
            .filter(|s| {
                s["Effect"] == "Deny"
                    && list(&s["Action"]).iter().any(|a| a == action)
                    && list(&s["Resource"])
                        .iter()
                        .any(|r| arn_matches(r, resource))
            })
            .collect()
    };
    let some_role = format!("arn:aws:iam::{ACCOUNT}:role/staging-api-execution");
    assert!(
        denies("iam:DeleteRolePermissionsBoundary", &some_role)
            .iter()
            .any(|s| s.get("Condition").is_none()),
        "removing a role's boundary is denied"
    );
    assert!(
        denies("iam:PutRolePermissionsBoundary", &some_role)
            .iter()
            .any(|s| s["Condition"]
                == json!({"StringNotEquals": {"iam:PermissionsBoundary": boundary}})),
        "any other boundary is denied"
    );
    for action in [
        "iam:CreatePolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
    ] {
        assert!(
            denies(action, &boundary)
                .iter()
                .any(|s| s.get("Condition").is_none()),
            "{action} on the boundary is denied"
        );
    }
}

/// The boundary allows what the environments' roles use at runtime (their
/// inline policies and the AWS-managed policy the migration function has) and
/// nothing in IAM.
#[test]
fn the_environment_boundary_covers_the_workloads_and_nothing_in_iam() {
    let policy = values("aws_iam_policy.environment_boundary");
    assert_eq!(policy["name"], BOUNDARY_NAME);
    let statements = statements_of(&policy, "policy");
    let mut bounded = BTreeSet::new();
    for statement in &statements {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        for action in list(&statement["Action"]) {
            assert!(
                !action.starts_with("iam:") && !action.contains('*') && !action.starts_with("sts:"),
                "the boundary allows {action}"
            );
            bounded.insert(action);
        }
    }
    // AWSLambdaVPCAccessExecutionRole, attached to the migration function.
    let mut used: BTreeSet<String> = [
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for env in ENVIRONMENTS {
        let environment = render(&format!("infra/{env}/main.tf.json"));
        let inline = environment["resource"]["aws_iam_role_policy"]
            .as_object()
            .expect("environment roles have inline policies");
        for body in inline.values() {
            for statement in policy_statements(&body["policy"]) {
                used.extend(list(&statement["Action"]));
            }
        }
    }
    let missing: Vec<&String> = used.difference(&bounded).collect();
    assert!(
        missing.is_empty(),
        "the boundary lacks actions the environment roles use: {missing:?}"
    );
}

#[test]
fn the_deploy_role_may_write_the_state_of_both_environments() {
    let bucket = format!("arn:aws:s3:::iac-experiment-tfstate-{ACCOUNT}");
    let statements = role_statements("deploy");
    for env in ENVIRONMENTS {
        let key = format!("{bucket}/{env}/*");
        assert!(
            statements
                .iter()
                .any(|s| list(&s["Resource"]).contains(&key)
                    && list(&s["Action"]).contains(&"s3:PutObject".to_owned()))
        );
    }
}

/// The plan role (pull requests) writes nothing, not even the state lock
/// file: a pull request could otherwise hold the lock and stall deploys.
#[test]
fn the_plan_role_only_reads() {
    for statement in role_statements("plan") {
        assert_eq!(statement["Effect"], "Allow");
        for action in list(&statement["Action"]) {
            let verb = action.split_once(':').unwrap().1;
            assert!(
                ["Describe", "Get", "List"]
                    .iter()
                    .any(|read| verb.starts_with(read)),
                "plan role may `{action}`: {statement}"
            );
            assert!(action != "secretsmanager:GetSecretValue" && action != "s3:GetObject*");
        }
    }
}

#[test]
fn outputs_name_the_repository_settings() {
    let outputs = planned().plan.json["configuration"]["root_module"]["outputs"]
        .as_object()
        .expect("outputs");
    for name in ["deploy_role_arn", "plan_role_arn", "state_bucket", "region"] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    for variable in ["github_repository", "account_id", "region"] {
        assert!(
            render(render_path())["variable"].get(variable).is_some(),
            "variable {variable}"
        );
    }
}

/// checkov over the plan: every failure must be a skip written next to its
/// resource (`"//": ["checkov:skip=ID:reason"]`) with a reason, and every
/// written skip must still be needed.
#[test]
fn checkov_finds_nothing_unexplained() {
    let failed: BTreeSet<(String, String)> = checkov_plan(&planned().workspace.plan_file())
        .into_iter()
        .map(|f| (f.resource, f.check))
        .collect();
    let mut skips = BTreeSet::new();
    for skip in declared_skips(&render(render_path())) {
        assert!(
            skip.reason.len() >= 20,
            "{}: skip {} needs a written reason",
            skip.resource,
            skip.check
        );
        skips.insert((skip.resource, skip.check));
    }
    let unexplained: Vec<_> = failed.difference(&skips).collect();
    assert!(
        unexplained.is_empty(),
        "checkov failures without a written skip: {unexplained:?}"
    );
    let stale: Vec<_> = skips.difference(&failed).collect();
    assert!(stale.is_empty(), "skips no longer needed: {stale:?}");
}

/// Every IAM policy of the bootstrap (not the bucket policy), with its address.
fn iam_policies() -> Vec<(String, Vec<Value>)> {
    all_policies()
        .into_iter()
        .filter(|(address, _)| !address.starts_with("aws_s3_bucket_policy."))
        .collect()
}

/// Condition keys every request carries, whatever the action.
const GLOBAL_CONDITION_KEYS: [&str; 1] = ["aws:RequestedRegion"];

/// Every action named exists, and every condition key a statement puts on an
/// action is one the action supports for the statement's resources, per the
/// Service Authorization Reference (`service-authorization.json`): a key an
/// action does not support is absent from its request, and the statement
/// silently never applies (or a Deny never denies).
#[test]
fn every_action_exists_and_every_condition_key_applies_to_it() {
    let reference = ServiceAuthorization::load();
    let regenerate =
        "regenerate crates/infra-tests/service-authorization.json (see service_authorization.py)";
    for (address, policy) in iam_policies() {
        for statement in &policy {
            let sid = statement["Sid"].as_str().unwrap_or("?");
            let keys: Vec<String> = statement["Condition"]
                .as_object()
                .into_iter()
                .flat_map(|operators| operators.values())
                .flat_map(|operands| operands.as_object().unwrap().keys().cloned())
                .collect();
            for action in list(&statement["Action"]) {
                if action.contains('*') {
                    assert!(
                        reference.wildcards.get(&action).is_some_and(|&n| n > 0),
                        "{address} {sid}: `{action}` matches no action ({regenerate})"
                    );
                    continue;
                }
                let Some(authorization) = reference.actions.get(&action) else {
                    panic!("{address} {sid}: `{action}` is not an AWS action ({regenerate})");
                };
                // The resources this action can be authorized on; the others
                // of a statement shared by several actions do not concern it.
                let relevant: Vec<String> = list(&statement["Resource"])
                    .into_iter()
                    .filter(|r| {
                        r == "*"
                            || authorization
                                .resource_types
                                .values()
                                .any(|kind| resource_matches_type(r, &kind.arn))
                    })
                    .collect();
                assert!(
                    !relevant.is_empty(),
                    "{address} {sid}: `{action}` is granted on nothing it is authorized on"
                );
                for resource in relevant {
                    let supported = authorization.condition_keys_for(&resource);
                    for key in &keys {
                        let key = reference_condition_key(key);
                        assert!(
                            GLOBAL_CONDITION_KEYS.contains(&key.as_str())
                                || supported.contains(key.as_str()),
                            "{address} {sid}: `{action}` on {resource} ignores the condition key \
                             {key} (it supports {supported:?})"
                        );
                    }
                }
            }
        }
    }
}

/// Every action the deploy role is allowed is granted on each resource type
/// AWS authorizes it on in every request (or on `*` when it has none):
/// otherwise the deploy fails with AccessDenied however the rest is scoped.
#[test]
fn every_deploy_action_is_granted_on_every_resource_type_it_requires() {
    let reference = ServiceAuthorization::load();
    let statements: Vec<Value> = role_statements("deploy")
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    let actions: BTreeSet<String> = statements
        .iter()
        .flat_map(|s| list(&s["Action"]))
        .filter(|a| !a.contains('*'))
        .collect();
    for action in actions {
        let granted: Vec<String> = statements
            .iter()
            .filter(|s| list(&s["Action"]).contains(&action))
            .flat_map(|s| list(&s["Resource"]))
            .collect();
        let authorization = &reference.actions[&action];
        if authorization.resource_types.is_empty() {
            assert!(
                granted.iter().any(|r| r == "*"),
                "{action} has no resource type: it must be allowed on `*`"
            );
        }
        for (kind, resource_type) in &authorization.resource_types {
            if resource_type.required {
                assert!(
                    granted
                        .iter()
                        .any(|r| resource_matches_type(r, &resource_type.arn)),
                    "{action} needs its {kind} resource ({}) granted; it has {granted:?}",
                    resource_type.arn
                );
            }
        }
    }
}

/// Why an action may be allowed on `*`, or without a `Project` tag condition
/// on resources not named after an environment. Anything else the deploy role
/// may do outside IAM is scoped to this project.
const UNSCOPED: &[(&str, &str)] = &[
    (
        "ecr:GetAuthorizationToken",
        "registry login, authorized on no resource; pushes are scoped to the repositories",
    ),
    (
        "ecs:DeregisterTaskDefinition",
        "no resource type in IAM; a running task keeps its revision",
    ),
    (
        "sns:Unsubscribe",
        "a subscription has no resource type in IAM",
    ),
    (
        "servicediscovery:CreateHttpNamespace",
        "no resource type in IAM; the request must carry the Project tag",
    ),
    (
        "servicediscovery:TagResource",
        "no resource type in IAM; the request must carry the Project tag",
    ),
    (
        "acm:RequestCertificate",
        "no resource type in IAM; the request must carry the Project tag",
    ),
    (
        "kms:CreateKey",
        "a key has no ARN before it exists; the request must carry the Project tag",
    ),
    (
        "kms:TagResource",
        "tags a key being created; the request must carry the Project tag",
    ),
    (
        "ec2:DeleteNetworkInterface",
        "Lambda creates its network interfaces untagged; only an unused one can be deleted",
    ),
    (
        "servicediscovery:CreateService",
        "Service Connect's Cloud Map services; the namespace, also required, must carry the Project tag",
    ),
    (
        "route53:ChangeResourceRecordSets",
        "the operator's hosted zone: Route 53 has no tag conditions; A and CNAME records only",
    ),
    ("route53:GetChange", "a change id has no owner or tags"),
    (
        "kms:CreateGrant",
        "ECR's grant on its AWS managed key (untagged) for a new repository, only via ECR (kms:ViaService)",
    ),
    (
        "kms:RetireGrant",
        "retires ECR's grant on its AWS managed key when a repository is deleted, only via ECR (kms:ViaService)",
    ),
    (
        "secretsmanager:CreateSecret",
        "RDS creates its master secret (rds!…) with the caller's permissions and its own tags",
    ),
    (
        "secretsmanager:DeleteSecret",
        "RDS deletes its master secret (rds!…) with the caller's permissions",
    ),
    (
        "secretsmanager:RotateSecret",
        "RDS rotates its master secret (rds!…) with the caller's permissions",
    ),
    (
        "secretsmanager:TagResource",
        "RDS tags its master secret (rds!…) with its own tags",
    ),
];

/// The read policy (both roles): metadata `terraform plan` refreshes. It
/// names no secret value, log event or image layer (read-policy.nix).
const READ_REASON: &str =
    "read-only metadata that terraform refreshes; most Describe/List calls have no resource type";

/// Whether a resource pattern names only this project's resources by name:
/// the state bucket, or a name under an environment's prefix.
fn named_for_the_project(resource: &str) -> bool {
    resource.contains(PROJECT)
        || ENVIRONMENTS.iter().any(|env| {
            [":", "/"].iter().any(|before| {
                ["-", "/"]
                    .iter()
                    .any(|after| resource.contains(&format!("{before}{env}{after}")))
                    || resource.ends_with(&format!("{before}{env}"))
            })
        })
}

/// A statement that requires the Project tag, or that only tags a resource in
/// the call creating it (which itself requires the Project tag).
fn requires_the_project_tag(statement: &Value) -> bool {
    let equals = &statement["Condition"]["StringEquals"];
    let tagged = ["aws:RequestTag/Project", "aws:ResourceTag/Project"]
        .iter()
        .any(|key| equals.get(*key).is_some());
    if tagged {
        for key in ["aws:RequestTag/Project", "aws:ResourceTag/Project"] {
            if let Some(value) = equals.get(key) {
                assert_eq!(value, PROJECT, "{statement}");
            }
        }
    }
    let on_create = equals
        .as_object()
        .is_some_and(|keys| keys.keys().any(|k| k.ends_with(":CreateAction")));
    tagged || on_create
}

/// Outside IAM, every deploy-role statement is scoped to this project: by an
/// environment's or the project's name, or by the Project tag on the resource
/// (or in the request that creates it). `*` and unscoped resources only for
/// the actions in [`UNSCOPED`], or reads, each with its reason.
#[test]
fn deploy_role_statements_outside_iam_are_scoped_to_the_project() {
    let reads: BTreeSet<String> = policy_statements(&values("aws_iam_policy.read")["policy"])
        .iter()
        .flat_map(|s| list(&s["Action"]))
        .filter(|a| !a.starts_with("iam:"))
        .collect();
    let mut used = BTreeSet::new();
    for statement in role_statements("deploy") {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions = list(&statement["Action"]);
        if actions.iter().all(|a| a.starts_with("iam:")) {
            continue;
        }
        let resources = list(&statement["Resource"]);
        let star = resources.iter().any(|r| r == "*");
        let scoped = !star
            && (requires_the_project_tag(&statement)
                || resources.iter().all(|r| named_for_the_project(r)));
        if scoped {
            continue;
        }
        for action in &actions {
            let reason = UNSCOPED
                .iter()
                .find(|(a, _)| a == action)
                .map(|(_, reason)| *reason)
                .or_else(|| reads.contains(action).then_some(READ_REASON));
            assert!(
                reason.is_some_and(|r| r.len() >= 20),
                "{action} is allowed on {resources:?} without the Project tag or a project \
                 name, and is not in the allow-list with a reason: {statement}"
            );
            used.insert(action.clone());
        }
    }
    let stale: Vec<&str> = UNSCOPED
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| !used.contains(*a))
        .collect();
    assert!(
        stale.is_empty(),
        "allow-list entries no longer needed: {stale:?}"
    );
}

/// The printed `github_settings` commands, run with Terraform's
/// interpolations filled in and a stand-in `gh` on PATH that answers
/// `gh api user` and records every other call with its JSON input: what
/// each environment is created with.
fn environments_created_by_the_printed_setup() -> BTreeMap<String, Value> {
    let mut script = render(render_path())["output"]["github_settings"]["value"]
        .as_str()
        .expect("output github_settings")
        .to_owned();
    while let Some(start) = script.find("${") {
        let end = start + script[start..].find('}').expect("a closed interpolation");
        script.replace_range(start..=end, "example");
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gh.log");
    let gh = dir.path().join("gh");
    std::fs::write(
        &gh,
        "#!/bin/sh\n\
         if [ \"$1 $2\" = 'api user' ]; then echo 4242; exit 0; fi\n\
         printf 'CALL %s\\n' \"$*\" >> \"$GH_LOG\"\n\
         case \" $* \" in *' --input - '*) cat >> \"$GH_LOG\"; printf '\\n' >> \"$GH_LOG\";; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .env("GH_LOG", &log)
        .status()
        .expect("run bash");
    assert!(status.success(), "the printed setup failed:\n{script}");

    let calls = std::fs::read_to_string(&log).unwrap();
    let mut created = BTreeMap::new();
    let mut lines = calls.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(call) = line.strip_prefix("CALL api --method PUT repos/example/environments/")
        else {
            continue;
        };
        let (env, input) = match call.split_once(' ') {
            Some((env, "--input -")) => {
                let body = lines.next().expect("the JSON input");
                (env, serde_json::from_str(body).expect("the input is JSON"))
            }
            _ => (call, json!({})),
        };
        created.insert(env.to_owned(), input);
    }
    created
}

/// Production waits for a required reviewer (whoever runs the setup); staging
/// deploys without one. Both deploy from main only.
#[test]
fn the_printed_setup_gates_production_behind_a_reviewer() {
    let created = environments_created_by_the_printed_setup();
    assert_eq!(
        created.keys().map(String::as_str).collect::<Vec<_>>(),
        ["northflank-plan", "production", "staging"]
    );
    assert_eq!(
        created["production"]["reviewers"],
        json!([{"type": "User", "id": 4242}]),
        "production needs a required reviewer: {}",
        created["production"]
    );
    assert_eq!(created["staging"]["reviewers"], json!([]));
    for env in ENVIRONMENTS {
        assert_eq!(
            created[env]["deployment_branch_policy"],
            json!({"protected_branches": false, "custom_branch_policies": true}),
            "{env}: custom branch policies (main only)"
        );
    }
}

/// Deleting a KMS-encrypted ECR repository retires the grant ECR holds on its
/// AWS managed key (aws/ecr), which carries no Project tag: the deploy role
/// may retire it through ECR, or a staging destroy fails.
#[test]
fn the_deploy_role_can_delete_encrypted_repositories() {
    let statements: Vec<Value> = role_statements("deploy")
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert!(
        statements
            .iter()
            .any(|s| list(&s["Action"]).contains(&"ecr:DeleteRepository".to_owned()))
    );
    let retire = statements
        .iter()
        .find(|s| {
            list(&s["Action"]).contains(&"kms:RetireGrant".to_owned())
                && s["Condition"]["StringEquals"]
                    .get("aws:ResourceTag/Project")
                    .is_none()
        })
        .expect("kms:RetireGrant on ECR's untagged AWS managed key");
    assert_eq!(
        retire["Condition"]["StringEquals"]["kms:ViaService"],
        format!("ecr.{REGION}.amazonaws.com"),
        "only ECR retires grants on the caller's behalf: {retire}"
    );
}
