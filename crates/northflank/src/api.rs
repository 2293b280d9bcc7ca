//! The parts of Northflank's REST API the CLI uses.
//!
//! Every call sends `Authorization: Bearer <token>`; successful answers wrap their
//! result in `{"data": …}`, failures carry `{"error": {"status", "message", …}}`
//! (the shapes in `wire`). Endpoints, as documented at
//! https://northflank.com/docs/v1/api/templates/… and in the endpoint definitions of
//! `@northflank/js-client` (tools/northflank-types):
//! - `GET  /v1/templates/{templateId}` — get template (…/get-template)
//! - `POST /v1/templates` — create template (…/create-template)
//! - `POST /v1/templates/{templateId}` — update template (…/update-template)
//! - `POST /v1/templates/{templateId}/runs` `{"arguments": {…}}` — run template (…/run-template)
//! - `GET  /v1/templates/{templateId}/runs/{templateRunId}` — get template run (…/get-template-run)

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::wire::{Answer, ErrorAnswer, Run, StoredTemplate, TemplateWritten};

/// Default base URL; `NORTHFLANK_API_URL` or `--api-url` override it.
pub const DEFAULT_API_URL: &str = "https://api.northflank.com";

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Self, Error> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::InvalidToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("northflank-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Http {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// The template, or `None` when Northflank has no template with this id.
    pub async fn get_template(&self, id: &str) -> Result<Option<StoredTemplate>, Error> {
        let path = format!("/v1/templates/{}", segment(id));
        match self.call(Method::GET, &path, None).await {
            Ok(template) => Ok(Some(template)),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the template; returns the id Northflank gave it.
    pub async fn create_template(&self, template: &Value) -> Result<String, Error> {
        let written: TemplateWritten = self
            .call(Method::POST, "/v1/templates", Some(template))
            .await?;
        Ok(written.template.id)
    }

    pub async fn update_template(&self, id: &str, template: &Value) -> Result<(), Error> {
        let path = format!("/v1/templates/{}", segment(id));
        let _: TemplateWritten = self.call(Method::POST, &path, Some(template)).await?;
        Ok(())
    }

    /// Starts a run with these arguments; returns the run.
    pub async fn run_template(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs", segment(id));
        let body = json!({ "arguments": arguments });
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn get_run(&self, id: &str, run: &str) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs/{}", segment(id), segment(run));
        self.call(Method::GET, &path, None).await
    }

    /// One call: the `data` of a 2xx answer, or the error Northflank described.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let method_name = method_name(&method);
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let network = |e: reqwest::Error| Error::Http {
            url: url.clone(),
            reason: self.redact(&e.to_string()),
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let text = response.text().await.map_err(network)?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                method: method_name,
                path: path.to_owned(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorAnswer>(&text)
                .map_or_else(|_| text.trim().to_owned(), |answer| answer.error.message);
            return Err(Error::Api {
                method: method_name,
                path: path.to_owned(),
                status: status.as_u16(),
                message: self.redact(&truncate(&message, 500)),
            });
        }
        serde_json::from_str::<Answer<T>>(&text)
            .map(|answer| answer.data)
            .map_err(|e| Error::UnexpectedResponse {
                method: method_name,
                path: path.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Never let the token through, even if a server echoes it back.
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.token, "***")
        }
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        _ => "GET",
    }
}

/// Percent-encodes an id for use as one path segment.
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
