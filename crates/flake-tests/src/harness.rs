//! Evaluates `nix/harness.nix` once per test process and builds what the
//! tests run: `nix-instantiate --eval` for the summary (which writes the
//! derivations), `nix-store --realise` to build them. Builds run with the
//! sandbox off (the stand-in's packages live outside the store) and without
//! build users (this machine has no `nixbld` group).

use crate::inputs::{self, Inputs};
use crate::machine::{self, Machine};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub checks: BTreeMap<String, Check>,
    pub apps: BTreeMap<String, Program>,
    pub dev_shell: DevShell,
    pub formatter: Program,
    pub image_manifest: Built,
    pub images: Built,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub drv_path: String,
    /// Why the stand-in does not build it (crane, real closures), if so.
    pub not_run: Option<String>,
    /// Stand-in packages it needs that this machine lacks.
    pub missing_tools: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Program {
    pub program: String,
    pub drv_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Built {
    pub path: String,
    pub drv_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct DevShell {
    pub packages: Vec<String>,
    pub env: BTreeMap<String, String>,
}

pub struct Harness {
    _dir: tempfile::TempDir,
    pub inputs: Inputs,
    pub machine: Machine,
    pub summary: Summary,
}

/// The evaluated flake, shared by the tests of one test binary.
pub fn get() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // FLAKE_TESTS_KEEP=1 keeps the stand-in packages for a look afterwards.
        let dir = tempfile::Builder::new()
            .prefix("flake-tests-")
            .disable_cleanup(std::env::var_os("FLAKE_TESTS_KEEP").is_some())
            .tempdir()
            .expect("temporary directory");
        let inputs = inputs::find();
        let machine = machine::prepare(dir.path());
        let summary = evaluate(&inputs, &machine.json);
        Harness {
            _dir: dir,
            inputs,
            machine,
            summary,
        }
    })
}

fn harness_nix() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/harness.nix")
}

/// The evaluation's arguments, for `nix-instantiate` and `nix-build`.
pub fn eval_args(inputs: &Inputs, machine_json: &Path, root: &Path) -> Vec<String> {
    let mut args = vec![harness_nix().display().to_string()];
    args.extend(["--arg".into(), "root".into(), root.display().to_string()]);
    for (name, path) in [
        ("nixpkgsLib", &inputs.nixpkgs_lib),
        ("terranix", &inputs.terranix),
        ("flakeParts", &inputs.flake_parts),
        ("machineJson", &machine_json.to_path_buf()),
    ] {
        args.extend(["--argstr".into(), name.into(), path.display().to_string()]);
    }
    args
}

fn evaluate(inputs: &Inputs, machine_json: &Path) -> Summary {
    // --read-write-mode: write the derivations (and build the files the
    // northflank tests read at evaluation time), so they can be realised.
    let output = Command::new("nix-instantiate")
        .args(["--read-write-mode", "--eval", "--strict", "--json"])
        .args(BUILD_OPTIONS)
        .args(eval_args(inputs, machine_json, &infra_tests::repo_root()))
        .args(["-A", "summary"])
        .output()
        .expect("nix-instantiate (apt: nix-bin) is needed to evaluate the flake");
    assert!(
        output.status.success(),
        "evaluating the flake's modules failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the summary is JSON")
}

/// `nix-instantiate --eval` of `attribute` of nix/harness.nix as JSON, with
/// extra `--argstr NAME VALUE` pairs.
pub fn eval_json(attribute: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    eval_json_at(&infra_tests::repo_root(), attribute, extra)
}

/// [`eval_json`] of the repository (or a modified copy of it) at `root`.
pub fn eval_json_at(root: &Path, attribute: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    let harness = get();
    let mut command = Command::new("nix-instantiate");
    command
        .args(["--read-write-mode", "--eval", "--strict", "--json"])
        .args(BUILD_OPTIONS)
        .args(eval_args(&harness.inputs, &harness.machine.json, root))
        .args(["-A", attribute]);
    for (name, value) in extra {
        command.args(["--argstr", name, value]);
    }
    let output = command.output().expect("nix-instantiate");
    assert!(
        output.status.success(),
        "evaluating {attribute} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// Options every build here needs: no sandbox (the stand-in packages are
/// outside the store), no build users (no `nixbld` group on this machine).
pub const BUILD_OPTIONS: &[&str] = &[
    "--option",
    "sandbox",
    "false",
    "--option",
    "build-users-group",
    "",
    "--option",
    "substituters",
    "",
];

/// Builds derivations; Err carries Nix's log.
pub fn realise(drv_paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let output = Command::new("nix-store")
        .arg("--realise")
        .args(drv_paths)
        .args(BUILD_OPTIONS)
        .output()
        .expect("nix-store (apt: nix-bin)");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(PathBuf::from)
            .collect())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Harness {
    /// Builds an app and returns its program.
    pub fn app(&self, name: &str) -> PathBuf {
        let app = self.summary.apps.get(name).unwrap_or_else(|| {
            panic!(
                "the flake has no app `{name}` (apps: {:?})",
                self.summary.apps.keys()
            )
        });
        build_program(app)
    }
}

pub fn build_program(program: &Program) -> PathBuf {
    realise(&program.drv_paths)
        .unwrap_or_else(|log| panic!("building {} failed:\n{log}", program.program));
    PathBuf::from(&program.program)
}
