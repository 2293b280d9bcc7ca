//! The rendered template file, its arguments and its id.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::wire::StoredTemplate;

/// Top-level fields that make up the template's content; the rest (id,
/// timestamps, GitOps link) is bookkeeping Northflank adds.
const CONTENT: [&str; 6] = [
    "apiVersion",
    "name",
    "description",
    "arguments",
    "options",
    "spec",
];

pub struct Template {
    pub value: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadTemplate {
            path: path.to_owned(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| Error::ParseTemplate {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: &str| Error::InvalidTemplate {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let object = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object"))?;
        if object.get("apiVersion").and_then(Value::as_str).is_none() {
            return Err(invalid("no `apiVersion`"));
        }
        if object
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid("no `name`"));
        }
        if !object.get("spec").is_some_and(Value::is_object) {
            return Err(invalid("no `spec` object"));
        }
        Ok(Self { value })
    }

    pub fn name(&self) -> &str {
        self.value["name"].as_str().unwrap_or_default()
    }

    /// The id Northflank derives from the name: lower case, words joined by `-`.
    pub fn default_id(&self) -> String {
        self.name()
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The declared arguments and their defaults.
    fn declared(&self) -> Map<String, Value> {
        self.value["arguments"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// Checks `NAME=VALUE` pairs against the declared arguments: every name
    /// declared, none twice, and every argument without a default given.
    pub fn arguments(&self, pairs: &[String]) -> Result<Map<String, Value>, Error> {
        let declared = self.declared();
        let mut given = Map::new();
        for pair in pairs {
            let bad = |reason: String| Error::BadArgument {
                arg: pair.clone(),
                reason,
            };
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("expected NAME=VALUE".to_owned()))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("NAME must be letters, digits and `_`".to_owned()));
            }
            if !declared.contains_key(name) {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "the template declares no argument `{name}` (it declares: {})",
                    known.join(", ")
                )));
            }
            if given
                .insert(name.to_owned(), Value::String(value.to_owned()))
                .is_some()
            {
                return Err(bad(format!("`{name}` is given twice")));
            }
        }
        let missing: Vec<String> = declared
            .iter()
            .filter(|(name, default)| !given.contains_key(*name) && default.as_str() == Some(""))
            .map(|(name, _)| name.clone())
            .collect();
        if missing.is_empty() {
            Ok(given)
        } else {
            Err(Error::MissingArguments(missing))
        }
    }

    /// The content to compare with what Northflank has.
    pub fn content(&self) -> Value {
        let fields = self.value.as_object().cloned().unwrap_or_default();
        content(&fields, None)
    }
}

impl StoredTemplate {
    /// The content fields of the template Northflank holds, in the shape of the file.
    pub fn content(&self) -> Value {
        content(&self.fields, self.concurrency_policy.as_deref())
    }
}

/// The content fields, with a `concurrencyPolicy` reported beside `options` put
/// back inside, where the file has it.
fn content(fields: &Map<String, Value>, concurrency_policy: Option<&str>) -> Value {
    let mut object: Map<String, Value> = CONTENT
        .iter()
        .filter_map(|key| fields.get(*key).map(|v| ((*key).to_owned(), v.clone())))
        .collect();
    if let Some(policy) = concurrency_policy
        && let Some(Value::Object(options)) = object.get_mut("options")
    {
        options
            .entry("concurrencyPolicy")
            .or_insert_with(|| Value::from(policy));
    }
    Value::Object(object)
}
