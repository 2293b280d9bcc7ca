//! The stand-in package set's packages: for each nixpkgs package the flake's
//! modules name, a directory whose `bin/` links this machine's programs of
//! that package (or, when one is missing, the package is reported missing and
//! whatever needs it is not run). Written to `machine.json`, which
//! `nix/stand-in-pkgs.nix` reads.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// nix/dev-tools.toml: every program the tests, the local stack and the apps run.
#[derive(Debug, Deserialize)]
pub struct DevTools {
    pub tool: Vec<Tool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    /// A nixpkgs attribute, or `terraform` / `python-with-moto` (nix/devshell.nix's own).
    pub package: String,
    /// The package's output that holds `programs`, when not its default one
    /// (nixpkgs moves `promtool` to `prometheus.cli`).
    #[serde(default)]
    pub output: Option<String>,
    pub programs: Vec<String>,
    /// Program name -> its name on Debian, where they differ.
    #[serde(default)]
    pub debian: BTreeMap<String, String>,
    /// "platform": nixpkgs does not build it everywhere.
    #[serde(default)]
    pub optional: Option<String>,
    #[serde(rename = "for")]
    pub used_for: String,
}

impl Tool {
    /// The program's name on this (Debian) machine.
    pub fn program_here<'a>(&'a self, program: &'a str) -> &'a str {
        self.debian.get(program).map_or(program, String::as_str)
    }
}

pub fn dev_tools() -> DevTools {
    let path = infra_tests::repo_root().join("nix/dev-tools.toml");
    let text = std::fs::read_to_string(&path).expect("nix/dev-tools.toml");
    toml::from_str(&text).unwrap_or_else(|e| panic!("nix/dev-tools.toml: {e}"))
}

/// nix/devshell.nix's own packages, and the module argument `terraform`.
pub const TERRAFORM_PACKAGE: &str = "terraform-with-aws";
pub const PYTHON_PACKAGE: &str = "python-with-moto";

/// Packages the modules use besides dev-tools.toml's, with their programs.
const EXTRA_PACKAGES: &[(&str, &[&str])] = &[
    ("python3", &["python3"]),
    ("cargo", &["cargo", "rustc"]),
    ("cc", &["cc"]),
    ("file", &["file"]),
];

/// GNU coreutils' programs (`pkgs.coreutils`, and stdenv's PATH).
const COREUTILS: &[&str] = &[
    "[",
    "b2sum",
    "base32",
    "base64",
    "basename",
    "basenc",
    "cat",
    "chgrp",
    "chmod",
    "chown",
    "cksum",
    "comm",
    "cp",
    "csplit",
    "cut",
    "date",
    "dd",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "expand",
    "expr",
    "factor",
    "false",
    "fmt",
    "fold",
    "head",
    "id",
    "install",
    "join",
    "link",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mkfifo",
    "mknod",
    "mktemp",
    "mv",
    "nice",
    "nl",
    "nohup",
    "nproc",
    "numfmt",
    "od",
    "paste",
    "pathchk",
    "pr",
    "printenv",
    "printf",
    "ptx",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "seq",
    "sha1sum",
    "sha224sum",
    "sha256sum",
    "sha384sum",
    "sha512sum",
    "shred",
    "shuf",
    "sleep",
    "sort",
    "split",
    "stat",
    "stdbuf",
    "sum",
    "sync",
    "tac",
    "tail",
    "tee",
    "test",
    "timeout",
    "touch",
    "tr",
    "true",
    "truncate",
    "tsort",
    "tty",
    "uname",
    "unexpand",
    "uniq",
    "wc",
    "whoami",
    "yes",
];

/// What stdenv adds to every build's PATH besides coreutils.
const STDENV_EXTRAS: &[&str] = &[
    "bash", "sh", "find", "xargs", "diff", "cmp", "sed", "grep", "awk", "tar", "gzip", "bzip2",
    "xz", "patch", "make",
];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MachineJson {
    system: &'static str,
    bash: PathBuf,
    stdenv_bin: PathBuf,
    ca_bundle: PathBuf,
    cargo_home: PathBuf,
    packages: BTreeMap<String, PathBuf>,
    missing: Vec<String>,
    main_programs: BTreeMap<String, String>,
}

/// The prepared directories and `machine.json`.
#[derive(Debug)]
pub struct Machine {
    pub json: PathBuf,
    pub packages: BTreeMap<String, PathBuf>,
    pub missing: BTreeMap<String, Vec<String>>,
}

/// A program on PATH (or Debian's PostgreSQL directory); checkov also where
/// `CHECKOV` points (.ci/run keeps it in its own virtualenv).
fn find(program: &str) -> Option<PathBuf> {
    let from_env = (program == "checkov")
        .then(|| std::env::var_os("CHECKOV").map(PathBuf::from))
        .flatten()
        .filter(|p| p.is_file());
    from_env.or_else(|| postgres_programs::find_server_program(program))
}

