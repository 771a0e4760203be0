//! What every page shares: the frame around it (who is signed in, what they may open, the
//! sign-out form), rendering a template into an answer, and the error page.

use crate::service::{ConsoleSession, ServiceError};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use rampart_core::access::{Permission, allows};
use rampart_store::OperatorRole;

/// The frame of a page: the signed-in person (if any) and the sections they may open.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in person's username; empty before sign-in.
    pub username: String,
    /// Their console role in words ("employee" when none).
    pub role: String,
    /// The form token for the sign-out button.
    pub csrf: String,
    /// May open the service desk pages.
    pub desk: bool,
    /// May open the audit search.
    pub audit: bool,
    /// May open the live sessions.
    pub sessions: bool,
    /// May open the administrators' page.
    pub admin: bool,
}

impl Chrome {
    /// The frame for a signed-in person.
    pub fn of(session: &ConsoleSession) -> Self {
        let role = session.role;
        Self {
            username: session.username.clone(),
            role: role.map_or("employee", OperatorRole::as_str).to_owned(),
            csrf: session.csrf_token.clone(),
            desk: role.is_some(),
            audit: may_search_audit(role),
            sessions: role.is_some(),
            admin: role == Some(OperatorRole::Admin),
        }
    }
}

/// Whether `role` may search the audit trail: auditors and administrators.
pub fn may_search_audit(role: Option<OperatorRole>) -> bool {
    matches!(role, Some(OperatorRole::Auditor | OperatorRole::Admin))
}

/// Whether `role` grants `permission` (no role: nothing beyond one's own things).
pub fn role_allows(role: Option<OperatorRole>, permission: Permission) -> bool {
    role.is_some_and(|r| allows(r, permission))
}

/// A template as an HTML answer.
pub fn render(template: &impl Template) -> Response {
    render_with(StatusCode::OK, template)
}

/// A template as an HTML answer with `status`.
pub fn render_with(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(target: "rampart::console", error = %err, "a page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// A page that could not be shown, with what to do.
#[derive(Debug)]
pub enum PageError {
    /// The form's token is missing or not this session's (or the form is too old).
    StaleForm,
    /// The signed-in person's role does not allow this.
    Forbidden(&'static str),
    /// A service error (not found, conflict, invalid, unavailable…).
    Service(ServiceError),
}

impl From<ServiceError> for PageError {
    fn from(err: ServiceError) -> Self {
        Self::Service(err)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::StaleForm => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back, reload the page and try again.".to_owned(),
            ),
            Self::Forbidden(needs) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Your console role cannot do this: it needs {needs}."),
            ),
            Self::Service(err) => {
                let status = crate::http::status_of(&err);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    tracing::error!(target: "rampart::console", error = %err, "console request failed");
                }
                // The detail (a directory's error, a file's path) is for the log, not the page.
                let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "The service cannot answer right now; nothing was changed. Try again in a few minutes, and \
                     tell the service desk if it lasts."
                        .to_owned()
                } else {
                    err.to_string()
                };
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Nothing was changed",
                    StatusCode::BAD_REQUEST => "Not understood",
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => "Try again shortly",
                    _ => "Not allowed",
                };
                (status, title, message)
            }
        };
        render_with(
            status,
            &ErrorPage {
                chrome: Chrome::default(),
                title: title.to_owned(),
                message,
            },
        )
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` percent-encoded, for a path segment or a query value the console builds.
pub fn url_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, ENCODED).to_string()
}

/// Unix seconds as `2026-12-06 09:14 UTC`, for tables.
pub fn when(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// An optional time, or a dash.
pub fn when_opt(unix: Option<i64>) -> String {
    unix.map_or_else(|| "—".to_owned(), when)
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn outside_text_is_encoded_for_paths_and_queries() {
        assert_eq!(url_encode("branch 7&x=1"), "branch%207%26x%3D1");
        assert_eq!(url_encode("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(url_encode("Zoë.x_y-z~"), "Zo%C3%AB.x_y-z~");
        assert_eq!(url_encode(""), "");
    }
}
