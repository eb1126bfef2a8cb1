//! Every admin error becomes HTTP here: an RFC 9457 problem document with
//! a stable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A query parameter is invalid (named in the message).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong bearer token.
    #[error("a valid admin token is required (Authorization: Bearer ...)")]
    Unauthorized,
    /// The call log is not enabled in this process.
    #[error("the call log is not enabled ([call_log] enabled = false)")]
    NoCallLog,
    /// The store failed.
    #[error("the call log could not be read: {0}")]
    Store(#[from] gatewise_store::StoreError),
    /// A blocking task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::NoCallLog => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(_) | AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the problem document.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "bad-request",
            AdminError::NotFound(_) => "not-found",
            AdminError::Unauthorized => "unauthorized",
            AdminError::NoCallLog => "call-log-disabled",
            AdminError::Store(_) => "store-error",
            AdminError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("admin API: {self}");
        }
        let body = json!({
            "type": format!("https://gatewise.dev/problems/{}", self.code()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "code": self.code(),
        });
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, AdminError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatewise-admin\""),
            );
        }
        resp
    }
}
