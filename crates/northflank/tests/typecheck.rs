//! The rendered template against @northflank/js-client's request types, through
//! tools/northflank-types (needs Node.js and `npm ci` in that directory).

use std::path::{Path, PathBuf};
use std::process::Command;

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

#[test]
fn a_broken_field_fails_the_check() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../northflank/template.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap();
    let addon = value["spec"]["spec"]["steps"][1]["spec"]["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["kind"] == "Addon")
        .unwrap();
    addon["spec"]["tlsEnabled"] = serde_json::json!("yes");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("template.json");
    std::fs::write(&broken, value.to_string()).unwrap();
    let (ok, output) = typecheck(&broken);
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
