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
    /// Sent back by the compose form and passed to the api as `Idempotency-Key`, so
    /// submitting one rendered form twice (a retry, a double click) posts once.
    pub idempotency_key: Option<String>,
}

impl FormView {
    /// An empty compose form with a new idempotency key.
    pub fn compose() -> Self {
        Self {
            idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
            ..Self::default()
        }
    }
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

/// Which page of the list a person is on. Cursors are the api's, checked to be integers
/// before they go into a link (anything else means the first page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagePosition {
    /// The first page (`/`).
    Newest,
    /// `/?cursor=N`: the messages older than N.
    Older(String),
    /// `/?after=N`: the messages just newer than N.
    Newer(String),
}

impl PagePosition {
    /// From the `cursor` and `after` parameters of a query or form.
    pub fn from_parts(cursor: Option<&str>, after: Option<&str>) -> Self {
        let valid = |c: &&str| !c.is_empty() && c.parse::<i64>().is_ok();
        match (cursor.filter(valid), after.filter(valid)) {
            (Some(cursor), _) => Self::Older(cursor.to_owned()),
            (None, Some(after)) => Self::Newer(after.to_owned()),
            (None, None) => Self::Newest,
        }
    }

    /// The query of this page, without `?`: `cursor=N`, `after=N` or empty.
    pub fn query(&self) -> String {
        match self {
            Self::Newest => String::new(),
            Self::Older(cursor) => format!("cursor={cursor}"),
            Self::Newer(after) => format!("after={after}"),
        }
    }

    /// The URL of this page, with a notice to show.
    pub fn href(&self, notice: Option<Notice>) -> String {
        let mut parts: Vec<String> = Vec::new();
        let query = self.query();
        if !query.is_empty() {
            parts.push(query);
        }
        if let Some(notice) = notice {
            parts.push(format!("notice={}", notice.as_str()));
        }
        if parts.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }

    /// Whether this is the first page.
    pub fn is_newest(&self) -> bool {
        matches!(self, Self::Newest)
    }

    /// The cursor for a hidden `cursor` field, if any.
    pub fn cursor(&self) -> &str {
        match self {
            Self::Older(cursor) => cursor,
            _ => "",
        }
    }

    /// The cursor for a hidden `after` field, if any.
    pub fn after(&self) -> &str {
        match self {
            Self::Newer(after) => after,
            _ => "",
        }
    }
}

/// What just happened, confirmed at the top of the page after a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Posted,
    Saved,
    Deleted,
}

impl Notice {
    /// From the `notice` query parameter (unknown values are ignored).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "posted" => Some(Self::Posted),
            "saved" => Some(Self::Saved),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::Saved => "saved",
            Self::Deleted => "deleted",
        }
    }

    /// The sentence shown.
    pub fn text(self) -> &'static str {
        match self {
            Self::Posted => "Your message was posted.",
            Self::Saved => "Your changes were saved.",
            Self::Deleted => "The message was deleted.",
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub banner: Option<String>,
    pub notice: Option<Notice>,
    pub position: PagePosition,
    pub messages: Vec<MessageView>,
    /// `after` of the newer page, when this is not the first page.
    pub newer: Option<String>,
    /// `cursor` of the older page, if there are older messages.
    pub older: Option<String>,
    pub form: FormView,
}

impl IndexPage {
    pub fn new(
        position: PagePosition,
        messages: Vec<MessageView>,
        prev_cursor: Option<String>,
        next_cursor: Option<String>,
        form: FormView,
    ) -> Self {
        Self {
            banner: None,
            notice: None,
            newer: if position.is_newest() {
                None
            } else {
                prev_cursor
            },
            position,
            messages,
            older: next_cursor,
            form,
        }
    }

    pub fn with_banner(mut self, banner: &str) -> Self {
        self.banner = Some(banner.to_owned());
        self
    }

    /// The heading (and title) of the page.
    pub fn heading(&self) -> &'static str {
        if self.position.is_newest() {
            "Latest messages"
        } else {
            "Earlier messages"
        }
    }

    /// The link to the newer page: `/?after=N`, or `/` when that is the first page.
    pub fn newer_href(&self) -> Option<String> {
        if self.position.is_newest() {
            return None;
        }
        Some(match &self.newer {
            Some(after) => PagePosition::Newer(after.clone()).href(None),
            None => "/".to_owned(),
        })
    }

    /// The link to the older page.
    pub fn older_href(&self) -> Option<String> {
        self.older
            .as_ref()
            .map(|cursor| PagePosition::Older(cursor.clone()).href(None))
    }

    /// `?cursor=N` or `?after=N` (or nothing) for the edit links of this page.
    pub fn edit_query(&self) -> String {
        let query = self.position.query();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }
}

#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    pub banner: Option<String>,
    pub id: i64,
    pub form: FormView,
    /// The page to return to.
    pub back: PagePosition,
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
        let form = FormView {
            content: "</textarea><script>".into(),
            error: Some("<i>bad</i>".into()),
            idempotency_key: None,
        };
        let messages = vec![MessageView::from(message("x", "x"))];
        let page = IndexPage::new(
            PagePosition::Newest,
            messages,
            None,
            Some("42".into()),
            form,
        );
        let html = page.render().unwrap();
        assert!(!html.contains("<b>hi</b>"));
        assert!(!html.contains("</textarea><script>"));
        assert!(!html.contains("<i>bad</i>"));
        assert!(html.contains("href=\"/?cursor=42\""), "{html}");
    }

    #[test]
    fn page_positions_only_carry_integer_cursors() {
        assert_eq!(
            PagePosition::from_parts(Some("12"), None).href(None),
            "/?cursor=12"
        );
        assert_eq!(
            PagePosition::from_parts(None, Some("7")).href(Some(Notice::Saved)),
            "/?after=7&notice=saved"
        );
        assert_eq!(
            PagePosition::from_parts(Some("//evil.example"), Some("x")),
            PagePosition::Newest
        );
        assert_eq!(
            PagePosition::Newest.href(Some(Notice::Posted)),
            "/?notice=posted"
        );
    }
}
