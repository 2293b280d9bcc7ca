//! A plan as `terraform show -json` prints it: the parts the property tests
//! query, typed (planned resources, configured references, changes), and the
//! whole document for anything else.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A plan as `terraform show -json` prints it.
pub struct Plan {
    /// The whole document.
    pub json: Value,
    model: ShowJson,
}

/// One planned resource: its address, type, and planned (known) values.
#[derive(Debug, Clone, Deserialize)]
pub struct Planned {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub values: Value,
}

#[derive(Deserialize)]
struct ShowJson {
    planned_values: PlannedValues,
    configuration: Configuration,
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
}

#[derive(Deserialize)]
struct PlannedValues {
    root_module: PlannedModule,
}

#[derive(Deserialize)]
struct PlannedModule {
    #[serde(default)]
    resources: Vec<Planned>,
}

#[derive(Deserialize)]
struct Configuration {
    root_module: ConfiguredModule,
}

#[derive(Deserialize)]
struct ConfiguredModule {
    #[serde(default)]
    resources: Vec<ConfiguredResource>,
}

/// A resource as configured: for each attribute, the expression's
/// references (nested blocks are lists of expressions, which name none here).
#[derive(Deserialize)]
struct ConfiguredResource {
    address: String,
    #[serde(default)]
    expressions: BTreeMap<String, Expression>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expression {
    Attribute {
        #[serde(default)]
        references: Vec<String>,
    },
    Blocks(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct ResourceChange {
    address: String,
    change: Change,
}

#[derive(Deserialize)]
struct Change {
    actions: Vec<String>,
}

impl Plan {
    /// Parses `terraform show -json` output.
    pub fn parse(text: &str) -> Self {
        let json: Value = serde_json::from_str(text).expect("terraform show -json prints JSON");
        let model = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("terraform show -json: unexpected shape: {e}"));
        Plan { json, model }
    }

    /// Every planned resource of the root module, by address.
    pub fn resources(&self) -> BTreeMap<String, Planned> {
        self.model
            .planned_values
            .root_module
            .resources
            .iter()
            .map(|r| (r.address.clone(), r.clone()))
            .collect()
    }

    pub fn of_type(&self, kind: &str) -> Vec<Planned> {
        self.resources()
            .into_values()
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// Planned values of `address`; panics if it is not planned.
    pub fn values(&self, address: &str) -> Value {
        self.resources()
            .remove(address)
            .unwrap_or_else(|| panic!("{address} is not in the plan"))
            .values
    }

    /// The configuration's references for `attribute` of `address`
    /// (e.g. `["aws_security_group.database.id", "aws_security_group.database"]`):
    /// what an attribute unknown until apply will point at.
    pub fn references(&self, address: &str, attribute: &str) -> Vec<String> {
        let resource = self
            .model
            .configuration
            .root_module
            .resources
            .iter()
            .find(|r| r.address == address)
            .unwrap_or_else(|| panic!("{address} is not in the configuration"));
        match resource.expressions.get(attribute) {
            Some(Expression::Attribute { references }) => references.clone(),
            _ => Vec::new(),
        }
    }

    /// Every resource change's action list, by address (`["create"]`, …).
    pub fn actions(&self) -> BTreeMap<String, Vec<String>> {
        self.model
            .resource_changes
            .iter()
            .map(|c| (c.address.clone(), c.change.actions.clone()))
            .collect()
    }
}
