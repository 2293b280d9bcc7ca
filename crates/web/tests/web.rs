//! The web service against the real api and a real database: a throwaway Postgres
//! (test-postgres), the migrations, the api's router on a free port, and the web router
//! on another one. Requests go through reqwest without following redirects.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use support::{Stack, post_form};

#[tokio::test]
async fn posts_lists_edits_and_deletes() {
    let stack = Stack::start().await;

    let page = stack.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No messages yet"), "{}", page.body);
    assert!(!page.body.contains("Service unavailable"));

    // Post: 303 to `/`, then the message is listed.
    let response = post_form(&stack.http, &stack.url("/messages"), "  First message  ").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/?notice=posted");
    post_form(&stack.http, &stack.url("/messages"), "Second message").await;
    let page = stack.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let first_at = page
        .body
        .find("First message")
        .expect("first message listed");
    let second_at = page
        .body
        .find("Second message")
        .expect("second message listed");
    assert!(second_at < first_at, "newest first");

    let messages = stack.api_messages().await;
    let id = messages
        .iter()
        .find(|m| m["content"] == "First message")
        .expect("trimmed by the api")["id"]
        .as_i64()
        .unwrap();

    // Edit form, prefilled.
    let page = stack.get(&format!("/messages/{id}/edit")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(">First message</textarea>"),
        "{}",
        page.body
    );

    // Edit: 303, new content listed and marked as edited.
    let response = post_form(
        &stack.http,
        &stack.url(&format!("/messages/{id}/edit")),
        "First, edited",
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/?notice=saved");
    let page = stack.get("/").await;
    assert!(page.body.contains("First, edited"));
    assert!(!page.body.contains("First message"));
    assert!(page.body.contains("edited</span>"), "{}", page.body);

    // Delete: 303, gone from the page; deleting again is harmless.
    let delete = stack.url(&format!("/messages/{id}/delete"));
    let response = stack.http.post(&delete).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/?notice=deleted");
    let page = stack.get("/").await;
    assert!(!page.body.contains("First, edited"));
    assert!(page.body.contains("Second message"));
    let response = stack.http.post(&delete).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Unknown or deleted messages.
    assert_eq!(
        stack.get(&format!("/messages/{id}/edit")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stack.get("/messages/nope/edit").await.status,
        StatusCode::NOT_FOUND
    );
    let response = post_form(
        &stack.http,
        &stack.url(&format!("/messages/{id}/edit")),
        "x",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_are_shown_next_to_the_form_with_the_input_kept() {
    let stack = Stack::start().await;

    // Empty (after trimming).
    let response = post_form(&stack.http, &stack.url("/messages"), "   ").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"class="field-error""#), "{body}");
    assert!(body.contains(r#"aria-invalid="true""#));
    // In a person's words, not the api's ("content must not be empty").
    assert!(body.contains("the message is empty"), "{body}");
    assert!(!body.contains("content must"), "{body}");

    // Too long: the error, and everything typed is still in the textarea.
    let long = format!("{}<end>", "é".repeat(2001));
    let response = post_form(&stack.http, &stack.url("/messages"), &long).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"class="field-error""#), "{body}");
    assert!(
        body.contains(&format!("{}&#60;end&#62;</textarea>", "é".repeat(2001))),
        "input kept"
    );

    // Nothing was created.
    assert!(stack.api_messages().await.is_empty());

    // Same on the edit form.
    post_form(&stack.http, &stack.url("/messages"), "valid").await;
    let id = stack.api_messages().await[0]["id"].as_i64().unwrap();
    let edit = stack.url(&format!("/messages/{id}/edit"));
    let response = post_form(&stack.http, &edit, "").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"class="field-error""#), "{body}");
    assert!(body.contains(r#"id="edit-message""#));
    let long = "x".repeat(2500);
    let response = post_form(&stack.http, &edit, &long).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(&format!(">{long}</textarea>"))
    );
    assert_eq!(stack.api_messages().await[0]["content"], "valid");
}

#[tokio::test]
async fn user_content_is_escaped() {
    let stack = Stack::start().await;
    let evil = r#"<script>alert(1)</script><img src=x onerror="alert(2)"> & </textarea>"#;
    let response = post_form(&stack.http, &stack.url("/messages"), evil).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let page = stack.get("/").await;
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );

    let id = stack.api_messages().await[0]["id"].as_i64().unwrap();
    let page = stack.get(&format!("/messages/{id}/edit")).await;
    assert!(!page.body.contains("<script>alert(1)"));
    // The textarea is closed exactly once: the content's `</textarea>` is text.
    assert_eq!(page.body.matches("</textarea>").count(), 1, "{}", page.body);
}

#[tokio::test]
async fn api_down_shows_a_banner_and_recovers() {
    let mut stack = Stack::start().await;
    post_form(&stack.http, &stack.url("/messages"), "before the outage").await;

    stack.stop_api().await;
    let page = stack.get("/").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains(r#"class="banner""#), "{}", page.body);
    assert!(page.body.contains("Service unavailable"));
    assert!(
        page.body.contains(r#"id="new-message""#),
        "the form is still there"
    );

    // Posting while down: 503, what was typed is kept.
    let response = post_form(
        &stack.http,
        &stack.url("/messages"),
        "typed during the outage",
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(">typed during the outage</textarea>"),
        "{body}"
    );
    assert!(body.contains(r#"class="banner""#));

    // Other pages too.
    assert_eq!(
        stack.get("/messages/1/edit").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let response = stack
        .http
        .post(stack.url("/messages/1/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Liveness does not depend on the api.
    assert_eq!(stack.get("/health").await.status, StatusCode::OK);

    // The api comes back on the same address: the page recovers by itself.
    stack.start_api().await;
    let page = stack.get("/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains(r#"class="banner""#));
    assert!(page.body.contains("before the outage"));
}

#[tokio::test]
async fn slow_api_times_out_with_a_banner() {
    // An "api" that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let web = support::start_web(&format!("http://{addr}"), Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let response = reqwest::get(format!("{web}/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the api timeout"
    );
    assert!(response.text().await.unwrap().contains(r#"class="banner""#));
}

#[tokio::test]
async fn request_id_is_forwarded_to_the_api() {
    // A stub api recording the x-request-id it receives.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorder = std::sync::Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/api/messages",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let recorder = std::sync::Arc::clone(&recorder);
            async move {
                let id = headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                recorder.lock().unwrap().push(id);
                axum::Json(serde_json::json!({"messages": [], "next_cursor": null}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let web = support::start_web(&format!("http://{addr}"), Duration::from_secs(5)).await;

    let response = reqwest::Client::new()
        .get(format!("{web}/"))
        .header("x-request-id", "web-test-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "web-test-42");
    // Without one, web generates an id and still forwards it.
    let response = reqwest::get(format!("{web}/")).await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["web-test-42".to_owned(), generated]
    );
}

#[tokio::test]
async fn health_assets_and_headers() {
    let web = support::start_web("http://127.0.0.1:9", Duration::from_secs(1)).await;
    let response = reqwest::get(format!("{web}/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);

    let response = reqwest::get(format!("{web}/static/app.css")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        response.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(response.text().await.unwrap().contains(".message"));

    let response = reqwest::get(format!("{web}/static/app.js")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = reqwest::get(format!("{web}/nope")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("content-security-policy"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn api_timeout_includes_waiting_for_a_free_slot() {
    // An api answering every call after 700 ms.
    let app = axum::Router::new().route(
        "/api/messages",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            axum::Json(serde_json::json!({"messages": [], "next_cursor": null}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let timeout = Duration::from_millis(1000);
    let client =
        web::ApiClient::new(&format!("http://{addr}").parse().unwrap(), timeout, 1).unwrap();
    let request_id = service_kit::RequestId::generate();
    let started = std::time::Instant::now();
    // One slot: the second call waits 700 ms for it, leaving 300 ms of its budget.
    let (first, second) = tokio::join!(
        client.list(&request_id, 1, web::api::PageRequest::Newest),
        client.list(&request_id, 1, web::api::PageRequest::Newest)
    );
    let elapsed = started.elapsed();
    assert!(first.is_ok(), "{first:?}");
    assert!(
        matches!(second, Err(web::api::ApiError::Unavailable(_))),
        "{second:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(300),
        "each call is bounded by one timeout, took {elapsed:?}"
    );
}
