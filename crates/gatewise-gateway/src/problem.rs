//! Every refusal becomes HTTP here, and only here: RFC 6750 §3 challenges
//! for token problems, RFC 9457 `application/problem+json` bodies with a
//! stable reason code and the request id.

use crate::body::{self, Body};
use gatewise_core::jose::check::Rejection;
use http::{HeaderValue, Response, StatusCode, header};

/// The RFC 6750 §3.1 error code of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No error attribute: the request carried no credentials (RFC 6750 §3.1).
    None,
    /// `invalid_request` (400).
    InvalidRequest,
    /// `invalid_token` (401).
    InvalidToken,
    /// `insufficient_scope` (403).
    InsufficientScope,
}

impl BearerError {
    fn as_str(self) -> Option<&'static str> {
        match self {
            BearerError::None => None,
            BearerError::InvalidRequest => Some("invalid_request"),
            BearerError::InvalidToken => Some("invalid_token"),
            BearerError::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable reason code (`jwt-expired`, `route-not-found`, ...).
    pub reason: &'static str,
    /// Short title for the problem document.
    pub title: &'static str,
    /// What happened, safe to show the client.
    pub detail: String,
    /// Bearer challenge to send, when the refusal is about the token.
    pub challenge: Option<BearerError>,
    /// Scopes to name in an `insufficient_scope` challenge.
    pub scope: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// `RateLimit-*` fields: limit, remaining, reset seconds.
    pub rate: Option<RateFields>,
}

/// The `RateLimit-Limit`, `-Remaining` and `-Reset` fields
/// (draft-ietf-httpapi-ratelimit-headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateFields {
    /// Burst size.
    pub limit: u32,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the burst is full again.
    pub reset: u64,
}

impl RateFields {
    /// Writes the fields into `h`.
    pub fn write(self, h: &mut http::HeaderMap) {
        h.insert("ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        h.insert("ratelimit-reset", HeaderValue::from(self.reset));
    }
}

impl Denial {
    /// A denial without a challenge.
    pub fn new(
        status: StatusCode,
        reason: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Denial {
        Denial {
            status,
            reason,
            title,
            detail: detail.into(),
            challenge: None,
            scope: None,
            retry_after: None,
            rate: None,
        }
    }

    /// 429: the route's rate limit for this caller is used up.
    pub fn rate_limited(retry_after: std::time::Duration, rate: RateFields) -> Denial {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Denial {
            retry_after: Some(secs.max(1)),
            rate: Some(RateFields {
                reset: secs.max(1),
                ..rate
            }),
            ..Denial::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "the rate limit of this route is used up; retry in {} s",
                    secs.max(1)
                ),
            )
        }
    }

    /// 404: no route matches.
    pub fn route_not_found(method: &str, path: &str) -> Denial {
        Denial::new(
            StatusCode::NOT_FOUND,
            "route-not-found",
            "No route matches this request",
            format!("no route matches {method} {}", truncate(path, 200)),
        )
    }

    /// 401 without an error attribute: no token was sent.
    pub fn token_missing(detail: impl Into<String>) -> Denial {
        Denial {
            challenge: Some(BearerError::None),
            ..Denial::new(
                StatusCode::UNAUTHORIZED,
                "token-missing",
                "An access token is required",
                detail,
            )
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(reason: &'static str, detail: impl Into<String>) -> Denial {
        Denial {
            challenge: Some(BearerError::InvalidRequest),
            ..Denial::new(
                StatusCode::BAD_REQUEST,
                reason,
                "The request is malformed",
                detail,
            )
        }
    }

    /// 403 `insufficient_scope`, naming the scope needed.
    pub fn insufficient_scope(
        reason: &'static str,
        detail: impl Into<String>,
        scope: Option<String>,
    ) -> Denial {
        Denial {
            challenge: Some(BearerError::InsufficientScope),
            scope,
            ..Denial::new(
                StatusCode::FORBIDDEN,
                reason,
                "The access token does not allow this request",
                detail,
            )
        }
    }

    /// 401 `invalid_token` for a token the core refused.
    pub fn from_rejection(r: &Rejection) -> Denial {
        Denial {
            challenge: Some(BearerError::InvalidToken),
            ..Denial::new(
                StatusCode::UNAUTHORIZED,
                r.reason(),
                title_of(r),
                r.to_string(),
            )
        }
    }

    /// 401 `invalid_token` with a reason of the gateway's own.
    pub fn invalid_token(reason: &'static str, detail: impl Into<String>) -> Denial {
        Denial {
            challenge: Some(BearerError::InvalidToken),
            ..Denial::new(
                StatusCode::UNAUTHORIZED,
                reason,
                "The access token is not valid",
                detail,
            )
        }
    }

    /// Renders the response: challenge header, problem+json body, request id.
    pub fn into_response(self, realm: &str, request_id: &str) -> Response<Body> {
        let doc = serde_json::json!({
            "type": format!("urn:gatewise:problem:{}", self.reason),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "reason": self.reason,
            "request_id": request_id,
        });
        let mut resp = Response::new(body::full(doc.to_string()));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-request-id", v);
        }
        if let Some(err) = self.challenge {
            let mut c = format!("Bearer realm=\"{}\"", quoted(realm));
            if let Some(code) = err.as_str() {
                c.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{}\"",
                    quoted(&self.detail)
                ));
            }
            if let Some(scope) = &self.scope {
                c.push_str(&format!(", scope=\"{}\"", quoted(scope)));
            }
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(r) = self.rate {
            r.write(h);
        }
        resp
    }
}

fn title_of(r: &Rejection) -> &'static str {
    match r {
        Rejection::Expired { .. } => "The access token expired",
        Rejection::NotYetValid { .. } | Rejection::IssuedInFuture { .. } => {
            "The access token is not valid yet"
        }
        Rejection::AudienceMismatch { .. } => "The access token is for another audience",
        Rejection::IssuerMismatch { .. } => {
            "The access token is from an issuer this route does not accept"
        }
        Rejection::KidUnknown(_) => "The access token's signing key is unknown",
        Rejection::SignatureInvalid | Rejection::KeyMismatch { .. } => {
            "The access token's signature does not verify"
        }
        Rejection::AlgNotAllowed(_) => "The access token's algorithm is not accepted",
        Rejection::IdTokenAsAccessToken => "An ID token was sent instead of an access token",
        _ => "The access token is not valid",
    }
}

/// RFC 6750 §3: attribute values are quoted-strings; error_description is
/// limited to printable ASCII without `"` and `\`.
fn quoted(s: &str) -> String {
    truncate(s, 300)
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '\''
            }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
