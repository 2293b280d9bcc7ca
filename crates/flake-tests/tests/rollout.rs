//! deploy-aws's rollout check (nix/rollout.sh, included by nix/apps.nix),
//! run on its own with this machine's AWS CLI (the stand-in package set's
//! `awscli2`) against a loopback stand-in of ECS's JSON protocol whose
//! responses are checked against botocore's ECS model (`flake_tests::ecs`).
//! moto cannot stand in here: it never advances or rolls back a deployment.

use flake_tests::ecs::{DescribeServices, EcsStandIn, Model};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/staging";

fn task_definition(service: &str, revision: u32) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/staging-{service}:{revision}")
}

fn deployment(status: &str, task_definition: &str, rollout: &str, reason: &str) -> Value {
    json!({
        "id": format!("ecs-svc/{}", task_definition.len()),
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": 1,
        "pendingCount": 0,
        "runningCount": 1,
        "failedTasks": if rollout == "FAILED" { 3 } else { 0 },
        "createdAt": 1_764_547_200.0,
        "updatedAt": 1_764_547_500.5,
        "launchType": "FARGATE",
        "rolloutState": rollout,
        "rolloutStateReason": reason,
    })
}

/// One service of a DescribeServices response, with its deployments.
fn service(name: &str, deployments: Vec<Value>) -> Value {
    json!({
        "serviceArn": format!("arn:aws:ecs:us-east-1:123456789012:service/staging/{name}"),
        "serviceName": name,
        "clusterArn": CLUSTER,
        "status": "ACTIVE",
        "desiredCount": 1,
        "runningCount": 1,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "taskDefinition": deployments[0]["taskDefinition"],
        "deployments": deployments,
    })
}

/// A response with `deployments(name)` for every requested service.
fn describe(request: &DescribeServices, deployments: impl Fn(&str) -> Vec<Value>) -> Value {
    let services: Vec<Value> = request
        .services
        .iter()
        .map(|name| service(name, deployments(name)))
        .collect();
    json!({ "services": services, "failures": [] })
}

fn completed(name: &str) -> Vec<Value> {
    let new = task_definition(name, 2);
    vec![deployment(
        "PRIMARY",
        &new,
        "COMPLETED",
        "ECS deployment ecs-svc/2 completed.",
    )]
}

