//! `cargo xtask report`: the figures of `docs/comparison.md`, recomputed from the repository.
//!
//! Writes `docs/figures.json` and regenerates the tables between the
//! `<!-- figures:NAME -->` / `<!-- /figures:NAME -->` markers of `docs/comparison.md`
//! (the prose around them is hand-written). `--check` writes nothing and fails with a diff
//! when the committed files differ from a fresh run.
//!
//! One module per axis of the document, each computing a typed figure and rendering its own
//! tables: [`setup`], [`authored`], [`rendered`], [`structure`], [`maintainability`],
//! [`security`], [`sizes`], [`benchmarks`], [`cost`]. Shared: [`render`] (typed readers of the
//! renders), [`table`] (the markdown writer), [`diff`], [`files`], [`document`].
//!
//! Three kinds of figures:
//! - **files**: read from the repository alone (authored and rendered lines, resources per
//!   environment, Northflank nodes, setup settings, declared checkov skips, sizes, benchmarks).
//!   Always recomputed, in both modes.
//! - **render**: the diff a throwaway catalog entry produces on both targets. Needs an offline
//!   Nix evaluation (`nix-instantiate` with nixpkgs' lib and terranix trees: `--nixpkgs-lib`,
//!   `--terranix`); without them the committed values are kept (and so not compared).
//! - **security**: checkov on offline Terraform plans and zizmor on the workflows. Slow (an
//!   init and a plan per environment); recomputed with `--security`, or when writing and the
//!   tools are installed; otherwise the committed values are kept (and so not compared).

pub mod authored;
pub mod benchmarks;
pub mod cost;
pub mod diff;
pub mod document;
pub mod files;
pub mod maintainability;
pub mod render;
pub mod rendered;
pub mod security;
pub mod setup;
pub mod sizes;
pub mod structure;
pub mod table;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub use authored::{classify, code_lines};
pub use benchmarks::BENCHMARKS;
pub use diff::{diff_text, line_changes};
pub use document::fill_document;
pub use files::canonical_json;
pub use maintainability::{THROWAWAY_ENTRY, Trees};
pub use setup::{bootstrap_settings, workflow_settings};
pub use structure::concern;

use authored::Authored;
use benchmarks::{Benchmarks, Results};
use cost::CostFigures;
use maintainability::RenderFigures;
use render::Renders;
use rendered::Rendered;
use security::{CheckovSkips, SecurityFigures};
use setup::Setup;
use sizes::Sizes;
use structure::{NorthflankNodes, Resources};

/// Where the figures go, relative to the root.
pub const FIGURES: &str = "docs/figures.json";
/// The document whose marked tables are regenerated.
pub const DOCUMENT: &str = "docs/comparison.md";

/// Every figure of the document: `docs/figures.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    pub generated_by: String,
    pub authored: Authored,
    pub rendered: Rendered,
    pub resources: Resources,
    pub northflank_nodes: NorthflankNodes,
    pub setup: Setup,
    pub checkov_skips: CheckovSkips,
    pub sizes: Sizes,
    pub benchmarks: Benchmarks,
    pub render: RenderFigures,
    pub security: SecurityFigures,
    pub cost: CostFigures,
}

/// The slow figures as committed, to keep when they are not recomputed.
#[derive(Debug, Default, Deserialize)]
struct Committed {
    #[serde(default)]
    render: Option<RenderFigures>,
    #[serde(default)]
    security: Option<SecurityFigures>,
}

/// Whether to run checkov and zizmor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Run them; fail when one is missing.
    Run,
    /// Run them when installed (terraform, its provider mirror, checkov, zizmor).
    IfInstalled,
    /// Keep the committed values.
    Keep,
}

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub root: PathBuf,
    pub check: bool,
    pub trees: Option<Trees>,
    pub security: Security,
}

/// Flags of `cargo xtask report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Write nothing; exit non-zero with a diff when docs/figures.json or the tables of
    /// docs/comparison.md differ from a fresh run.
    #[arg(long)]
    pub check: bool,
    /// nixpkgs (or nixpkgs-lib) source tree: with --terranix, recompute the render figures.
    #[arg(long, requires = "terranix", value_name = "DIR")]
    pub nixpkgs_lib: Option<PathBuf>,
    /// terranix source tree: with --nixpkgs-lib, recompute the render figures.
    #[arg(long, requires = "nixpkgs_lib", value_name = "DIR")]
    pub terranix: Option<PathBuf>,
    /// Run checkov (on offline terraform plans) and zizmor; fail when one is missing. Default:
    /// when writing, run them if installed; with --check, keep the committed values.
    #[arg(long, conflicts_with = "no_security")]
    pub security: bool,
    /// Keep the committed checkov/zizmor figures.
    #[arg(long)]
    pub no_security: bool,
    /// Repository root (default: this workspace).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `cargo xtask report`: an error when `--check` finds drift.
