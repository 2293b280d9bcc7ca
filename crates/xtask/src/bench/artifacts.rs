//! The build of the catalog's binaries and the sizes of what is deployed: service binaries
//! and the Lambda zip.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use anyhow::{Context, Result, bail};
use catalog::{Catalog, Job};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::command_output;
use super::options::BenchOptions;
use crate::output::step;

/// Binary size target.
const TARGET_BINARY_BYTES: u64 = 15 * 1024 * 1024;
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// A built artifact and its size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub kind: String,
    pub bytes: u64,
    pub linkage: String,
    pub note: String,
    pub target_bytes: Option<u64>,
    pub met: Option<bool>,
}

/// The crates of the catalog's services and jobs, built in one profile.
pub struct Binaries {
    pub dir: PathBuf,
    pub crates: Vec<String>,
    release: bool,
}

impl Binaries {
    /// Builds every crate of the catalog (unless `--no-build`).
    pub async fn build(options: &BenchOptions, catalog: &Catalog) -> Result<Self> {
        let crates: Vec<String> = catalog
            .crate_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if options.build {
            let mut args = Vec::new();
            if options.release {
                args.push("--release");
            }
            for name in &crates {
                args.extend(["-p", name]);
            }
            cargo_build(&options.root, &args).await?;
        } else {
            step("skipping the build (--no-build)");
        }
        Ok(Self {
            dir: crate::dev::target_dir(&options.root).join(options.profile()),
            crates,
            release: options.release,
        })
    }

    /// The path of a built binary; an error tells how to build it.
    pub fn path(&self, crate_name: &str) -> Result<PathBuf> {
        let path = self.dir.join(crate_name);
        if !path.is_file() {
            bail!(
                "{} does not exist; build it (`cargo build{} -p {crate_name}`) or run without --no-build",
                path.display(),
                if self.release { " --release" } else { "" }
            );
        }
        Ok(path)
    }

    /// Sizes of the service binaries and of the Lambda zip built from `migrate`.
    pub async fn sizes(
        &self,
        options: &BenchOptions,
        migrate: &Job,
        work: &Path,
    ) -> Result<Vec<Artifact>> {
        let mut sizes = Vec::new();
        for name in &self.crates {
            sizes.push(artifact(name, "service binary", &self.path(name)?, "")?);
        }
        let (binary, note) = self.lambda_binary(options, migrate).await?;
        sizes.extend(lambda_zip(&binary, &note, work)?);
        Ok(sizes)
    }

    /// The binary the Lambda zip holds: the static musl build when that target is
    /// installed, else this build (and a note saying so).
    async fn lambda_binary(
        &self,
        options: &BenchOptions,
        migrate: &Job,
    ) -> Result<(PathBuf, String)> {
        let program = migrate.command.first().context("job without command")?;
        let musl_installed =
            command_output("rustc", &["--print", "sysroot"]).is_some_and(|sysroot| {
                Path::new(&sysroot)
                    .join("lib/rustlib")
                    .join(MUSL_TARGET)
                    .is_dir()
            });
        if !(musl_installed && options.release) {
            let note = format!(
                "the {MUSL_TARGET} target is not installed in this toolchain, so this is the \
                 glibc {} build of `{program}`; the deployed zip (nix/lambda.nix) holds \
                 the static musl build",
                options.profile()
            );
            return Ok((self.path(program)?, note));
        }
        if options.build {
            let args = [
                "--release",
                "--target",
                MUSL_TARGET,
                "-p",
                &migrate.crate_name,
            ];
            cargo_build(&options.root, &args).await?;
        }
        let path = crate::dev::target_dir(&options.root)
            .join(MUSL_TARGET)
            .join("release")
            .join(program);
        Ok((path, format!("static musl build ({MUSL_TARGET})")))
    }
}

async fn cargo_build(root: &Path, args: &[&str]) -> Result<()> {
    step(format!("cargo build {}", args.join(" ")));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .arg("build")
        .args(args)
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the build failed ({status}); see the compiler output above");
    }
    Ok(())
}

/// Static or dynamic, stripped or not, from `file`.
fn linkage(path: &Path) -> String {
    let Some(description) = command_output("file", &["-b", &path.to_string_lossy()]) else {
        return "unknown (`file` not installed)".to_owned();
    };
    let link = if description.contains("statically linked") || description.contains("static-pie") {
        "static"
    } else if description.contains("dynamically linked") {
        "dynamic (glibc)"
    } else {
        "?"
    };
    let strip = if description.contains("not stripped") {
        ", not stripped"
    } else if description.contains("stripped") {
        ", stripped"
    } else {
        ""
    };
    format!("{link}{strip}")
}

fn artifact(name: &str, kind: &str, path: &Path, note: &str) -> Result<Artifact> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let target_bytes = (kind == "service binary").then_some(TARGET_BINARY_BYTES);
    Ok(Artifact {
        name: name.to_owned(),
        kind: kind.to_owned(),
        bytes,
        linkage: linkage(path),
        note: note.to_owned(),
        target_bytes,
        met: target_bytes.map(|t| bytes < t),
    })
}

/// The Lambda zip (`bootstrap` = the migrate binary), built with `zip` as nix/lambda.nix does.
fn lambda_zip(binary: &Path, note: &str, work: &Path) -> Result<Vec<Artifact>> {
    let dir = work.join("lambda");
    std::fs::create_dir_all(&dir)?;
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(binary, &bootstrap)
        .with_context(|| format!("cannot copy {}", binary.display()))?;
    let mut out = vec![artifact(
        "bootstrap",
        "lambda zip content",
        &bootstrap,
        note,
    )?];
    let zipped = StdCommand::new("zip")
        .current_dir(&dir)
        .args(["-q", "-9", "-X", "lambda.zip", "bootstrap"])
        .status();
    match zipped {
        Ok(status) if status.success() => {
            let mut zip = artifact("lambda.zip", "lambda zip", &dir.join("lambda.zip"), note)?;
            zip.linkage = String::new();
            out.push(zip);
        }
        _ => step("`zip` is not installed: recording the size of `bootstrap` only"),
    }
    Ok(out)
}
