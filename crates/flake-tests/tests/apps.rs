//! The apps (`nix run .#<app>`), built by the stand-in from nix/apps.nix and
//! run end to end against emulators on loopback: moto (infra-tests'
//! `moto_server.py`) for AWS, and a local OCI registry standing in for ECR.
//! AWS_ENDPOINT_URL sends the AWS CLI, the Terraform AWS provider and the S3
//! backend to moto; the app scripts themselves are unchanged.
//!
//! moto stores what it is told and runs nothing (see crates/infra-tests
//! README): this proves the scripts' order, arguments, state handling and
//! exit codes, not that the services start on AWS.

use flake_tests::harness;
use flake_tests::registry::{Registry, throwaway_certificate};
use infra_tests::{FAKE_ACCOUNT, Moto};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const REGION: &str = "us-east-1";

/// The environment an operator gives the apps, pointed at the emulators.
fn aws_env<'a>(command: &'a mut Command, moto: &Moto, work: &Path) -> &'a mut Command {
    command
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_CA_BUNDLE", work.join("cert.pem"))
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("HOME", work.join("home"))
        .env("TMPDIR", work.join("tmp"))
        .env("BOOTSTRAP_DIR", work.join("bootstrap"))
        .env("GITHUB_REPOSITORY", "example/iac-experiment")
        .env("ALERT_EMAIL", "alerts@example.com")
        .env("TF_IN_AUTOMATION", "1")
        .env("NO_COLOR", "1")
        // moto reports a new service's deployment COMPLETED at once (see
        // infra-tests' Moto); fail fast should it ever not.
        .env("ROLLOUT_TIMEOUT_SECONDS", "60")
        .env("ROLLOUT_POLL_SECONDS", "2")
}

