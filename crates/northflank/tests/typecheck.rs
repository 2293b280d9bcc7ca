//! The rendered template against @northflank/js-client's request types, through
//! tools/northflank-types (needs Node.js and `npm ci` in that directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/northflank-types")
}

fn typecheck(template: &Path) -> (bool, String) {
    let tool = tool();
    assert!(
        tool.join("node_modules/@northflank/js-client").is_dir(),
        "{}/node_modules is missing: run `npm ci` in tools/northflank-types first",
        tool.display()
    );
    let output = Command::new("node")
        .arg(tool.join("typecheck.mjs"))
        .arg(template)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn every_node_fits_the_request_types_of_the_official_client() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../northflank/template.json");
    let (ok, output) = typecheck(&template);
    assert!(ok, "{output}");
    assert!(output.contains("fit @northflank/js-client"), "{output}");
}

/// The rendered template with the node `reference` changed by `change`, type-checked.
fn typecheck_changed(reference: &str, change: impl FnOnce(&mut Value)) -> (bool, String) {
    fn find<'a>(node: &'a mut Value, reference: &str) -> Option<&'a mut Value> {
        if node["ref"] == reference {
            return Some(node);
        }
        let steps = node.pointer_mut("/spec/steps")?.as_array_mut()?;
        steps.iter_mut().find_map(|step| find(step, reference))
    }
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../northflank/template.json");
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap();
    change(find(&mut value["spec"], reference).expect("no node with this ref"));
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("template.json");
    std::fs::write(&changed, value.to_string()).unwrap();
    typecheck(&changed)
}

#[test]
fn a_broken_field_fails_the_check() {
    let (ok, output) = typecheck_changed("database", |addon| {
        addon["spec"]["tlsEnabled"] = json!("yes");
    });
    assert!(
        !ok,
        "a string where the client wants a boolean passed:\n{output}"
    );
    assert!(
        output.contains("Addon node at") && output.contains("(ref database)"),
        "{output}"
    );
    assert!(
        output.contains("not assignable to type 'boolean"),
        "{output}"
    );
}

#[test]
fn a_condition_kind_northflank_does_not_have_fails_the_check() {
    let (ok, output) = typecheck_changed("api-running", |condition| {
        condition["spec"]["kind"] = json!("Job");
    });
    assert!(!ok, "a Condition of kind `Job` passed:\n{output}");
    assert!(
        output.contains("Condition node at") && output.contains("(ref api-running)"),
        "{output}"
    );
    assert!(output.contains("'\"Job\"' is not assignable"), "{output}");
}

#[test]
fn a_condition_type_of_another_kind_fails_the_check() {
    // `success` is the condition type of JobRun, Build, AddonBackup and AddonImport;
    // a Service condition only knows `running`.
    let (ok, output) = typecheck_changed("api-running", |condition| {
        condition["spec"]["spec"]["type"] = json!("success");
    });
    assert!(
        !ok,
        "a Service condition of type `success` passed:\n{output}"
    );
    assert!(output.contains("(ref api-running)"), "{output}");

    // And its data names the resource of its own kind.
    let (ok, output) = typecheck_changed("database-running", |condition| {
        condition["spec"]["spec"]["data"] = json!({"serviceId": "database"});
    });
    assert!(!ok, "an Addon condition on a serviceId passed:\n{output}");
    assert!(
        output.contains("'\"serviceId\"' does not exist"),
        "{output}"
    );
}