/// The AWS CLI of the stand-in package set, and jq, first on PATH.
fn tool_path(dir: &std::path::Path) -> String {
    let machine = flake_tests::machine::prepare(dir);
    let bin = |package: &str| -> PathBuf {
        machine
            .packages
            .get(package)
            .unwrap_or_else(|| panic!("{package} is missing here: {:?}", machine.missing))
            .join("bin")
    };
    format!(
        "{}:{}:{}",
        bin("awscli2").display(),
        bin("jq").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `confirm_rollouts` of nix/rollout.sh for `services` (expected on revision 2).
fn check(stand_in: &EcsStandIn, services: &[&str], timeout: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let expectations = dir.path().join("rollouts.txt");
    let lines: String = services
        .iter()
        .map(|s| format!("{CLUSTER} {s} {}\n", task_definition(s, 2)))
        .collect();
    std::fs::write(&expectations, lines).expect("write");
    let script = infra_tests::repo_root().join("nix/rollout.sh");
    let output = Command::new("bash")
        .args([
            "-c",
            r#"set -euo pipefail; source "$1"; confirm_rollouts "$2""#,
            "bash",
        ])
        .arg(&script)
        .arg(&expectations)
        .env("PATH", tool_path(dir.path()))
        .env("AWS_ENDPOINT_URL_ECS", &stand_in.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("ROLLOUT_TIMEOUT_SECONDS", timeout)
        .env("ROLLOUT_POLL_SECONDS", "1")
        .output()
        .expect("bash");
    println!(
        "confirm_rollouts exited {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn completed_rollouts_pass_in_batches_of_ten() {
    let stand_in = EcsStandIn::start(|_, request| describe(request, completed));
    let names: Vec<String> = (0..12).map(|i| format!("service-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let output = check(&stand_in, &names, "30");
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = stand_in.requests();
    assert!(
        requests.iter().all(|r| r.services.len() <= 10),
        "{requests:?}"
    );
    let asked: usize = requests.iter().map(|r| r.services.len()).sum();
    assert_eq!(asked, 12, "every service asked once: {requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.cluster.as_deref() == Some(CLUSTER))
    );
}

#[test]
fn an_in_progress_rollout_is_waited_for() {
    let stand_in = EcsStandIn::start(|call, request| {
        describe(request, |name| {
            if call < 2 {
                let new = task_definition(name, 2);
                vec![
                    deployment(
                        "PRIMARY",
                        &new,
                        "IN_PROGRESS",
                        "ECS deployment ecs-svc/2 in progress.",
                    ),
                    deployment(
                        "ACTIVE",
                        &task_definition(name, 1),
                        "COMPLETED",
                        "ECS deployment ecs-svc/1 completed.",
                    ),
                ]
            } else {
                completed(name)
            }
        })
    });
    let output = check(&stand_in, &["api", "web"], "60");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stand_in.requests().len(), 3, "polled until COMPLETED");
}

/// After the circuit breaker rolled back, the PRIMARY deployment is the
/// previous task definition, COMPLETED, alone: `aws ecs wait
/// services-stable` (the old deploy's last step) calls that stable.
#[test]
fn a_rolled_back_service_fails_the_check_where_services_stable_passed() {
    let rolled_back = |name: &str| {
        vec![deployment(
            "PRIMARY",
            &task_definition(name, 1),
            "COMPLETED",
            "ECS deployment ecs-svc/3 completed.",
        )]
    };
    let stand_in = EcsStandIn::start(move |_, request| {
        describe(request, |name| {
            if name == "api" {
                rolled_back(name)
            } else {
                completed(name)
            }
        })
    });
    let output = check(&stand_in, &["api", "web"], "30");
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("service api was rolled back")
            && message.contains(&task_definition("api", 1))
            && message.contains("rolloutState COMPLETED: ECS deployment ecs-svc/3 completed."),
        "{message}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let waiter = Command::new("aws")
        .args([
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            CLUSTER,
            "--services",
            "api",
            "web",
        ])
        .env("PATH", tool_path(dir.path()))
        .env("AWS_ENDPOINT_URL_ECS", &stand_in.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("aws");
    assert!(
        waiter.status.success(),
        "services-stable should accept the rollback: {}",
        stderr(&waiter)
    );
    stand_in.requests();
}

#[test]
fn a_failed_rollout_fails_with_its_reason() {
    let reason = "ECS deployment circuit breaker: tasks failed to start.";
    let stand_in = EcsStandIn::start(move |_, request| {
        describe(request, |name| {
            vec![deployment(
                "PRIMARY",
                &task_definition(name, 2),
                "FAILED",
                reason,
            )]
        })
    });
    let output = check(&stand_in, &["web"], "30");
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "service web failed to roll out: rolloutState FAILED: {reason}"
        )),
        "{message}"
    );
    stand_in.requests();
}

#[test]
fn a_rollout_that_does_not_finish_fails_at_the_deadline() {
    let stand_in = EcsStandIn::start(|_, request| {
        describe(request, |name| {
            vec![deployment(
                "PRIMARY",
                &task_definition(name, 2),
                "IN_PROGRESS",
                "ECS deployment ecs-svc/2 in progress.",
            )]
        })
    });
    let output = check(&stand_in, &["api"], "2");
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("service api did not finish its rollout in 2s (rolloutState IN_PROGRESS: ECS deployment ecs-svc/2 in progress.)"),
        "{message}"
    );
    stand_in.requests();
}

/// The stand-in's guard can fail: botocore's model rejects an invented
/// member, a wrong type and a rolloutState ECS does not have.
#[test]
fn botocores_model_rejects_what_ecs_does_not_send() {
    let model = Model::ecs();
    let good = describe(
        &DescribeServices {
            cluster: None,
            services: vec!["api".into()],
        },
        completed,
    );
    assert_eq!(
        model.violations("DescribeServices", &good),
        Vec::<String>::new()
    );
    let bad = json!({"services": [{
        "serviceName": "api",
        "runningCount": "1",
        "deployments": [{"status": "PRIMARY", "rolloutState": "ROLLED_BACK", "rolledBack": true}],
    }]});
    let violations = model.violations("DescribeServices", &bad);
    assert_eq!(violations.len(), 3, "{violations:#?}");
}