pub fn run_args(args: ReportArgs) -> Result<()> {
    let security = if args.security {
        Security::Run
    } else if args.no_security || args.check {
        Security::Keep
    } else {
        Security::IfInstalled
    };
    let options = ReportOptions {
        root: args.root.unwrap_or_else(crate::workspace_root),
        check: args.check,
        trees: args
            .nixpkgs_lib
            .zip(args.terranix)
            .map(|(nixpkgs_lib, terranix)| Trees {
                nixpkgs_lib,
                terranix,
            }),
        security,
    };
    if !run(&options)? {
        bail!("the committed figures differ from a fresh run (diff above)");
    }
    Ok(())
}

/// Runs the report. `Ok(true)`: written, or up to date; `Ok(false)`: `--check` found drift
/// (the diff is printed).
pub fn run(options: &ReportOptions) -> Result<bool> {
    let root = &options.root;
    let committed_text = files::read_optional(&root.join(FIGURES))?;
    let committed: Committed = match &committed_text {
        Some(text) => serde_json::from_str(text).with_context(|| {
            format!(
                "{FIGURES}: the committed render or security figures are not in the expected shape"
            )
        })?,
        None => Committed::default(),
    };
    let figures = compute(options, committed)?;
    let figures_text = canonical_json(&serde_json::to_value(&figures)?);
    let document = files::read_text(root, DOCUMENT)?;
    let regenerated = fill_document(&document, &figures)?;
    if options.check {
        return Ok(check(
            committed_text.as_deref().unwrap_or_default(),
            &figures_text,
            &document,
            &regenerated,
        ));
    }
    std::fs::write(root.join(FIGURES), &figures_text)
        .with_context(|| format!("cannot write {FIGURES}"))?;
    std::fs::write(root.join(DOCUMENT), &regenerated)
        .with_context(|| format!("cannot write {DOCUMENT}"))?;
    println!("wrote {FIGURES} and the tables of {DOCUMENT}");
    Ok(true)
}

/// Every figure: the file figures fresh, the slow ones fresh or carried.
fn compute(options: &ReportOptions, committed: Committed) -> Result<Figures> {
    let root = &options.root;
    let renders = Renders::load(root)?;
    let sizes = Sizes::compute(root, &renders)?;
    let results = Results::read(root)?;
    Ok(Figures {
        generated_by: "cargo xtask report (crates/xtask/src/report/)".to_owned(),
        authored: Authored::compute(root)?,
        rendered: Rendered::compute(&renders),
        resources: Resources::compute(&renders),
        northflank_nodes: NorthflankNodes::compute(&renders),
        setup: Setup::compute(root, renders.environment("bootstrap"))?,
        checkov_skips: CheckovSkips::compute(&renders),
        benchmarks: Benchmarks::compute(results.as_ref()),
        cost: CostFigures::compute(root, &renders, results.as_ref())?,
        sizes,
        render: render_figures(options, committed.render)?,
        security: security_figures(options, &renders, committed.security)?,
    })
}

fn render_figures(
    options: &ReportOptions,
    committed: Option<RenderFigures>,
) -> Result<RenderFigures> {
    if let Some(trees) = &options.trees {
        return RenderFigures::compute(&options.root, trees);
    }
    eprintln!(
        "report: render figures kept from the committed file: give --nixpkgs-lib and --terranix to recompute and compare them"
    );
    Ok(committed.unwrap_or(RenderFigures::NotComputed))
}

fn security_figures(
    options: &ReportOptions,
    renders: &Renders,
    committed: Option<SecurityFigures>,
) -> Result<SecurityFigures> {
    let run = match options.security {
        Security::Run => true,
        Security::IfInstalled => {
            let missing = security::missing_tools();
            if !missing.is_empty() {
                eprintln!(
                    "report: security figures kept from the committed file ({} not found)",
                    missing.join(", ")
                );
            }
            missing.is_empty()
        }
        Security::Keep => {
            eprintln!(
                "report: security figures kept from the committed file: give --security to recompute and compare them"
            );
            false
        }
    };
    if run {
        return SecurityFigures::compute(&options.root, renders);
    }
    Ok(committed.unwrap_or(SecurityFigures::NotComputed))
}

/// Prints what differs; `true` when nothing does.
fn check(old_figures: &str, figures: &str, old_document: &str, document: &str) -> bool {
    let mut fresh = true;
    for (path, old, new) in [
        (FIGURES, old_figures, figures),
        (DOCUMENT, old_document, document),
    ] {
        if old != new {
            println!("{path} differs from a fresh run:\n{}", diff_text(old, new));
            fresh = false;
        }
    }
    if fresh {
        println!("{FIGURES} and the tables of {DOCUMENT} are up to date");
    } else {
        println!("figures are out of date: run `cargo xtask report` and commit the result");
    }
    fresh
}
