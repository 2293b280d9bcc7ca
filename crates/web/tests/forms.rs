//! The forms against a hostile browser and a clumsy one: cross-site posts are refused,
//! oversized or non-form bodies get the error page, a form submitted twice posts once,
//! and HSTS is sent when the load balancer says the page came over HTTPS.

mod support;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use support::{Stack, post_form};

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let stack = Stack::start().await;
    post_form(&stack.http, &stack.url("/messages"), "keep me").await;
    let id = stack.api_messages().await[0]["id"].as_i64().unwrap();
    let delete = stack.url(&format!("/messages/{id}/delete"));

    let refused = [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
    ];
    for headers in refused {
        let mut request = stack.http.post(&delete);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains("another website"), "{body}");
        let mut create = stack.http.post(stack.url("/messages"));
        for (name, value) in &headers {
            create = create.header(*name, *value);
        }
        let response = create.form(&[("content", "forged")]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(stack.api_messages().await.len(), 1, "nothing changed");

    // The site's own forms, as a browser sends them.
    let host = stack.web.trim_start_matches("http://").to_owned();
    let response = stack
        .http
        .post(&delete)
        .header("sec-fetch-site", "same-origin")
        .header("origin", &stack.web)
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(stack.api_messages().await.is_empty());
}

#[tokio::test]
async fn oversized_and_non_form_bodies_get_the_error_page() {
    let stack = Stack::start().await;
    let huge = "x".repeat(web::FORM_BODY_LIMIT + 1);
    let response = post_form(&stack.http, &stack.url("/messages"), &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("Message too long"), "{body}");

    let response = stack
        .http
        .post(stack.url("/messages"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"content":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("Not a form"));
}

#[tokio::test]
async fn one_rendered_form_posts_once() {
    let stack = Stack::start().await;
    let page = stack.get("/").await;
    let key = page
        .body
        .split(r#"name="idempotency_key" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the compose form carries an idempotency key")
        .to_owned();
    for _ in 0..2 {
        let response = stack
            .http
            .post(stack.url("/messages"))
            .form(&[("content", "only once"), ("idempotency_key", key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(response.headers().contains_key(LOCATION));
    }
    assert_eq!(stack.api_messages().await.len(), 1);
    let next = stack.get("/").await;
    assert!(!next.body.contains(&key), "each render gets a new key");
}

#[tokio::test]
async fn hsts_only_over_https() {
    let stack = Stack::start().await;
    let plain = stack.http.get(stack.url("/")).send().await.unwrap();
    assert!(!plain.headers().contains_key("strict-transport-security"));
    let https = stack
        .http
        .get(stack.url("/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let hsts = https.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

/// The `href` of the link whose text contains `label`.
fn link(body: &str, label: &str) -> Option<String> {
    let end = body.find(label)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    let href = &body[start..];
    Some(
        href[..href.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

#[tokio::test]
async fn pages_link_both_ways_and_edits_return_to_their_page() {
    let stack = Stack::start().await;
    let total = web::handlers::PAGE_SIZE as usize + 5;
    for i in 0..total {
        post_form(
            &stack.http,
            &stack.url("/messages"),
            &format!("message number {i}"),
        )
        .await;
    }
    let first = stack.get("/").await;
    assert!(
        first.body.contains("<title>Messages</title>"),
        "{}",
        first.body
    );
    assert!(first.body.contains("Latest messages"));
    assert!(
        link(&first.body, "Newer messages").is_none(),
        "no newer page"
    );
    assert!(!first.body.contains("no older messages"));
    let older = link(&first.body, "Older messages").expect("an older page");

    let second = stack.get(&older).await;
    assert!(
        second
            .body
            .contains("<title>Earlier messages · Messages</title>"),
        "{}",
        second.body
    );
    assert!(second.body.contains("message number 0<"), "{}", second.body);
    assert!(
        second.body.contains("no older messages"),
        "end of the list is marked"
    );
    let newer = link(&second.body, "Newer messages").expect("a link back");
    // Page 1 is the newest: its `after` link redirects to `/`.
    let response = stack.http.get(stack.url(&newer)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{newer}");
    assert_eq!(response.headers()[LOCATION], "/");
    let back = stack.get("/").await;
    assert!(back.body.contains("Latest messages"));
    assert!(
        back.body
            .contains(&format!("message number {}<", total - 1))
    );

    // Edit on page 2: the edit page and its form know where they came from.
    let cursor = older.trim_start_matches("/?cursor=");
    let id = stack
        .api_messages()
        .await
        .iter()
        .find(|m| m["content"] == "message number 1")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let edit_href = format!("/messages/{id}/edit?cursor={cursor}");
    assert!(second.body.contains(&edit_href), "{}", second.body);
    let response = stack
        .http
        .post(stack.url(&format!("/messages/{id}/edit")))
        .form(&[
            ("content", "changed on page 2"),
            ("cursor", cursor),
            ("after", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[LOCATION],
        format!("/?cursor={cursor}&notice=saved")
    );
    let page = stack.get(&format!("/?cursor={cursor}&notice=saved")).await;
    assert!(
        page.body.contains("Your changes were saved."),
        "{}",
        page.body
    );
    assert!(page.body.contains("changed on page 2"));

    let response = stack
        .http
        .post(stack.url(&format!("/messages/{id}/delete")))
        .form(&[("cursor", cursor), ("after", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[LOCATION],
        format!("/?cursor={cursor}&notice=deleted")
    );
    let page = stack
        .get(&format!("/?cursor={cursor}&notice=deleted"))
        .await;
    assert!(page.body.contains("The message was deleted."));

    // A forged `cursor` cannot send the redirect elsewhere.
    let response = stack
        .http
        .post(stack.url(&format!("/messages/{id}/delete")))
        .form(&[("cursor", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/?notice=deleted");
}
