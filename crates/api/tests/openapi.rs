//! The OpenAPI document matches what the server does: every documented path+method is routed and
//! answers with documented statuses; undocumented methods on documented paths are 405.

mod common;

use common::{TestApp, migrated_db};
use reqwest::Method;
use serde_json::{Value, json};

/// A request body: content type and text.
type Body = Option<(&'static str, String)>;

fn documented(op: &Value, status: u16) -> bool {
    op["responses"].get(status.to_string()).is_some()
}

#[tokio::test]
async fn document_matches_the_routes() {
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let resp = app.get("/api/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let paths = doc["paths"].as_object().unwrap();
    let mut documented_ops: Vec<String> = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let concrete = |id: &str| path.replace("{id}", id);
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let Some(op) = item.get(method) else {
                // Not documented: the server must not route it either.
                let resp = app
                    .client
                    .request(http_method, app.url(&concrete("1")))
                    .json(&json!({"content": "x"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    405,
                    "{method} {path} is routed but not documented"
                );
                continue;
            };
            documented_ops.push(format!("{method} {path}"));
            let has_body = op.get("requestBody").is_some();
            let send = |p: String, body: Body| {
                let mut req = app.client.request(http_method.clone(), app.url(&p));
                if let Some((ct, b)) = body {
                    req = req.header("content-type", ct).body(b);
                }
                req.send()
            };
            let good_body =
                has_body.then(|| ("application/json", json!({"content": "hi"}).to_string()));

            // The happy path answers a documented 2xx.
            let id = app.create("for openapi").await["id"].to_string();
            let resp = send(concrete(&id), good_body.clone()).await.unwrap();
            let status = resp.status().as_u16();
            assert!((200..300).contains(&status), "{method} {path}: {status}");
            assert!(
                documented(op, status),
                "{method} {path}: {status} not documented"
            );

            // Error cases answer documented statuses.
            let mut cases: Vec<(String, Body, u16)> = Vec::new();
            if path.contains("{id}") {
                cases.push((concrete("abc"), good_body.clone(), 400));
                cases.push((concrete("987654321"), good_body.clone(), 404));
            }
            if has_body {
                cases.push((
                    concrete(&id),
                    Some(("application/json", "{".to_owned())),
                    400,
                ));
                cases.push((concrete(&id), Some(("text/plain", "hi".to_owned())), 415));
                cases.push((
                    concrete(&id),
                    Some(("application/json", "{}".to_owned())),
                    422,
                ));
                cases.push((
                    concrete(&id),
                    Some((
                        "application/json",
                        json!({"content": "x".repeat(70_000)}).to_string(),
                    )),
                    413,
                ));
            }
            let has_limit = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "limit" && p["in"] == "query")
            });
            if has_limit {
                cases.push((format!("{path}?limit=0"), None, 400));
            }
            for (p, body, expected) in cases {
                let resp = send(p.clone(), body).await.unwrap();
                assert_eq!(resp.status().as_u16(), expected, "{method} {p}");
                assert!(
                    documented(op, expected),
                    "{method} {path}: {expected} not documented"
                );
            }
        }
    }
    documented_ops.sort();
    assert_eq!(
        documented_ops,
        [
            "delete /api/messages/{id}",
            "get /api",
            "get /api/health",
            "get /api/messages",
            "get /api/messages/{id}",
            "get /api/ready",
            "patch /api/messages/{id}",
            "post /api/messages",
        ]
    );

    // Schemas describe the real shapes.
    let message = &doc["components"]["schemas"]["Message"];
    for field in ["id", "content", "created_at", "updated_at"] {
        assert!(
            message["properties"].get(field).is_some(),
            "Message.{field}"
        );
    }
    assert_eq!(message["properties"]["created_at"]["format"], "date-time");
    // The input rules the api enforces are stated, so valid-by-the-document means accepted.
    let content = &doc["components"]["schemas"]["MessageInput"]["properties"]["content"];
    assert_eq!(content["minLength"], 1, "{content}");
    assert_eq!(content["maxLength"], 2000, "{content}");
    assert!(
        content["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("u0000")),
        "NUL rule: {content}"
    );
    // The index answers at both spellings.
    for path in ["/api", "/api/"] {
        let index: Value = app.get(path).await.json().await.unwrap();
        assert_eq!(index["links"]["openapi"], "/api/openapi.json", "{path}");
    }
    let error = &doc["components"]["schemas"]["ErrorDetail"];
    for field in ["code", "message", "field"] {
        assert!(
            error["properties"].get(field).is_some(),
            "ErrorDetail.{field}"
        );
    }
}
