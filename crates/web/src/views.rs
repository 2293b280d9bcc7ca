//! Askama templates (files in `templates/`) and the data they show. Askama escapes every
//! expression in `.html` templates, so user content is always rendered as text.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::Message;

/// Text of the banner shown when the api cannot be reached.
pub const UNAVAILABLE_BANNER: &str = "The message service is not responding right now. This page recovers by itself as soon as it is back; try again in a moment.";

/// The compose/edit form: what the person typed and the error to show next to it.
#[derive(Debug, Clone, Default)]
pub struct FormView {
    pub content: String,
    pub error: Option<String>,
}

/// A message ready for display.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: i64,
    pub content: String,
    pub created_at: String,
    pub created_label: String,
    pub edited: bool,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        let created = OffsetDateTime::parse(&m.created_at, &Rfc3339).ok();
        let updated = OffsetDateTime::parse(&m.updated_at, &Rfc3339).ok();
        let created_label = created
            .map(|t| {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            })
            .unwrap_or_else(|| m.created_at.clone());
        let edited = match (created, updated) {
            (Some(c), Some(u)) => u > c,
            _ => m.updated_at != m.created_at,
        };
        Self {
            id: m.id,
            content: m.content,
            created_at: m.created_at,
            created_label,
            edited,
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub banner: Option<String>,
    pub messages: Vec<MessageView>,
    pub next_cursor: Option<String>,
    pub form: FormView,
}

#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    pub banner: Option<String>,
    pub id: i64,
    pub form: FormView,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub banner: Option<String>,
    pub title: String,
    pub detail: String,
}

/// Renders `template` as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(created_at: &str, updated_at: &str) -> Message {
        Message {
            id: 7,
            content: "<b>hi</b>".into(),
            created_at: created_at.into(),
            updated_at: updated_at.into(),
        }
    }

    #[test]
    fn message_view_labels() {
        let view = MessageView::from(message(
            "2026-01-02T03:04:05.123456Z",
            "2026-01-02T03:04:05.123456Z",
        ));
        assert_eq!(view.created_label, "2026-01-02 03:04 UTC");
        assert!(!view.edited);
        let view = MessageView::from(message(
            "2026-01-02T03:04:05+02:00",
            "2026-01-02T04:00:00+02:00",
        ));
        assert_eq!(view.created_label, "2026-01-02 01:04 UTC");
        assert!(view.edited);
        let view = MessageView::from(message("garbage", "garbage"));
        assert_eq!(view.created_label, "garbage");
    }

    #[test]
    fn templates_escape_user_content() {
        let page = IndexPage {
            banner: None,
            messages: vec![MessageView::from(message("x", "x"))],
            next_cursor: Some("a b&c".into()),
            form: FormView {
                content: "</textarea><script>".into(),
                error: Some("<i>bad</i>".into()),
            },
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<b>hi</b>"));
        assert!(!html.contains("</textarea><script>"));
        assert!(!html.contains("<i>bad</i>"));
        assert!(html.contains("/?cursor=a%20b%26c"), "cursor is URL-encoded");
    }
}