/// A directory `<dir>/<name>/bin` linking each (name in the package, program here).
fn link_package(
    dir: &Path,
    name: &str,
    programs: &[(String, String)],
) -> Result<PathBuf, Vec<String>> {
    let found: Vec<_> = programs
        .iter()
        .map(|(inside, here)| (inside, here, find(here)))
        .collect();
    let missing: Vec<String> = found
        .iter()
        .filter(|(_, _, path)| path.is_none())
        .map(|(_, here, _)| (*here).clone())
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let package = dir.join(name);
    std::fs::create_dir_all(package.join("bin")).expect("package directory");
    for (inside, _, path) in found {
        symlink(path.expect("found"), package.join("bin").join(inside)).expect("link a program");
    }
    Ok(package)
}

/// Stands in for nixpkgs' `terraform.withPlugins`: `bin/terraform` installs
/// providers only from `libexec/terraform-providers` (linked to this
/// machine's mirror), the directory nixpkgs' wrapper points Terraform at.
fn terraform_with_plugins(dir: &Path) -> Result<PathBuf, Vec<String>> {
    let terraform = find("terraform").ok_or_else(|| vec!["terraform".to_owned()])?;
    let package = dir.join(TERRAFORM_PACKAGE);
    std::fs::create_dir_all(package.join("bin")).expect("terraform package");
    std::fs::create_dir_all(package.join("libexec")).expect("libexec");
    symlink(
        infra_tests::plugin_mirror(),
        package.join("libexec/terraform-providers"),
    )
    .expect("link the mirror");
    let rc = package.join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = {:?}\n  }}\n}}\n",
            package
                .join("libexec/terraform-providers")
                .display()
                .to_string()
        ),
    )
    .expect("terraformrc");
    let wrapper = package.join("bin/terraform");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nexport TF_CLI_CONFIG_FILE={rc:?}\nexport CHECKPOINT_DISABLE=1\nexec {terraform:?} \"$@\"\n"
        ),
    )
    .expect("terraform wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Ok(package)
}

/// The interpreter with moto's server: `PYTHON`, else python3 on PATH.
pub fn python_with_moto() -> Option<PathBuf> {
    let python = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .or_else(|| find("python3"))?;
    let ok = std::process::Command::new(&python)
        .args(["-c", "import moto.server"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

/// Prepares every package directory under `dir` and writes `machine.json`.
pub fn prepare(dir: &Path) -> Machine {
    let mut wanted: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for tool in dev_tools().tool {
        if tool.package == "terraform" || tool.package == PYTHON_PACKAGE {
            continue;
        }
        let programs: Vec<_> = tool
            .programs
            .iter()
            .map(|p| (p.clone(), tool.program_here(p).to_owned()))
            .collect();
        // A package's outputs are one directory here: every output's programs.
        wanted
            .entry(tool.package.clone())
            .or_default()
            .extend(programs);
    }
    for (name, programs) in EXTRA_PACKAGES {
        wanted.insert(
            (*name).to_owned(),
            programs
                .iter()
                .map(|p| ((*p).to_owned(), (*p).to_owned()))
                .collect(),
        );
    }
    wanted.insert(
        "coreutils".to_owned(),
        COREUTILS
            .iter()
            .map(|p| ((*p).to_owned(), (*p).to_owned()))
            .collect(),
    );

    let packages_dir = dir.join("packages");
    let mut packages = BTreeMap::new();
    let mut missing = BTreeMap::new();
    for (name, programs) in &wanted {
        match link_package(&packages_dir, name, programs) {
            Ok(path) => {
                packages.insert(name.clone(), path);
            }
            Err(absent) => {
                missing.insert(name.clone(), absent);
            }
        }
    }
    match terraform_with_plugins(&packages_dir) {
        Ok(path) => {
            packages.insert(TERRAFORM_PACKAGE.to_owned(), path);
        }
        Err(absent) => {
            missing.insert(TERRAFORM_PACKAGE.to_owned(), absent);
        }
    }
    let python = python_with_moto().map(|p| ("python3".to_owned(), p.display().to_string()));
    match python.map(|p| link_package(&packages_dir, PYTHON_PACKAGE, &[p])) {
        Some(Ok(path)) => {
            packages.insert(PYTHON_PACKAGE.to_owned(), path);
        }
        _ => {
            missing.insert(
                PYTHON_PACKAGE.to_owned(),
                vec!["python3 with moto[server]".to_owned()],
            );
        }
    }

    let stdenv: Vec<(String, String)> = COREUTILS
        .iter()
        .chain(STDENV_EXTRAS)
        .map(|p| ((*p).to_owned(), (*p).to_owned()))
        .collect();
    let stdenv_dir = link_package(dir, "stdenv", &stdenv)
        .unwrap_or_else(|absent| panic!("stdenv's programs are missing here: {absent:?}"));

    let main_programs = wanted
        .iter()
        .filter_map(|(name, programs)| Some((name.clone(), programs.first()?.0.clone())))
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("HOME");
    let json = MachineJson {
        system: "x86_64-linux",
        bash: PathBuf::from("/bin/bash"),
        stdenv_bin: stdenv_dir.join("bin"),
        ca_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        cargo_home,
        packages: packages.clone(),
        missing: missing.keys().cloned().collect(),
        main_programs,
    };
    let path = dir.join("machine.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("JSON"))
        .expect("machine.json");
    Machine {
        json: path,
        packages,
        missing,
    }
}
