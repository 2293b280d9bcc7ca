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
//! - `POST /v1/templates/{templateId}/runs/{templateRunId}/abort` — abort template run (…/abort-template-run)
//!
//! Transient failures are retried as `retry` decides.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::cli::Connection;
use crate::error::Error;
use crate::retry::{self, Idempotence, RetryPolicy};
use crate::wire::{Answer, ErrorAnswer, Run, StoredTemplate, TemplateWritten};

/// Default base URL; `NORTHFLANK_API_URL` or `--api-url` override it.
pub const DEFAULT_API_URL: &str = "https://api.northflank.com";

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    retry: RetryPolicy,
}

/// One request to Northflank.
struct Call<'a> {
    method: Method,
    path: &'a str,
    body: Option<&'a Value>,
    idempotence: Idempotence,
}

/// How one attempt of a call ended: with a result to return, or with a failure
/// worth another attempt (and the wait the server asked for, if any).
enum Attempt<T> {
    Done(Result<T, Error>),
    Transient {
        error: Error,
        asked: Option<Duration>,
    },
}

impl Client {
    pub fn new(connection: &Connection, token: &str) -> Result<Self, Error> {
        let base = &connection.api_url;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::InvalidToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("northflank-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(connection.request_timeout)
            .build()
            .map_err(|e| Error::Http {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            retry: RetryPolicy {
                retries: connection.retries,
                first_delay: connection.retry_delay,
                budget: connection.retry_budget,
            },
        })
    }

    /// The template, or `None` when Northflank has no template with this id.
    pub async fn get_template(&self, id: &str) -> Result<Option<StoredTemplate>, Error> {
        let path = format!("/v1/templates/{}", segment(id));
        match self.call(Call::read(&path)).await {
            Ok(template) => Ok(Some(template)),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the template; returns the id Northflank gave it.
    pub async fn create_template(&self, template: &Value) -> Result<String, Error> {
        let call = Call::write("/v1/templates", template, Idempotence::NotIdempotent);
        let written: TemplateWritten = self.call(call).await?;
        Ok(written.template.id)
    }

    /// Replaces the template with this one (the same body twice is one update).
    pub async fn update_template(&self, id: &str, template: &Value) -> Result<(), Error> {
        let path = format!("/v1/templates/{}", segment(id));
        let call = Call::write(&path, template, Idempotence::Idempotent);
        let _: TemplateWritten = self.call(call).await?;
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
        let call = Call::write(&path, &body, Idempotence::NotIdempotent);
        self.call(call).await
    }

    pub async fn get_run(&self, id: &str, run: &str) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs/{}", segment(id), segment(run));
        self.call(Call::read(&path)).await
    }

    /// Asks Northflank to abort the run (aborting twice is one abort).
    pub async fn abort_run(&self, id: &str, run: &str) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs/{}/abort", segment(id), segment(run));
        let call = Call {
            method: Method::POST,
            path: &path,
            body: None,
            idempotence: Idempotence::Idempotent,
        };
        self.call(call).await
    }

    /// A call, retried while it fails transiently and the retry policy allows.
    async fn call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let mut waited = Duration::ZERO;
        let mut retry = 0;
        loop {
            let (error, asked) = match self.attempt(&call).await {
                Attempt::Done(result) => return result,
                Attempt::Transient { error, asked } => (error, asked),
            };
            retry += 1;
            let wait = match self.retry.wait(retry, asked, waited) {
                Ok(wait) => wait,
                Err(_) if retry == 1 && self.retry.retries == 0 => return Err(error),
                Err(why) => {
                    return Err(Error::GaveUp {
                        attempts: retry,
                        why,
                        last: Box::new(error),
                    });
                }
            };
            eprintln!(
                "northflank: {error}; retry {retry} of {} in {}ms",
                self.retry.retries,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// One attempt: the `data` of a 2xx answer, or the error Northflank described.
    async fn attempt<T: DeserializeOwned>(&self, call: &Call<'_>) -> Attempt<T> {
        let url = format!("{}{}", self.base, call.path);
        let mut request = self.http.request(call.method.clone(), &url);
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let network = |e: reqwest::Error| {
            let transient = retry::transient_network(&e, call.idempotence);
            let error = Error::Http {
                url: url.clone(),
                reason: self.redact(&error_chain(&e)),
            };
            if transient {
                Attempt::Transient { error, asked: None }
            } else {
                Attempt::Done(Err(error))
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return network(e),
        };
        let status = response.status();
        let asked = retry::asked_wait(status, response.headers());
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return network(e),
        };
        let result = self.read(call, status, &text);
        match result {
            Err(error) if retry::transient_status(status, call.idempotence) => {
                Attempt::Transient { error, asked }
            }
            result => Attempt::Done(result),
        }
    }

    /// The answer's `data`, or the error it carries, in Northflank's words.
    fn read<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        status: StatusCode,
        text: &str,
    ) -> Result<T, Error> {
        let method = method_name(&call.method);
        let path = call.path.to_owned();
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorAnswer>(text)
                .map_or_else(|_| text.trim().to_owned(), |answer| answer.error.message);
            let message = self.redact(&truncate(&message, 500));
            return Err(match status {
                StatusCode::UNAUTHORIZED => Error::Unauthorized {
                    method,
                    path,
                    message,
                },
                StatusCode::FORBIDDEN => Error::Forbidden {
                    method,
                    path,
                    message,
                },
                _ => Error::Api {
                    method,
                    path,
                    status: status.as_u16(),
                    message,
                },
            });
        }
        serde_json::from_str::<Answer<T>>(text)
            .map(|answer| answer.data)
            .map_err(|e| Error::UnexpectedResponse {
                method,
                path,
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

impl<'a> Call<'a> {
    fn read(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            idempotence: Idempotence::Idempotent,
        }
    }

    fn write(path: &'a str, body: &'a Value, idempotence: Idempotence) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(body),
            idempotence,
        }
    }
}

/// reqwest's error with its causes ("error sending request: … connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
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
