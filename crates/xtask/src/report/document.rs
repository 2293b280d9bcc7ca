//! The generated blocks of `docs/comparison.md`: each `<!-- figures:NAME -->` …
//! `<!-- /figures:NAME -->` holds the table NAME, rendered by the module of its axis.

use anyhow::{Context, Result, bail};

use super::{DOCUMENT, Figures};

const OPEN: &str = "<!-- figures:";

/// Replaces the body of every figures block with the table of that name.
pub fn fill_document(document: &str, figures: &Figures) -> Result<String> {
    let mut out = String::new();
    let mut rest = document;
    while let Some(start) = rest.find(OPEN) {
        let open_end = rest[start..]
            .find("-->")
            .map(|i| start + i + 3)
            .context("unterminated figures marker")?;
        let name = rest[start + OPEN.len()..open_end - 3].trim();
        let close = format!("<!-- /figures:{name} -->");
        let close_at = rest[open_end..]
            .find(&close)
            .map(|i| open_end + i)
            .with_context(|| format!("{DOCUMENT}: no {close}"))?;
        out.push_str(&rest[..open_end]);
        out.push('\n');
        out.push_str(&figures.table(name)?);
        out.push_str(&close);
        rest = &rest[close_at + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Figures {
    /// The table named by a figures marker.
    pub fn table(&self, name: &str) -> Result<String> {
        Ok(match name {
            "setup" => self.setup.table(),
            "authored" => self.authored.table(),
            "rendered" => self.rendered.table(),
            "resources" => self.resources.types_table(),
            "concerns" => self.resources.concerns_table(),
            "nodes" => self.northflank_nodes.table(),
            "diff" => self.render.table(),
            "skips" => self.checkov_skips.table(),
            "security" => self.security.table(),
            "sizes" => self.sizes.table(),
            "benchmarks" => self.benchmarks.table(&self.sizes),
            "cost" => self.cost.table(),
            "cost-choices" => self.cost.choices_table(),
            other => bail!("{DOCUMENT}: unknown figures table `{other}`"),
        })
    }
}
