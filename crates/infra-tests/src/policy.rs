//! IAM policy documents: their statements, and what the AWS Service
//! Authorization Reference says about the actions they name.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every statement of an IAM-style policy document (a JSON string or value).
pub fn policy_statements(document: &Value) -> Vec<Value> {
    let parsed = match document {
        Value::String(text) => serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("policy is not JSON ({e}): {text}")),
        other => other.clone(),
    };
    match &parsed["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![parsed["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// A policy field (`Action`, `Resource`) as a list of strings.
pub fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// What the AWS Service Authorization Reference says about each action the
/// bootstrap's policies name: `service-authorization.json`, written by
/// `service_authorization.py` (which says how to regenerate it).
#[derive(Debug, Deserialize)]
pub struct ServiceAuthorization {
    /// Where the extract comes from.
    pub source: String,
    /// A wildcard action (`ec2:Describe*`) and how many actions it matches.
    pub wildcards: BTreeMap<String, usize>,
    pub actions: BTreeMap<String, ActionAuthorization>,
}

/// One action: the condition keys of its request, whatever the resource, and
/// the resource types it is authorized on.
#[derive(Debug, Deserialize)]
pub struct ActionAuthorization {
    pub condition_keys: Vec<String>,
    pub resource_types: BTreeMap<String, ResourceType>,
}

/// A resource type an action is authorized on: its ARN template, whether
/// every request names one, and the condition keys that apply to it.
#[derive(Debug, Deserialize)]
pub struct ResourceType {
    pub arn: String,
    pub required: bool,
    pub condition_keys: Vec<String>,
}

impl ServiceAuthorization {
    pub fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("service-authorization.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not the expected JSON: {e}", path.display()))
    }
}

impl ActionAuthorization {
    /// The condition keys that apply when `resource` (an ARN pattern of a
    /// policy, or `*`) is what the action is authorized on.
    pub fn condition_keys_for(&self, resource: &str) -> BTreeSet<&str> {
        let mut keys: BTreeSet<&str> = self.condition_keys.iter().map(String::as_str).collect();
        for kind in self.resource_types.values() {
            if resource_matches_type(resource, &kind.arn) {
                keys.extend(kind.condition_keys.iter().map(String::as_str));
            }
        }
        keys
    }
}

/// A condition key as the reference writes it: `aws:RequestTag/Project` is
/// `aws:RequestTag/${TagKey}`.
pub fn reference_condition_key(key: &str) -> String {
    for tag in ["aws:RequestTag/", "aws:ResourceTag/"] {
        if key.starts_with(tag) {
            return format!("{tag}${{TagKey}}");
        }
    }
    key.to_owned()
}

/// Whether a policy's resource pattern can name a resource of the type
/// whose ARN template is `template`, judged by the resource part's first
/// segment (`vpc` of `…:vpc/*`, where `…:*` matches every type); a
/// placeholder on either side matches all.
pub fn resource_matches_type(resource: &str, template: &str) -> bool {
    if resource == "*" {
        return true;
    }
    match (arn_segment(resource), arn_segment(template)) {
        (Some(pattern), Some(kind)) => match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => pattern == kind,
        },
        _ => true,
    }
}

/// The first segment of an ARN's resource part, `None` when it is an
/// interpolation or placeholder (`${…}`), as in an SNS topic name.
fn arn_segment(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let first = resource.split(['/', ':']).next().unwrap_or("");
    (!first.starts_with("${")).then_some(first)
}
