//! Typed readers of the committed renders: `infra/<env>/main.tf.json` (Terraform JSON) and
//! `northflank/template.json`. Only the fields the report reads are named; the rest is ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Number, Value};

use super::files;

/// The AWS environments, in the order the tables show them.
pub const AWS_ENVIRONMENTS: [&str; 2] = ["production", "staging"];
/// Every Terraform render the report reads.
pub const TERRAFORM_RENDERS: [&str; 3] = [
    "infra/production/main.tf.json",
    "infra/staging/main.tf.json",
    "infra/bootstrap/main.tf.json",
];
/// The Northflank template.
pub const TEMPLATE: &str = "northflank/template.json";

/// `infra/<name>/main.tf.json`.
pub fn terraform_path(name: &str) -> String {
    format!("infra/{name}/main.tf.json")
}

/// The configuration name of a Terraform render path (`infra/staging/main.tf.json` → `staging`).
pub fn configuration(path: &str) -> &str {
    path.split('/').nth(1).unwrap_or(path)
}

/// One Terraform JSON render: resource bodies stay JSON until a typed view asks for them.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Terraform {
    #[serde(default)]
    pub resource: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(default)]
    pub variable: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    pub output: BTreeMap<String, Output>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Output {
    #[serde(default)]
    pub value: Option<Value>,
}

impl Terraform {
    /// How many resources of each type.
    pub fn counts_by_type(&self) -> BTreeMap<String, u64> {
        self.resource
            .iter()
            .map(|(kind, named)| (kind.clone(), named.len() as u64))
            .collect()
    }

    pub fn resource_count(&self) -> usize {
        self.resource.values().map(BTreeMap::len).sum()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.resource.get(kind).map_or(0, BTreeMap::len)
    }

    /// The resources of one type, read as `T` (a typed view of the fields a figure needs).
    pub fn resources<T: DeserializeOwned>(&self, kind: &str) -> Result<BTreeMap<String, T>> {
        self.resource
            .get(kind)
            .into_iter()
            .flatten()
            .map(|(name, body)| {
                let typed = T::deserialize(body)
                    .with_context(|| format!("resource {kind}.{name} has an unexpected shape"))?;
                Ok((name.clone(), typed))
            })
            .collect()
    }

    /// `kind.name` → body, for comparing two renders address by address.
    pub fn addresses(&self) -> BTreeMap<String, &Value> {
        self.resource
            .iter()
            .flat_map(|(kind, named)| {
                named
                    .iter()
                    .map(move |(name, body)| (format!("{kind}.{name}"), body))
            })
            .collect()
    }

    /// A string output (`output.<name>.value`), empty when absent.
    pub fn output_text(&self, name: &str) -> &str {
        self.output
            .get(name)
            .and_then(|o| o.value.as_ref())
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// `northflank/template.json`: the root workflow and its arguments.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Template {
    #[serde(default)]
    pub spec: Option<Node>,
    #[serde(default)]
    pub arguments: BTreeMap<String, IgnoredAny>,
}

/// A node of the template: a workflow, a condition or a platform object.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Node {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub spec: NodeSpec,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct NodeSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub steps: Vec<Node>,
    #[serde(default)]
    pub billing: Option<Billing>,
    #[serde(default)]
    pub deployment: Option<Deployment>,
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
    /// A job run's time limit.
    #[serde(default, rename = "activeDeadlineSeconds")]
    pub active_deadline_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Autoscaling {
    #[serde(default)]
    pub horizontal: Option<HorizontalAutoscaling>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalAutoscaling {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
    #[serde(default)]
    pub cpu: Option<CpuThreshold>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CpuThreshold {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub threshold_percentage: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Billing {
    #[serde(default, rename = "deploymentPlan")]
    pub deployment_plan: Option<String>,
    /// Addon storage in MiB.
    #[serde(default)]
    pub storage: Option<Number>,
    #[serde(default)]
    pub replicas: Option<Number>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Deployment {
    #[serde(default)]
    pub instances: Option<u64>,
}

impl Node {
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("?")
    }

    /// The name the platform shows: `spec.name`, else the node's `ref`.
    pub fn name(&self) -> &str {
        self.spec
            .name
            .as_deref()
            .or(self.reference.as_deref())
            .unwrap_or("?")
    }
}

impl Template {
    /// The root workflow and every step under it, depth first.
    pub fn nodes(&self) -> Vec<&Node> {
        fn walk<'a>(node: &'a Node, out: &mut Vec<&'a Node>) {
            out.push(node);
            for step in &node.spec.steps {
                walk(step, out);
            }
        }
        let mut out = Vec::new();
        if let Some(root) = self.spec.as_ref().filter(|n| n.kind.is_some()) {
            walk(root, &mut out);
        }
        out
    }

    /// Node kind → how many.
    pub fn kinds(&self) -> BTreeMap<String, i64> {
        let mut kinds = BTreeMap::new();
        for node in self.nodes() {
            *kinds.entry(node.kind().to_owned()).or_default() += 1;
        }
        kinds
    }

    /// The nodes the platform bills: those with a deployment plan.
    pub fn billed(&self) -> impl Iterator<Item = (&Node, &Billing, &str)> {
        self.nodes().into_iter().filter_map(|node| {
            let billing = node.spec.billing.as_ref()?;
            let plan = billing.deployment_plan.as_deref()?;
            Some((node, billing, plan))
        })
    }
}

/// Every committed render, read once: the text (for line counts and declared skips) and the
/// typed view.
#[derive(Debug, Clone)]
pub struct Renders {
    pub terraform: BTreeMap<&'static str, TerraformFile>,
    pub template: TemplateFile,
}

#[derive(Debug, Clone)]
pub struct TerraformFile {
    pub text: String,
    pub raw: Value,
    pub parsed: Terraform,
}

#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub text: String,
    pub parsed: Template,
}

impl Renders {
    pub fn load(root: &Path) -> Result<Self> {
        let terraform = TERRAFORM_RENDERS
            .iter()
            .map(|path| Ok((*path, TerraformFile::load(root, path)?)))
            .collect::<Result<_>>()?;
        let text = files::read_text(root, TEMPLATE)?;
        let parsed = serde_json::from_str(&text)
            .with_context(|| format!("{TEMPLATE} is not a Northflank template"))?;
        Ok(Self {
            terraform,
            template: TemplateFile { text, parsed },
        })
    }

    /// The render of `infra/<name>/main.tf.json` (`production`, `staging`, `bootstrap`).
    pub fn environment(&self, name: &str) -> &Terraform {
        &self.terraform[terraform_path(name).as_str()].parsed
    }
}

impl TerraformFile {
    fn load(root: &Path, path: &str) -> Result<Self> {
        let text = files::read_text(root, path)?;
        let raw: Value =
            serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
        let parsed = Terraform::deserialize(&raw)
            .with_context(|| format!("{path} is not Terraform JSON"))?;
        Ok(Self { text, raw, parsed })
    }
}
