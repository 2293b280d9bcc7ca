//! Axis "DSL: what you author": authored lines per target and part.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::files::collect_files;
use super::table::{Table, bold};

/// Where authored files are looked for.
const AUTHORED_ROOTS: [&str; 8] = [
    "services.toml",
    "flake.nix",
    "nix",
    "crates/northflank",
    "crates/infra-tests",
    "tools/northflank-types",
    ".github/workflows",
    "scripts",
];

const HOW: &str = "non-blank lines that are not only a comment (#, //, /* */), per file under services.toml, flake.nix, nix/, crates/northflank, crates/infra-tests, tools/northflank-types (not node_modules, lock files or Markdown), .github/workflows, scripts/; the application crates (api, web, migrate, service-kit, catalog, test-postgres) and xtask are the same on both targets and not counted";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authored {
    pub how: String,
    pub parts: Vec<Part>,
    /// Path → code lines.
    pub files: BTreeMap<String, u64>,
}

/// One part of one target (`aws`, `northflank`, or `both`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub target: String,
    pub part: String,
    pub files: u64,
    pub lines: u64,
}

/// A target's totals: files, lines, lines outside tests.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    files: u64,
    lines: u64,
    without_tests: u64,
}

impl Authored {
    pub fn compute(root: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        for start in AUTHORED_ROOTS {
            collect_files(root, &root.join(start), &mut files)?;
        }
        let mut parts: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        let mut per_file = BTreeMap::new();
        for (path, text) in &files {
            let Some((target, part)) = classify(path) else {
                continue;
            };
            let lines = code_lines(path, text);
            let entry = parts.entry((target, part)).or_default();
            entry.0 += 1;
            entry.1 += lines;
            per_file.insert(path.clone(), lines);
        }
        let parts = parts
            .into_iter()
            .map(|((target, part), (files, lines))| Part {
                target: target.to_owned(),
                part: part.to_owned(),
                files,
                lines,
            })
            .collect();
        Ok(Self {
            how: HOW.to_owned(),
            parts,
            files: per_file,
        })
    }

    fn totals(&self) -> BTreeMap<&str, Totals> {
        let mut totals: BTreeMap<&str, Totals> = BTreeMap::new();
        for part in &self.parts {
            let total = totals.entry(&part.target).or_default();
            total.files += part.files;
            total.lines += part.lines;
            if !part.part.starts_with("tests") {
                total.without_tests += part.lines;
            }
        }
        totals
    }

    pub fn table(&self) -> String {
        let totals = self.totals();
        let mut table = Table::new(["target", "what", "files", "lines"]);
        for p in &self.parts {
            table.row([
                p.target.clone(),
                p.part.clone(),
                p.files.to_string(),
                p.lines.to_string(),
            ]);
        }
        for (target, t) in &totals {
            table.row([
                bold(target),
                format!("**total** ({} without tests)", t.without_tests),
                bold(t.files),
                bold(t.lines),
            ]);
        }
        let mut out = table.render();
        if let (Some(aws), Some(nf)) = (totals.get("aws"), totals.get("northflank"))
            && nf.lines > 0
            && nf.without_tests > 0
        {
            let _ = writeln!(
                out,
                "\nAWS / Northflank authored lines: {:.1}× without tests, {:.1}× with tests.",
                aws.without_tests as f64 / nf.without_tests as f64,
                aws.lines as f64 / nf.lines as f64
            );
        }
        out
    }

    /// Authored lines without tests of one target, for the README summary.
    pub fn without_tests(&self, target: &str) -> u64 {
        self.totals().get(target).map_or(0, |t| t.without_tests)
    }
}

const TESTS_NORTHFLANK: &str =
    "tests (crates/northflank/tests, nix/northflank/tests.nix, tools/northflank-types)";
const TESTS_AWS: &str = "tests (nix/tests, crates/infra-tests)";
const NORTHFLANK_TOOLING: &str = "Rust tooling (crates/northflank/src)";
const SHARED_NIX: &str =
    "shared Nix: catalog reader, renderer, images, apps, checks (nix/*.nix, flake.nix)";

/// Which part of the comparison a file belongs to, or `None` when it is the same on both
/// targets and not infrastructure (the application crates, xtask). First matching prefix wins.
pub fn classify(path: &str) -> Option<(&'static str, &'static str)> {
    let rules: &[(&str, &str, &str)] = &[
        ("nix/aws/", "aws", "terranix modules (nix/aws)"),
        ("nix/bootstrap/", "aws", "bootstrap modules (nix/bootstrap)"),
        ("nix/lambda.nix", "aws", "Lambda packaging (nix/lambda.nix)"),
        ("nix/tests/", "aws", TESTS_AWS),
        ("crates/infra-tests/", "aws", TESTS_AWS),
        ("nix/northflank/tests.nix", "northflank", TESTS_NORTHFLANK),
        (
            "nix/northflank/",
            "northflank",
            "template module (nix/northflank)",
        ),
        ("crates/northflank/src/", "northflank", NORTHFLANK_TOOLING),
        ("crates/northflank/tests/", "northflank", TESTS_NORTHFLANK),
        ("crates/northflank/", "northflank", NORTHFLANK_TOOLING),
        ("tools/northflank-types/", "northflank", TESTS_NORTHFLANK),
        ("services.toml", "both", "catalog (services.toml)"),
        ("nix/", "both", SHARED_NIX),
        ("flake.nix", "both", SHARED_NIX),
        (
            ".github/workflows/",
            "both",
            "CI/CD workflows (.github/workflows)",
        ),
        ("scripts/", "both", "scripts (scripts/)"),
    ];
    rules
        .iter()
        .find(|(prefix, _, _)| {
            path == *prefix || (prefix.ends_with('/') && path.starts_with(prefix))
        })
        .map(|(_, target, part)| (*target, *part))
}

/// Non-blank lines that are not only a comment. Line comments by extension (`#` for Nix,
/// TOML, YAML, shell, Python; `//` for Rust, JavaScript, JSON with comments); `/* */` blocks in
/// Nix, Rust and JavaScript.
pub fn code_lines(path: &str, text: &str) -> u64 {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    let (line_comment, block): (&str, bool) = match extension {
        "nix" => ("#", true),
        "rs" | "js" | "mjs" | "ts" => ("//", true),
        "json" => ("//", false),
        _ => ("#", false),
    };
    let mut in_block = false;
    let mut count = 0;
    for line in text.lines() {
        let (code, still_in_block) = scan_line(line.trim(), line_comment, block, in_block);
        in_block = still_in_block;
        if code {
            count += 1;
        }
    }
    count
}

/// Whether a trimmed line holds code, and whether a `/* */` block is still open after it.
fn scan_line(mut rest: &str, line_comment: &str, block: bool, mut in_block: bool) -> (bool, bool) {
    while !rest.is_empty() {
        if in_block {
            match rest.find("*/") {
                Some(end) => {
                    in_block = false;
                    rest = rest[end + 2..].trim_start();
                }
                None => rest = "",
            }
        } else if block && rest.starts_with("/*") {
            in_block = true;
            rest = &rest[2..];
        } else if rest.starts_with(line_comment) {
            rest = "";
        } else {
            return (true, in_block);
        }
    }
    (false, in_block)
}
