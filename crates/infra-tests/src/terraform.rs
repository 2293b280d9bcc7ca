//! `terraform` in a scratch copy of a configuration: providers from the local
//! filesystem mirror, backend overridden to local, provider settings for
//! offline plans or a moto endpoint; init, validate, plan, apply.

use crate::plan::Plan;
use crate::sts::fake_sts;
use crate::{canonical_json, catalog_names, repo_root, require_program};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The provider mirror: `$TF_PLUGIN_MIRROR`, default `/opt/tf-plugins`.
pub fn plugin_mirror() -> PathBuf {
    let mirror = PathBuf::from(
        std::env::var("TF_PLUGIN_MIRROR").unwrap_or_else(|_| "/opt/tf-plugins".to_owned()),
    );
    assert!(
        mirror.join("registry.terraform.io/hashicorp/aws").is_dir(),
        "no hashicorp/aws provider in the filesystem mirror {} (set TF_PLUGIN_MIRROR to a \
         directory laid out like `terraform providers mirror` output)",
        mirror.display()
    );
    mirror
}

/// Provider settings that keep the AWS provider from looking anything up.
/// The fake credentials come from the environment [`Workspace::terraform`]
/// sets, not from here: checkov reads the provider block in a plan and rightly
/// flags keys in it (CKV_AWS_41).
fn no_lookups() -> Value {
    json!({
        "skip_credentials_validation": true,
        "skip_requesting_account_id": true,
        "skip_metadata_api_check": true,
        "skip_region_validation": true,
    })
}

/// Provider settings for offline plans: nothing is looked up, and STS (read
/// by `data.aws_caller_identity`) is [`fake_sts`] on loopback.
pub fn offline_provider() -> Value {
    let mut provider = no_lookups();
    provider["endpoints"] = json!([{"sts": fake_sts()}]);
    provider
}

/// Every AWS service the environments use, for endpoint overrides.
pub const AWS_SERVICES: &[&str] = &[
    "acm",
    "appautoscaling",
    "cloudwatch",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "servicediscovery",
    "sns",
    "sts",
];

/// Provider settings that send every call to `endpoint` (a moto server).
pub fn endpoint_provider(endpoint: &str) -> Value {
    let mut provider = no_lookups();
    let endpoints: serde_json::Map<String, Value> = AWS_SERVICES
        .iter()
        .map(|s| ((*s).to_owned(), Value::from(endpoint)))
        .collect();
    provider["endpoints"] = json!([endpoints]);
    provider["s3_use_path_style"] = json!(true);
    provider
}

/// A scratch copy of one configuration where `terraform` runs: the committed
/// JSON, a CLI config that installs providers from the mirror only, and
/// override files (backend → local, provider settings) that exist only here.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// Copies `relative` (e.g. `infra/staging/main.tf.json`) and sets up the
    /// mirror, a local backend and the given provider override.
    pub fn new(relative: &str, provider_override: Value) -> Self {
        require_program("terraform", "install Terraform >= 1.10");
        let mirror = plugin_mirror();
        let dir = tempfile::Builder::new()
            .prefix("infra-tests-")
            .tempdir()
            .expect("temporary directory");
        let path = dir.path();
        std::fs::copy(repo_root().join(relative), path.join("main.tf.json"))
            .unwrap_or_else(|e| panic!("cannot copy {relative}: {e}"));
        std::fs::write(
            path.join("terraformrc"),
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = {:?}\n  }}\n}}\n",
                mirror.display().to_string()
            ),
        )
        .expect("write CLI config");
        let workspace = Workspace { dir };
        workspace.write_json(
            "backend_override.tf.json",
            &json!({"terraform": {"backend": {"local": {"path": "terraform.tfstate"}}}}),
        );
        workspace.write_json(
            "provider_override.tf.json",
            &json!({"provider": {"aws": provider_override}}),
        );
        workspace
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_json(&self, name: &str, value: &Value) {
        std::fs::write(self.path().join(name), canonical_json(value))
            .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    }

    /// Runs terraform with `args`; panics with its output unless it succeeds.
    pub fn terraform(&self, args: &[&str]) -> String {
        let output = self.terraform_output(args);
        assert!(
            output.status.success(),
            "terraform {args:?} failed in {}:\n{}\n{}",
            self.path().display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("terraform prints UTF-8")
    }

    pub fn terraform_output(&self, args: &[&str]) -> Output {
        Command::new("terraform")
            .args(args)
            .arg("-no-color")
            .current_dir(self.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("TF_CLI_CONFIG_FILE", self.path().join("terraformrc"))
            .env("CHECKPOINT_DISABLE", "1")
            // Fake credentials; nothing from the developer's AWS setup leaks in.
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("cannot run terraform ({e}); it must be installed"))
    }

    pub fn init(&self) {
        self.terraform(&["init", "-input=false"]);
    }

    pub fn validate(&self) {
        self.terraform(&["validate"]);
    }

    /// Writes `vars` as `test.auto.tfvars.json`, plans, and returns the plan
    /// as `terraform show -json` prints it.
    pub fn plan(&self, vars: &Value) -> Plan {
        self.write_json("test.auto.tfvars.json", vars);
        self.terraform(&["plan", "-input=false", "-out=test.tfplan"]);
        let text = self.terraform(&["show", "-json", "test.tfplan"]);
        std::fs::write(self.path().join("plan.json"), &text).expect("write plan.json");
        Plan::parse(&text)
    }

    /// `plan.json` of the last [`Workspace::plan`], for tools that read files.
    pub fn plan_file(&self) -> PathBuf {
        self.path().join("plan.json")
    }
}

/// Terraform variables for a test deploy of an AWS environment: a tag per
/// catalog workload, a stand-in Lambda zip written into `dir`, an address.
pub fn environment_vars(dir: &Path) -> Value {
    let (services, jobs) = catalog_names();
    let tags: serde_json::Map<String, Value> = services
        .iter()
        .chain(&jobs)
        .map(|name| (name.clone(), Value::from("test")))
        .collect();
    let zip = dir.join("migrate-lambda.zip");
    std::fs::write(&zip, STAND_IN_ZIP).expect("write the stand-in zip");
    json!({
        "image_tags": tags,
        "migration_lambda_zip": zip.display().to_string(),
        "alert_email": "alerts@example.com",
    })
}

/// A valid zip holding one empty file, `bootstrap`: enough for Terraform's
/// hash and moto's upload. (The real one is built by the flake.)
const STAND_IN_ZIP: &[u8] = &[
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x62, 0x6f,
    0x6f, 0x74, 0x73, 0x74, 0x72, 0x61, 0x70, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xed,
    0x81, 0x00, 0x00, 0x00, 0x00, 0x62, 0x6f, 0x6f, 0x74, 0x73, 0x74, 0x72, 0x61, 0x70, 0x50, 0x4b,
    0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x37, 0x00, 0x00, 0x00, 0x27, 0x00,
    0x00, 0x00, 0x00, 0x00,
];
