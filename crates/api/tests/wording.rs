//! Error messages speak JSON, not Rust: no type names of the implementation.

mod common;

use common::{TestApp, expect_error, migrated_db};
use serde_json::json;

#[tokio::test]
async fn body_errors_do_not_name_rust_types() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let cases = [
        (json!([]), "JSON object"),
        (json!(null), "JSON object"),
        (json!({}), "`content` field"),
        (json!({"content": 5}), "`content` must be a string"),
        (json!({"content": ["a"]}), "`content` must be a string"),
    ];
    for (body, expected) in cases {
        let resp = app.post_json("/api/messages", body.clone()).await;
        let error = expect_error(resp, 422, "invalid_body").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
        for rust in ["struct", "MessageInput", "target type", "String"] {
            assert!(!message.contains(rust), "{body}: {message}");
        }
    }
}
