//! The rendered template against @northflank/js-client's request types, and the
//! answers of the Northflank stand-in (tests/fixtures/northflank-api) against its
//! result types, through tools/northflank-types (needs Node.js and `npm ci` there).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/northflank-types")
}

fn typecheck(template: &Path) -> (bool, String) {
    typecheck_with(template, &fixtures())
}

fn template_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../northflank/template.json")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/northflank-api")
}

fn typecheck_with(template: &Path, responses: &Path) -> (bool, String) {
    let tool = tool();
    assert!(
        tool.join("node_modules/@northflank/js-client").is_dir(),
        "{}/node_modules is missing: run `npm ci` in tools/northflank-types first",
        tool.display()
    );
    let output = Command::new("node")
        .arg(tool.join("typecheck.mjs"))
        .arg(template)
        .arg("--responses")
        .arg(responses)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn every_node_and_every_stand_in_answer_fits_the_types_of_the_official_client() {
    let (ok, output) = typecheck(&template_file());
    assert!(ok, "{output}");
    let answers = std::fs::read_dir(fixtures())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("json".as_ref()))
        .count();
    assert!(
        output.contains(&format!("and {answers} answers in")),
        "every answer file is checked: {output}"
    );
    assert!(output.contains("fit @northflank/js-client"), "{output}");
}

/// A copy of the stand-in's answers with `file` changed by `change`, type-checked.
fn typecheck_changed_answer(file: &str, change: impl FnOnce(&mut Value)) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let path = dir.path().join(file);
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut value);
    std::fs::write(&path, value.to_string()).unwrap();
    typecheck_with(&template_file(), dir.path())
}

#[test]
fn a_field_the_api_does_not_have_in_a_stand_in_answer_fails_the_check() {
    // The field the first stand-in invented: a node's state at its top level.
    let (ok, output) = typecheck_changed_answer("get-template-run.failure.json", |run| {
        run["data"]["spec"]["spec"]["steps"][1]["status"] = json!("failure");
    });
    assert!(!ok, "a node with a top-level `status` passed:\n{output}");
    assert!(
        output.contains("get-template-run.failure.json: spec.spec.steps[1] (ref resources)"),
        "{output}"
    );
    assert!(
        output.contains("'\"status\"' does not exist in type 'RunNode'"),
        "{output}"
    );

    // `concurrencyPolicy` sits beside `options` in GetTemplateResult, not inside.
    let (ok, output) = typecheck_changed_answer("get-template.json", |template| {
        template["data"]["options"]["concurrencyPolicy"] = json!("queue");
    });
    assert!(!ok, "options.concurrencyPolicy passed:\n{output}");
    assert!(output.contains("answer get-template.json"), "{output}");

    // A run status outside the client's enum.
    let (ok, output) = typecheck_changed_answer("get-template-run.success.json", |run| {
        run["data"]["status"] = json!("succeeded");
    });
    assert!(!ok, "run status `succeeded` passed:\n{output}");
}

#[test]
fn an_answer_for_an_unknown_endpoint_fails_the_check() {
    let (ok, output) = typecheck_changed_answer("run-template.json", |_| {});
    assert!(ok, "{output}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list-templates.json"), "{}").unwrap();
    let (ok, output) = typecheck_with(&template_file(), dir.path());
    assert!(!ok, "{output}");
    assert!(output.contains("unknown endpoint"), "{output}");
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
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(template_file()).unwrap()).unwrap();
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
