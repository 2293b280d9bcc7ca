//! The source trees of the flake inputs the harness evaluates with:
//! nixpkgs' lib, terranix and flake-parts.
//!
//! From `FLAKE_INPUTS_DIR` (one subdirectory per input: `nixpkgs-lib`,
//! `terranix`, `flake-parts`) when set; otherwise `git archive` of the
//! revision flake.lock pins, from the git mirrors this workplace keeps under
//! `FLAKE_MIRRORS_DIR` (default `/work/.mirror`, `<owner>+<name>/repo`), into
//! a cache directory. terranix and flake-parts are checked against
//! flake.lock's narHash with `nix hash path`; nixpkgs' lib comes from
//! nix-community/nixpkgs.lib, a repository derived from nixpkgs whose
//! revisions are not nixpkgs' (the lock pins all of nixpkgs, not fetchable
//! here), so it is taken at [`NIXPKGS_LIB_REV`] and not hash-checked.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// nix-community/nixpkgs.lib at 2026-06-14, the newest lib before the
/// nixpkgs revision flake.lock pins (2026-07-18).
pub const NIXPKGS_LIB_REV: &str = "de42d44212d207476489bce163375d8306a26d59";

#[derive(Debug, Clone)]
pub struct Inputs {
    pub nixpkgs_lib: PathBuf,
    pub terranix: PathBuf,
    pub flake_parts: PathBuf,
}

#[derive(Deserialize)]
struct Lock {
    nodes: BTreeMap<String, LockNode>,
}

#[derive(Deserialize)]
struct LockNode {
    locked: Option<Locked>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Locked {
    owner: String,
    repo: String,
    rev: String,
    nar_hash: String,
}

fn locked(node: &str) -> Locked {
    let path = infra_tests::repo_root().join("flake.lock");
    let lock: Lock = serde_json::from_str(&std::fs::read_to_string(&path).expect("flake.lock"))
        .expect("flake.lock is a lock file");
    lock.nodes
        .get(node)
        .and_then(|n| n.locked.clone())
        .unwrap_or_else(|| panic!("flake.lock has no locked node `{node}`"))
}

/// Finds (or materialises) the three trees; panics naming what to provide.
pub fn find() -> Inputs {
    let terranix = locked("terranix");
    let flake_parts = locked("flake-parts");
    let inputs = match std::env::var_os("FLAKE_INPUTS_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            Inputs {
                nixpkgs_lib: dir.join("nixpkgs-lib"),
                terranix: dir.join("terranix"),
                flake_parts: dir.join("flake-parts"),
            }
        }
        None => Inputs {
            nixpkgs_lib: from_mirror("nix-community", "nixpkgs.lib", NIXPKGS_LIB_REV),
            terranix: from_mirror(&terranix.owner, &terranix.repo, &terranix.rev),
            flake_parts: from_mirror(&flake_parts.owner, &flake_parts.repo, &flake_parts.rev),
        },
    };
    assert!(
        inputs.nixpkgs_lib.join("lib/default.nix").is_file(),
        "{} is not a nixpkgs(.lib) tree with lib/default.nix",
        inputs.nixpkgs_lib.display()
    );
    check_nar_hash(&inputs.terranix, &terranix);
    check_nar_hash(&inputs.flake_parts, &flake_parts);
    inputs
}

fn mirrors_dir() -> PathBuf {
    std::env::var_os("FLAKE_MIRRORS_DIR")
        .map_or_else(|| PathBuf::from("/work/.mirror"), PathBuf::from)
}

/// `git archive <rev>` of `<mirrors>/<owner>+<repo>/repo`, cached by revision.
fn from_mirror(owner: &str, repo: &str, rev: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME")
        .join("flake-tests");
    let tree = cache.join(format!("{owner}+{repo}-{rev}"));
    if tree.is_dir() {
        return tree;
    }
    let git_dir = mirrors_dir().join(format!("{owner}+{repo}")).join("repo");
    assert!(
        git_dir.is_dir(),
        "no source for the flake input {owner}/{repo}: set FLAKE_INPUTS_DIR to a directory \
         with nixpkgs-lib/, terranix/ and flake-parts/ source trees, or provide a git \
         mirror at {} (FLAKE_MIRRORS_DIR)",
        git_dir.display()
    );
    let partial = cache.join(format!("{owner}+{repo}-{rev}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("cache directory");
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"git --git-dir="$1" archive "$2" | tar -x -C "$3""#)
        .args([
            "sh",
            &git_dir.display().to_string(),
            rev,
            &partial.display().to_string(),
        ])
        .status()
        .expect("git and tar");
    assert!(
        status.success(),
        "git archive {rev} of {} failed (is the revision in the mirror?)",
        git_dir.display()
    );
    std::fs::rename(&partial, &tree).expect("move the tree into the cache");
    tree
}

/// The tree's NAR hash equals flake.lock's (the same tree Nix would fetch).
fn check_nar_hash(tree: &Path, locked: &Locked) {
    let output = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "hash",
            "path",
        ])
        .arg(tree)
        .output()
        .expect("nix (nix-bin) is needed to hash the inputs");
    assert!(
        output.status.success(),
        "nix hash path {}: {}",
        tree.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(
        hash,
        locked.nar_hash,
        "{} is not {}/{} at {} as flake.lock pins it",
        tree.display(),
        locked.owner,
        locked.repo,
        locked.rev
    );
}
