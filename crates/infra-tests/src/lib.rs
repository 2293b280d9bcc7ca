//! Shared helpers for the infrastructure tests: committed renders, `terraform`
//! in a scratch copy of a configuration (providers from the local filesystem
//! mirror, backend overridden to local), plans as `terraform show -json`,
//! checkov with skips kept next to the code, and a moto server on loopback.
//!
//! Everything fails (never skips) with a message naming what is missing: a
//! green run means the checks ran.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

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

/// The account [`fake_sts`] answers with (moto's default account too).
pub const FAKE_ACCOUNT: &str = "123456789012";

/// The endpoint of an STS stand-in on loopback that answers every request
/// with `GetCallerIdentity` of [`FAKE_ACCOUNT`], so that an offline plan can
/// read `data.aws_caller_identity`. One per test process, on its own thread.
pub fn fake_sts() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port for fake STS");
        let port = listener.local_addr().expect("fake STS address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || answer_caller_identity(stream));
            }
        });
        format!("http://127.0.0.1:{port}")
    })
}

/// Reads one HTTP request (headers and a `Content-Length` body) and answers
/// with a caller identity, then closes the connection.
fn answer_caller_identity(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let xml = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>arn:aws:iam::{FAKE_ACCOUNT}:user/infra-tests</Arn>\
         <UserId>AIDAINFRATESTS</UserId><Account>{FAKE_ACCOUNT}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>\
         </ResponseMetadata></GetCallerIdentityResponse>"
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{xml}",
        xml.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
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
        Plan {
            json: serde_json::from_str(&text).expect("terraform show -json prints JSON"),
        }
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

/// A plan as `terraform show -json` prints it.
pub struct Plan {
    pub json: Value,
}

/// One planned resource: its address, type, and planned (known) values.
#[derive(Debug, Clone)]
pub struct Planned {
    pub address: String,
    pub kind: String,
    pub values: Value,
}

impl Plan {
    /// Every planned resource of the root module, by address.
    pub fn resources(&self) -> BTreeMap<String, Planned> {
        self.json["planned_values"]["root_module"]["resources"]
            .as_array()
            .expect("planned_values.root_module.resources")
            .iter()
            .map(|r| {
                let address = r["address"].as_str().expect("address").to_owned();
                let planned = Planned {
                    address: address.clone(),
                    kind: r["type"].as_str().expect("type").to_owned(),
                    values: r["values"].clone(),
                };
                (address, planned)
            })
            .collect()
    }

    pub fn of_type(&self, kind: &str) -> Vec<Planned> {
        self.resources()
            .into_values()
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// Planned values of `address`; panics if it is not planned.
    pub fn values(&self, address: &str) -> Value {
        self.resources()
            .remove(address)
            .unwrap_or_else(|| panic!("{address} is not in the plan"))
            .values
    }

    /// The configuration's references for `attribute` of `address`
    /// (e.g. `["aws_security_group.database.id", "aws_security_group.database"]`):
    /// what an attribute unknown until apply will point at.
    pub fn references(&self, address: &str, attribute: &str) -> Vec<String> {
        let resource = self.json["configuration"]["root_module"]["resources"]
            .as_array()
            .expect("configuration.root_module.resources")
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("{address} is not in the configuration"));
        resource["expressions"][attribute]["references"]
            .as_array()
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every resource change's action list, by address (`["create"]`, …).
    pub fn actions(&self) -> BTreeMap<String, Vec<String>> {
        self.json["resource_changes"]
            .as_array()
            .map(|changes| {
                changes
                    .iter()
                    .map(|c| {
                        let actions = c["change"]["actions"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (
                            c["address"].as_str().unwrap_or_default().to_owned(),
                            actions,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A checkov skip declared in Terraform JSON, next to the resource:
/// `"//": ["checkov:skip=CKV_AWS_1:why"]` (Terraform ignores `//` properties).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skip {
    pub resource: String,
    pub check: String,
    pub reason: String,
}

/// The checkov skips declared in a Terraform JSON configuration.
pub fn declared_skips(config: &Value) -> Vec<Skip> {
    let mut skips = Vec::new();
    let Some(types) = config["resource"].as_object() else {
        return skips;
    };
    for (kind, resources) in types {
        for (name, body) in resources.as_object().into_iter().flatten() {
            let comments = match &body["//"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            for comment in comments {
                let Some(rest) = comment.strip_prefix("checkov:skip=") else {
                    continue;
                };
                let (check, reason) = rest.split_once(':').unwrap_or((rest, ""));
                skips.push(Skip {
                    resource: format!("{kind}.{name}"),
                    check: check.trim().to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
        }
    }
    skips
}

/// One failed checkov check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub check: String,
    pub resource: String,
    pub name: String,
}

/// The checkov program: `$CHECKOV`, else `checkov` on PATH, else the
/// dedicated virtualenv `/opt/checkov-venv` (checkov pins boto versions that
/// clash with moto's, so it is best installed apart).
pub fn checkov_program() -> PathBuf {
    if let Some(path) = std::env::var_os("CHECKOV") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/checkov-venv/bin/checkov");
    find_program("checkov")
        .or_else(|| venv.is_file().then_some(venv))
        .unwrap_or_else(|| {
            panic!(
                "checkov is required: `pip install checkov` (3.x, ideally in its own virtualenv), \
                 then put it on PATH or set CHECKOV to its path"
            )
        })
}

/// Runs checkov on a plan (`terraform show -json` output) offline and
/// returns its failed checks. checkov cannot read skips from JSON, so none
/// are passed: callers compare the findings with [`declared_skips`].
pub fn checkov_plan(plan_file: &Path) -> Vec<Finding> {
    // checkov recognises a plan only by a `.json` name.
    let scratch = tempfile::tempdir().expect("temporary directory");
    let named = scratch.path().join("plan.json");
    std::fs::copy(plan_file, &named)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", plan_file.display()));
    let output = Command::new(checkov_program())
        .arg("--file")
        .arg(&named)
        .args([
            "--framework",
            "terraform_plan",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .output()
        .unwrap_or_else(|e| panic!("cannot run checkov: {e}"));
    // Exit status 1 means "failed checks": the report says which.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    // One report, or one per framework.
    let reports = match report {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut findings: Vec<Finding> = reports
        .iter()
        .flat_map(|r| {
            r["results"]["failed_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| Finding {
            check: f["check_id"].as_str().unwrap_or_default().to_owned(),
            resource: f["resource"].as_str().unwrap_or_default().to_owned(),
            name: f["check_name"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    assert!(
        reports
            .iter()
            .any(|r| r["summary"]["passed"].as_u64().unwrap_or(0) > 0),
        "checkov passed no check at all: did it parse the plan?\n{stdout}"
    );
    findings.sort();
    findings.dedup();
    findings
}

/// A moto server on a free loopback port, stopped on drop. Runs
/// `moto_server.py` (moto's server plus the tagging calls moto lacks).
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with(&[], "http")
    }

    /// moto serving HTTPS with a PEM certificate and key (`AWS_CA_BUNDLE`
    /// makes clients trust it): for calls a bucket policy allows over TLS
    /// only, which moto enforces.
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Self::start_with(&["--ssl-cert", &cert, "--ssl-key", &key], "https")
    }

    fn start_with(extra_args: &[&str], scheme: &str) -> Self {
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| require_program("python3", "install Python 3 with moto[server]"));
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(extra_args)
            // AWS-managed policies (e.g. AWSLambdaVPCAccessExecutionRole) exist.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut log = String::new();
                if let Some(stderr) = child.stderr.take() {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
                panic!(
                    "moto exited ({status}); is it installed? pip install 'moto[server]'\n{log}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within a minute"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Drain its log so a full pipe never blocks it.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
        }
        Moto {
            child,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Every statement of an IAM-style policy document (a JSON string or value).
pub fn policy_statements(document: &Value) -> Vec<Value> {
    let parsed = match document {
        Value::String(text) => serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("policy is not JSON ({e}): {text}")),
        other => other.clone(),
    };
    match &parsed["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![parsed["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// A policy field (`Action`, `Resource`) as a list of strings.
pub fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