fn show(name: &str, output: &Output) -> String {
    format!(
        "{name} exited {}:\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeed(name: &str, command: &mut Command) -> String {
    succeed_answering(name, command, "")
}

/// Runs `command` with `answer` on standard input (an operator's replies).
fn succeed_answering(name: &str, command: &mut Command, answer: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.as_bytes())
        .expect("write the answer");
    let output = child.wait_with_output().expect("wait");
    let shown = show(name, &output);
    println!("{shown}");
    assert!(output.status.success(), "{shown}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `terraform output -raw NAME` of the bootstrap's local state.
fn bootstrap_output(work: &Path, name: &str) -> String {
    let output = Command::new("terraform")
        .arg(format!("-chdir={}", work.join("bootstrap").display()))
        .args(["output", "-raw", name])
        .output()
        .expect("terraform");
    assert!(
        output.status.success(),
        "{}",
        show("terraform output", &output)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Destroys staging from the state the apps left in the state bucket.
fn destroy_staging(moto: &Moto, work: &Path, bucket: &str) {
    let harness = harness::get();
    let terraform =
        harness.machine.packages[flake_tests::machine::TERRAFORM_PACKAGE].join("bin/terraform");
    let dir = work.join("destroy");
    std::fs::create_dir_all(&dir).expect("destroy dir");
    std::fs::copy(
        infra_tests::repo_root().join("infra/staging/main.tf.json"),
        dir.join("main.tf.json"),
    )
    .expect("copy");
    let vars = infra_tests::environment_vars(&dir);
    std::fs::write(dir.join("destroy.auto.tfvars.json"), vars.to_string()).expect("vars");
    let chdir = format!("-chdir={}", dir.display());
    succeed(
        "terraform init",
        aws_env(
            Command::new(&terraform).args([
                &chdir,
                "init",
                "-input=false",
                &format!("-backend-config=bucket={bucket}"),
            ]),
            moto,
            work,
        ),
    );
    succeed(
        "terraform destroy",
        aws_env(
            Command::new(&terraform).args([&chdir, "destroy", "-input=false", "-auto-approve"]),
            moto,
            work,
        ),
    );
}

/// Resource types whose attributes moto 5.2 does not keep, so a plan right
/// after an apply updates them in place: security group rule descriptions,
/// ECS services' managed tags, grace period and AZ rebalancing, RDS
/// Performance Insights, parameter group parameters, Lambda logging config.
const MOTO_DOES_NOT_STORE: &[&str] = &[
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
    "aws_ecs_service",
    "aws_db_instance",
    "aws_db_parameter_group",
    "aws_lambda_function",
];

/// Terraform's output without its ANSI colours (the apps do not pass -no-color).
fn without_colors(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The types of `# <type>.<name> will be updated in-place` in a plan's text.
fn updated_resource_types(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("# ")?
                .strip_suffix(" will be updated in-place")
        })
        .filter_map(|address| address.split('.').next().map(str::to_owned))
        .collect()
}

/// The apps remove their temporary directories (plans, variables, archives).
fn assert_no_temporary_files(work: &Path) {
    let left: Vec<_> = std::fs::read_dir(work.join("tmp"))
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the apps left temporary files: {left:?}");
}

fn image_manifest() -> serde_json::Map<String, serde_json::Value> {
    let built = &harness::get().summary.image_manifest;
    harness::realise(&built.drv_paths).expect("build the image manifest");
    let text = std::fs::read_to_string(&built.path).expect("image manifest");
    serde_json::from_str(&text).expect("the manifest is a JSON object")
}

#[test]
fn bootstrap_deploy_plan_migrate_push_and_destroy_staging_on_moto() {
    let harness = harness::get();
    let work = tempfile::Builder::new()
        .prefix("flake-tests-apps-")
        .tempdir()
        .expect("tempdir");
    let work = work.path();
    // TLS: the state bucket's policy denies plain HTTP, and moto enforces it.
    throwaway_certificate(work, "IP:127.0.0.1");
    let moto = Moto::start_tls(&work.join("cert.pem"), &work.join("key.pem"));
    let registry = Registry::start(&format!("{FAKE_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"));
    std::fs::create_dir_all(work.join("home")).expect("home");
    std::fs::create_dir_all(work.join("tmp")).expect("tmp");

    // 1. The state bucket and CI roles, with local state; the operator
    //    approves the plan (bootstrap-aws asks, it is run by hand once).
    succeed_answering(
        "bootstrap-aws",
        aws_env(&mut Command::new(harness.app("bootstrap-aws")), &moto, work),
        "yes\n",
    );
    let bucket = bootstrap_output(work, "state_bucket");

    // 1b. Run again after a flake update moved the provider: the kept
    //     .terraform.lock.hcl names a version the new mirror lacks, and
    //     bootstrap-aws's `init -upgrade` selects the one there is.
    let lock = work.join("bootstrap/.terraform.lock.hcl");
    let text = std::fs::read_to_string(&lock).expect("the bootstrap keeps its lock file");
    std::fs::write(
        &lock,
        text.replace("version     = \"5.100.0\"", "version     = \"5.99.0\""),
    )
    .expect("write");
    assert!(
        std::fs::read_to_string(&lock)
            .expect("lock")
            .contains("5.99.0"),
        "the lock file's format changed:\n{text}"
    );
    succeed_answering(
        "bootstrap-aws (again, stale lock file)",
        aws_env(&mut Command::new(harness.app("bootstrap-aws")), &moto, work),
        "yes\n",
    );

    // 1c. push-images alone on a fresh environment says what creates the repositories.
    let fresh = aws_env(
        registry.command(&harness.app("push-images")).arg("staging"),
        &moto,
        work,
    )
    .output()
    .expect("push-images");
    assert_eq!(
        fresh.status.code(),
        Some(1),
        "{}",
        show("push-images (fresh)", &fresh)
    );
    assert!(
        String::from_utf8_lossy(&fresh.stderr)
            .contains("does not exist: nix run .#deploy-aws -- staging creates it"),
        "{}",
        show("push-images (fresh)", &fresh)
    );

    // 2. ECR repositories, the images to the registry, terraform apply (S3 backend in moto).
    let deploy = harness.app("deploy-aws");
    let deployed = succeed(
        "deploy-aws staging",
        aws_env(registry.command(&deploy).arg("staging"), &moto, work)
            .env("TF_STATE_BUCKET", &bucket),
    );
    // The rollout check read the services and task definitions from the
    // state (nix/rollout.sh; tests/rollout.rs drives its failures).
    for service in ["api", "web"] {
        assert!(
            deployed.contains(&format!("rolled out: {service} (arn:aws:ecs:")),
            "deploy-aws did not confirm {service}'s rollout:\n{deployed}"
        );
    }
    assert_no_temporary_files(work);
    for (name, tag) in image_manifest() {
        let tags = registry.tags(&format!("staging/{name}"));
        assert!(
            tags.contains(&tag.as_str().expect("tag").to_owned()),
            "staging/{name}:{tag} was not pushed (tags: {tags:?})"
        );
    }
    succeed(
        "aws s3api head-object (the state in the bucket)",
        aws_env(
            Command::new("aws").args([
                "s3api",
                "head-object",
                "--bucket",
                &bucket,
                "--key",
                "staging/terraform.tfstate",
            ]),
            &moto,
            work,
        ),
    );

    // 3. Right after the deploy, the plan creates and destroys nothing. On AWS
    //    it answers 0 (no changes); moto does not store some attributes, so
    //    their resources show as in-place updates (exit 2), and only those.
    let plan = aws_env(&mut Command::new(harness.app("plan-aws")), &moto, work)
        .arg("staging")
        .env("TF_STATE_BUCKET", &bucket)
        .output()
        .expect("plan-aws");
    let shown = show("plan-aws", &plan);
    println!("{shown}");
    assert!(
        matches!(plan.status.code(), Some(0 | 2)),
        "plan-aws failed\n{shown}"
    );
    let text = without_colors(&String::from_utf8_lossy(&plan.stdout));
    if plan.status.code() == Some(2) {
        assert!(
            text.contains("Plan: 0 to add, ") && text.contains(" to change, 0 to destroy."),
            "{shown}"
        );
        let updated = updated_resource_types(&text);
        let unexpected: Vec<&String> = updated
            .iter()
            .filter(|t| !MOTO_DOES_NOT_STORE.contains(&t.as_str()))
            .collect();
        assert!(
            unexpected.is_empty(),
            "plan-aws right after deploy-aws changes {unexpected:?}\n{shown}"
        );
    }

    // 4. push-images: every tag exists already, nothing is pushed twice.
    let pushed = succeed(
        "push-images staging",
        aws_env(
            registry.command(&harness.app("push-images")).arg("staging"),
            &moto,
            work,
        ),
    );
    assert!(
        !pushed.contains("pushed:"),
        "push-images pushed an existing tag again:\n{pushed}"
    );

    // 5. migrate-aws updates the function to this build's zip, then invokes
    //    it. That is where it stops here: moto runs Lambda code only in
    //    Docker, and this machine's AWS CLI is v1 (PyPI; awscli2 is in no
    //    registry), which lacks the invoke's v2 option --cli-binary-format.
    let code_sha = || {
        let out = succeed(
            "aws lambda get-function",
            aws_env(
                Command::new("aws").args([
                    "lambda",
                    "get-function",
                    "--function-name",
                    "staging-migrate",
                ]),
                &moto,
                work,
            ),
        );
        let function: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        function["Configuration"]["CodeSha256"]
            .as_str()
            .expect("CodeSha256")
            .to_owned()
    };
    let deployed = code_sha();
    // Another build's code on the function first, so the update is visible.
    std::fs::write(work.join("bootstrap-other"), "another build").expect("write");
    succeed(
        "zip",
        Command::new("zip")
            .current_dir(work)
            .args(["-q", "other.zip", "bootstrap-other"]),
    );
    succeed(
        "aws lambda update-function-code (another build)",
        aws_env(
            Command::new("aws")
                .args([
                    "lambda",
                    "update-function-code",
                    "--function-name",
                    "staging-migrate",
                    "--zip-file",
                ])
                .arg(format!("fileb://{}", work.join("other.zip").display())),
            &moto,
            work,
        ),
    );
    assert_ne!(code_sha(), deployed);
    let migrate = aws_env(&mut Command::new(harness.app("migrate-aws")), &moto, work)
        .arg("staging")
        .env("TF_STATE_BUCKET", &bucket)
        .output()
        .expect("migrate-aws");
    println!(
        "{}",
        show("migrate-aws staging (stops at the invoke)", &migrate)
    );
    assert_eq!(
        code_sha(),
        deployed,
        "migrate-aws did not put this build's zip on the function"
    );
    assert!(
        !migrate.status.success(),
        "the invoke cannot succeed on moto; did migrate-aws skip it?"
    );

    assert_no_temporary_files(work);
    destroy_staging(&moto, work, &bucket);
}

fn app_output(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(harness::get().app(name));
    command
        .args(args)
        .env_remove("AWS_REGION")
        .env_remove("TF_STATE_BUCKET");
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

fn assert_fails_with(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1 ({message}):\n{stderr}"
    );
    assert!(
        stderr.contains(message),
        "expected `{message}` in:\n{stderr}"
    );
}

#[test]
fn apps_reject_bad_arguments_before_touching_anything() {
    assert_fails_with(
        &app_output("deploy-aws", &[], &[]),
        "usage: nix run .#deploy-aws -- <production|staging>",
    );
    assert_fails_with(
        &app_output("plan-aws", &["qa"], &[]),
        "unknown environment 'qa'",
    );
    assert_fails_with(
        &app_output("plan-aws", &["staging"], &[]),
        "AWS_REGION is not set",
    );
    assert_fails_with(
        &app_output("deploy-aws", &["staging"], &[("AWS_REGION", "eu-west-1")]),
        "AWS_REGION is eu-west-1 but infra/staging/main.tf.json deploys to us-east-1",
    );
    assert_fails_with(
        &app_output("plan-aws", &["staging"], &[("AWS_REGION", REGION)]),
        "TF_STATE_BUCKET is not set",
    );
    assert_fails_with(
        &app_output("bootstrap-aws", &["extra"], &[]),
        "usage: nix run .#bootstrap-aws (no arguments)",
    );
    assert_fails_with(
        &app_output(
            "bootstrap-aws",
            &[],
            &[
                ("AWS_REGION", "eu-west-1"),
                ("GITHUB_REPOSITORY", "example/iac"),
            ],
        ),
        "AWS_REGION is eu-west-1 but infra/production/main.tf.json deploys to us-east-1",
    );
}

#[test]
fn the_plan_reader_finds_updated_resources() {
    let text = without_colors(
        "\u{1b}[1m  # aws_ecs_service.api\u{1b}[0m will be updated in-place\n  # aws_lb.main will be destroyed\n",
    );
    assert_eq!(updated_resource_types(&text), ["aws_ecs_service"]);
}
