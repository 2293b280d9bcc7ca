//! `nix develop` against nix/dev-tools.toml, the one list of the programs the
//! tests, the local stack and the apps run: the shell nix/devshell.nix
//! evaluates to (with the stand-in package set) must carry every listed
//! package and export working TF_PLUGIN_MIRROR, PYTHON, CHROMIUM and
//! CHROMEDRIVER; and every program a test or tool of this repository starts
//! by name must be in the list.

use flake_tests::harness;
use flake_tests::machine::{self, PYTHON_PACKAGE, TERRAFORM_PACKAGE};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory the stand-in gives for a dev-tools.toml package.
fn stand_in_package(package: &str) -> String {
    let packages = &harness::get().machine.packages;
    let name = match package {
        "terraform" => TERRAFORM_PACKAGE,
        other => other,
    };
    packages.get(name).map_or_else(
        || format!("/nonexistent/{name}"),
        |p| p.display().to_string(),
    )
}

#[test]
fn the_dev_shell_carries_every_listed_tool() {
    let shell = &harness::get().summary.dev_shell;
    let path: Vec<PathBuf> = shell
        .packages
        .iter()
        .map(|p| Path::new(p).join("bin"))
        .collect();
    let mut absent_here = Vec::new();
    for tool in machine::dev_tools().tool {
        let package = stand_in_package(&tool.package);
        assert!(
            shell.packages.contains(&package),
            "nix develop lacks {} ({}), needed by {}",
            tool.package,
            tool.programs.join(", "),
            tool.used_for
        );
        for program in &tool.programs {
            if package.starts_with("/nonexistent/") {
                absent_here.push(format!("{program} ({})", tool.package));
            } else {
                assert!(
                    path.iter().any(|dir| dir.join(program).exists()),
                    "{program} is not on the dev shell's PATH (package {})",
                    tool.package
                );
            }
        }
    }
    println!(
        "listed but not installable on this machine (the shell has them from nixpkgs): {absent_here:?}"
    );
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_dev_shell_exports_point_at_working_tools() {
    let env = &harness::get().summary.dev_shell.env;
    let get = |name: &str| {
        env.get(name)
            .unwrap_or_else(|| panic!("nix develop does not export {name}"))
    };

    let mirror = Path::new(get("TF_PLUGIN_MIRROR"));
    assert_eq!(
        mirror,
        Path::new(&stand_in_package("terraform")).join("libexec/terraform-providers"),
        "TF_PLUGIN_MIRROR must be the terraform wrapper's plugin directory"
    );
    assert!(
        mirror.join("registry.terraform.io/hashicorp/aws").is_dir(),
        "no AWS provider under {}",
        mirror.display()
    );

    let python = get("PYTHON");
    assert!(
        python.starts_with(&stand_in_package(PYTHON_PACKAGE)),
        "PYTHON is not the moto environment: {python}"
    );
    assert!(
        runs(python, &["-c", "import moto.server"]),
        "{python} cannot import moto.server"
    );

    assert!(
        runs(get("CHROMIUM"), &["--version"]),
        "CHROMIUM does not run"
    );
    assert!(
        runs(get("CHROMEDRIVER"), &["--version"]),
        "CHROMEDRIVER does not run"
    );
}

/// Programs a Rust file starts by name: `Command::new("x")`,
/// `require_program("x", ..)`, `find_on_path("x")`, `find_program("x")`,
/// `find_server_program("x")`, and `program("ENV", "/usr/bin/x")` fallbacks.
fn programs_named_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for call in [
        "Command::new(\"",
        "require_program(\"",
        "find_on_path(\"",
        "find_program(\"",
        "find_server_program(\"",
    ] {
        for (start, _) in text.match_indices(call) {
            let rest = &text[start + call.len()..];
            if let Some(end) = rest.find('"') {
                found.insert(
                    rest[..end]
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }
    for (start, _) in text.match_indices("program(\"") {
        let mut quoted = text[start..].split('"').skip(1).step_by(2);
        if let (Some(variable), Some(default)) = (quoted.next(), quoted.next())
            && !variable.is_empty()
            && variable.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            found.insert(default.rsplit('/').next().unwrap_or_default().to_owned());
        }
    }
    found.retain(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() && entry.file_name() != "target" && entry.file_name() != "node_modules" {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_program_the_code_starts_is_in_the_tool_list() {
    // The shell and the toolchain come with every dev shell (stdenv, crane).
    let given: BTreeSet<&str> = ["sh", "bash", "cargo", "rustc", "env", "true", "false"].into();
    let listed: BTreeSet<String> = machine::dev_tools()
        .tool
        .iter()
        .flat_map(|t| {
            t.programs
                .iter()
                .flat_map(|p| [p.clone(), t.program_here(p).to_owned()])
        })
        .collect();
    let mut files = Vec::new();
    rust_files(&infra_tests::repo_root().join("crates"), &mut files);
    let mut unlisted = Vec::new();
    // This file's own examples are not programs anyone starts.
    files.retain(|f| !f.ends_with("crates/flake-tests/tests/devshell.rs"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for program in programs_named_in(&text) {
            if !listed.contains(&program) && !given.contains(program.as_str()) {
                unlisted.push(format!("{program} ({})", file.display()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "programs started by the code but missing from nix/dev-tools.toml: {unlisted:?}"
    );
}

#[test]
fn the_scan_finds_the_patterns_it_looks_for() {
    let sample = r#"Command::new("terraform"); require_program("checkov", "x"); program("CHROMIUM", "/usr/bin/chromium"); find_on_path("wrk")"#;
    let found: Vec<String> = programs_named_in(sample).into_iter().collect();
    assert_eq!(found, ["checkov", "chromium", "terraform", "wrk"]);
}
