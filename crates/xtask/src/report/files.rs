//! Reading the repository and writing canonical JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file under the root, as text.
pub fn read_text(root: &Path, relative: &str) -> Result<String> {
    std::fs::read_to_string(root.join(relative)).with_context(|| format!("cannot read {relative}"))
}

/// A file's text, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Keys sorted at every level, two-space indent, trailing newline (`jq -S .`): the one
/// canonical form of every committed render and figure file.
pub use infra_tests::canonical_json;

/// Every text file under `path` (a file or a directory), keyed by its path relative to `root`:
/// not dependencies, build output, lock files or Markdown.
pub fn collect_files(root: &Path, path: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(
            name,
            "node_modules" | "target" | ".terraform" | "__pycache__"
        ) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            collect_files(root, &entry, out)?;
        }
        return Ok(());
    }
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let skipped = [".lock", ".md", "package-lock.json"];
    if skipped.iter().any(|suffix| relative.ends_with(suffix)) {
        return Ok(());
    }
    // Binary or non-UTF-8 files are not authored text.
    if let Ok(text) = std::fs::read_to_string(path) {
        out.insert(relative, text);
    }
    Ok(())
}
