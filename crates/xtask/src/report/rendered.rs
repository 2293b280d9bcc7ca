//! Axis "DSL: what is rendered": lines and contents of each committed render.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::render::{Renders, TEMPLATE};
use super::table::{Table, code};

const HOW: &str = "lines of each committed render (canonical JSON, `jq -S .`); resources = `resource.<type>.<name>` entries; nodes = the root workflow and every step under it";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    pub how: String,
    pub files: BTreeMap<String, RenderedFile>,
}

/// Terraform renders count resources, variables and outputs; the template nodes and arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedFile {
    pub lines: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<usize>,
}

impl Rendered {
    pub fn compute(renders: &Renders) -> Self {
        let mut files: BTreeMap<String, RenderedFile> = renders
            .terraform
            .iter()
            .map(|(path, file)| {
                let entry = RenderedFile {
                    lines: file.text.lines().count(),
                    resources: Some(file.parsed.resource_count()),
                    variables: Some(file.parsed.variable.len()),
                    outputs: Some(file.parsed.output.len()),
                    nodes: None,
                    arguments: None,
                };
                ((*path).to_owned(), entry)
            })
            .collect();
        let template = &renders.template;
        files.insert(
            TEMPLATE.to_owned(),
            RenderedFile {
                lines: template.text.lines().count(),
                resources: None,
                variables: None,
                outputs: None,
                nodes: Some(template.parsed.nodes().len()),
                arguments: Some(template.parsed.arguments.len()),
            },
        );
        Self {
            how: HOW.to_owned(),
            files,
        }
    }

    pub fn table(&self) -> String {
        let mut table = Table::new(["rendered file", "lines", "contents"]);
        for (path, e) in &self.files {
            let contents = match e.nodes {
                Some(nodes) => format!("{nodes} nodes, {} arguments", e.arguments.unwrap_or(0)),
                None => format!(
                    "{} resources, {} variables, {} outputs",
                    e.resources.unwrap_or(0),
                    e.variables.unwrap_or(0),
                    e.outputs.unwrap_or(0)
                ),
            };
            table.row([code(path), e.lines.to_string(), contents]);
        }
        table.render()
    }
}
