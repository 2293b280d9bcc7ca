//! A structural diff of two templates, readable like `terraform plan`.
//!
//! Arrays whose elements all carry a distinct `ref` (template nodes) are
//! matched by ref, so adding a node reads as one addition, not as every later
//! step changing.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added {
        path: String,
        value: Value,
    },
    Removed {
        path: String,
        value: Value,
    },
    Changed {
        path: String,
        from: Value,
        to: Value,
    },
}

/// What turns `deployed` into `rendered`.
pub fn diff(deployed: &Value, rendered: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", deployed, rendered, &mut changes);
    changes
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let here = join(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&here, x, y, out),
                    (Some(x), None) => out.push(Change::Removed {
                        path: here,
                        value: x.clone(),
                    }),
                    (None, Some(y)) => out.push(Change::Added {
                        path: here,
                        value: y.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => match (refs(a), refs(b)) {
            (Some(ra), Some(rb)) => by_ref(path, a, &ra, b, &rb, out),
            _ => by_index(path, a, b, out),
        },
        _ if old != new => out.push(Change::Changed {
            path: path.to_owned(),
            from: old.clone(),
            to: new.clone(),
        }),
        _ => {}
    }
}

fn by_index(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    for i in 0..a.len().max(b.len()) {
        let here = format!("{path}[{i}]");
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => walk(&here, x, y, out),
            (Some(x), None) => out.push(Change::Removed {
                path: here,
                value: x.clone(),
            }),
            (None, Some(y)) => out.push(Change::Added {
                path: here,
                value: y.clone(),
            }),
            (None, None) => {}
        }
    }
}

fn by_ref(path: &str, a: &[Value], ra: &[&str], b: &[Value], rb: &[&str], out: &mut Vec<Change>) {
    let label = |r: &str| format!("{path}[{r}]");
    for (x, r) in a.iter().zip(ra) {
        match rb.iter().position(|s| s == r) {
            Some(j) => walk(&label(r), x, &b[j], out),
            None => out.push(Change::Removed {
                path: label(r),
                value: x.clone(),
            }),
        }
    }
    for (y, r) in b.iter().zip(rb) {
        if !ra.contains(r) {
            out.push(Change::Added {
                path: label(r),
                value: y.clone(),
            });
        }
    }
    let common = |from: &[&str], other: &[&str]| -> Vec<Value> {
        from.iter()
            .filter(|r| other.contains(r))
            .map(|r| Value::String((*r).to_owned()))
            .collect()
    };
    let (before, after) = (common(ra, rb), common(rb, ra));
    if before != after {
        out.push(Change::Changed {
            path: format!("{path} (order)"),
            from: Value::Array(before),
            to: Value::Array(after),
        });
    }
}

/// The refs of an array of template nodes, when every element has a distinct one.
fn refs(items: &[Value]) -> Option<Vec<&str>> {
    let refs: Vec<&str> = items
        .iter()
        .map(|v| v.get("ref").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let distinct: BTreeSet<&&str> = refs.iter().collect();
    (!refs.is_empty() && distinct.len() == refs.len()).then_some(refs)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The changes as text: `+` added, `-` removed, `~` changed.
pub fn render(changes: &[Change]) -> String {
    let mut text = String::new();
    for change in changes {
        let _ = match change {
            Change::Added { path, value } => writeln!(text, "  + {path} = {}", show(value)),
            Change::Removed { path, value } => writeln!(text, "  - {path} = {}", show(value)),
            Change::Changed { path, from, to } => {
                writeln!(text, "  ~ {path}: {} -> {}", show(from), show(to))
            }
        };
    }
    text
}

/// Compact JSON on one line, or indented below the change when long.
fn show(value: &Value) -> String {
    let compact = value.to_string();
    if compact.len() <= 100 {
        return compact;
    }
    let pretty = serde_json::to_string_pretty(value).unwrap_or(compact);
    pretty.replace('\n', "\n      ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_values_have_no_changes() {
        let v = json!({"a": [1, {"ref": "x", "b": 2}], "c": "d"});
        assert!(diff(&v, &v).is_empty());
    }

    #[test]
    fn scalars_objects_and_arrays_by_index() {
        let old = json!({"a": 1, "gone": true, "list": [1, 2]});
        let new = json!({"a": 2, "new": "x", "list": [1, 3, 4]});
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Changed {
                    path: "a".into(),
                    from: json!(1),
                    to: json!(2)
                },
                Change::Removed {
                    path: "gone".into(),
                    value: json!(true)
                },
                Change::Changed {
                    path: "list[1]".into(),
                    from: json!(2),
                    to: json!(3)
                },
                Change::Added {
                    path: "list[2]".into(),
                    value: json!(4)
                },
                Change::Added {
                    path: "new".into(),
                    value: json!("x")
                },
            ]
        );
    }

    #[test]
    fn nodes_are_matched_by_ref() {
        let old = json!({"steps": [{"ref": "api", "n": 1}, {"ref": "web", "n": 1}]});
        let new = json!({"steps": [{"ref": "api", "n": 1}, {"ref": "new", "n": 0}, {"ref": "web", "n": 2}]});
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Changed {
                    path: "steps[web].n".into(),
                    from: json!(1),
                    to: json!(2)
                },
                Change::Added {
                    path: "steps[new]".into(),
                    value: json!({"ref": "new", "n": 0})
                },
            ]
        );
    }

    #[test]
    fn reordered_nodes_are_reported() {
        let old = json!([{"ref": "a"}, {"ref": "b"}]);
        let new = json!([{"ref": "b"}, {"ref": "a"}]);
        assert_eq!(
            diff(&old, &new),
            vec![Change::Changed {
                path: " (order)".into(),
                from: json!(["a", "b"]),
                to: json!(["b", "a"])
            }]
        );
    }

    #[test]
    fn rendering_marks_each_kind() {
        let text = render(&diff(&json!({"a": 1, "b": 1}), &json!({"a": 2, "c": 1})));
        assert_eq!(text, "  ~ a: 1 -> 2\n  - b = 1\n  + c = 1\n");
    }
}
