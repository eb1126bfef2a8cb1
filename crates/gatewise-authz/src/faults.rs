//! Fault mode: on demand, the server serves the broken responses that make
//! OAuth clients say "an invalid OAuth response was received", so a client
//! team can reproduce a failure on its own machine before its users do.
//!
//! Faults are chosen for the whole server ([`AuthzConfig::faults`], the
//! CLI's `--fault`), per client ([`ClientSpec::faults`]), or, when fault mode
//! is on, for one request with the [`HEADER`] request header. Each fault
//! takes effect at one endpoint ([`Fault::endpoint`]): the token endpoint,
//! the JWKS or the discovery documents. `docs/faults.md` says, per fault,
//! what is served, which rule it breaks and what common clients print.
//!
//! [`AuthzConfig::faults`]: crate::AuthzConfig::faults
//! [`ClientSpec::faults`]: crate::clients::ClientSpec::faults

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

/// The request header that picks one fault for one request. Honoured only
/// when fault mode is on; otherwise it is ignored like any unknown header.
pub const HEADER: &str = "gatewise-fault";

/// Where a fault takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint (`/token`).
    Token,
    /// The JWK Set (`/jwks.json`).
    Jwks,
    /// Both metadata documents (`/.well-known/...`).
    Discovery,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Token => "token endpoint",
            Endpoint::Jwks => "JWKS endpoint",
            Endpoint::Discovery => "discovery documents",
        })
    }
}

/// One broken behaviour the server can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 502 with an nginx HTML error page (a proxy whose upstream failed).
    HtmlErrorPage,
    /// 200 with a token response that is not valid JSON (a trailing comma).
    InvalidJson,
    /// 200 whose body stops halfway: `Content-Length` promises more bytes
    /// than are sent before the connection closes.
    TruncatedJson,
    /// 200 `application/json` with an empty body.
    EmptyBody,
    /// 200 JSON without `access_token`.
    MissingAccessToken,
    /// 200 JSON without `token_type`.
    MissingTokenType,
    /// `expires_in` as a JSON string (`"3600"`).
    ExpiresInString,
    /// The token response form-encoded (`access_token=...&token_type=...`).
    FormEncoded,
    /// Valid JSON labelled `text/plain`.
    WrongContentType,
    /// A UTF-8 byte order mark before the JSON.
    Bom,
    /// An OAuth error (`invalid_grant`) sent with status 200.
    ErrorIn200,
    /// 302 to a login page (an SSO proxy in front of the server).
    RedirectToLogin,
    /// The token endpoint waits this many milliseconds before answering.
    Slow {
        /// The delay in milliseconds.
        ms: u64,
    },
    /// 429 Too Many Requests with `Retry-After`.
    RateLimited,
    /// 401 `invalid_client` without the `WWW-Authenticate` challenge.
    InvalidClientNoChallenge,
    /// The access token's `aud` is another resource.
    WrongAudience,
    /// The token's `iss` differs from the issuer (a trailing slash).
    WrongIssuer,
    /// The token's `exp` is an hour in the past.
    ExpiredToken,
    /// The token's `iat` and `exp` shifted by this many seconds, as if the
    /// signer's clock were off (positive: ahead).
    ClockSkew {
        /// The shift in seconds.
        seconds: i64,
    },
    /// The token's header names a `kid` that is not in the JWKS.
    UnknownKid,
    /// Every token request rotates the signing key and drops the old one at
    /// once: the token is signed with a key no earlier JWKS fetch holds.
    RotatedKeysNoOverlap,
    /// An unsecured token: `alg: none`, no signature.
    AlgNone,
    /// The JWKS endpoint answers 503 with an HTML page.
    JwksDown,
    /// The metadata's `issuer` is not the URL it was fetched from.
    DiscoveryIssuerMismatch,
}

/// Every mode as `--fault` and the header take it (`<ms>` and `<s>` are numbers).
pub const MODES: &[&str] = &[
    "html-error-page",
    "invalid-json",
    "truncated-json",
    "empty-body",
    "missing-access-token",
    "missing-token-type",
    "expires-in-string",
    "form-encoded",
    "wrong-content-type",
    "bom",
    "error-in-200",
    "redirect-to-login",
    "slow:<ms>",
    "rate-limited",
    "invalid-client-no-challenge",
    "wrong-audience",
    "wrong-issuer",
    "expired-token",
    "clock-skew:<s>",
    "unknown-kid",
    "rotated-keys-no-overlap",
    "alg-none",
    "jwks-down",
    "discovery-issuer-mismatch",
];

/// The longest `slow:` delay accepted (ten minutes).
const MAX_SLOW_MS: u64 = 600_000;
/// The largest `clock-skew:` shift accepted (about ten years).
const MAX_SKEW_S: i64 = 315_360_000;

/// Why a fault mode could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The name is not a fault mode.
    #[error("unknown fault mode `{0}`; valid modes: {modes}", modes = MODES.join(", "))]
    Unknown(String),
    /// The mode takes a number that is missing or out of range.
    #[error("fault mode `{mode}`: {reason}")]
    Parameter {
        /// The mode as given.
        mode: String,
        /// What is wrong with its number.
        reason: String,
    },
    /// An empty entry in a comma-separated list.
    #[error(
        "empty fault mode in `{0}`; separate modes with single commas, e.g. `wrong-audience,slow:2000`"
    )]
    Empty(String),
}

impl Fault {
    /// One fault of every mode (`slow:2000`, `clock-skew:300` for the
    /// modes that take a number), in the order of [`MODES`].
    pub fn examples() -> Vec<Fault> {
        vec![
            Fault::HtmlErrorPage,
            Fault::InvalidJson,
            Fault::TruncatedJson,
            Fault::EmptyBody,
            Fault::MissingAccessToken,
            Fault::MissingTokenType,
            Fault::ExpiresInString,
            Fault::FormEncoded,
            Fault::WrongContentType,
            Fault::Bom,
            Fault::ErrorIn200,
            Fault::RedirectToLogin,
            Fault::Slow { ms: 2000 },
            Fault::RateLimited,
            Fault::InvalidClientNoChallenge,
            Fault::WrongAudience,
            Fault::WrongIssuer,
            Fault::ExpiredToken,
            Fault::ClockSkew { seconds: 300 },
            Fault::UnknownKid,
            Fault::RotatedKeysNoOverlap,
            Fault::AlgNone,
            Fault::JwksDown,
            Fault::DiscoveryIssuerMismatch,
        ]
    }

    /// The mode's name, without its number (`slow`, `clock-skew`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::HtmlErrorPage => "html-error-page",
            Fault::InvalidJson => "invalid-json",
            Fault::TruncatedJson => "truncated-json",
            Fault::EmptyBody => "empty-body",
            Fault::MissingAccessToken => "missing-access-token",
            Fault::MissingTokenType => "missing-token-type",
            Fault::ExpiresInString => "expires-in-string",
            Fault::FormEncoded => "form-encoded",
            Fault::WrongContentType => "wrong-content-type",
            Fault::Bom => "bom",
            Fault::ErrorIn200 => "error-in-200",
            Fault::RedirectToLogin => "redirect-to-login",
            Fault::Slow { .. } => "slow",
            Fault::RateLimited => "rate-limited",
            Fault::InvalidClientNoChallenge => "invalid-client-no-challenge",
            Fault::WrongAudience => "wrong-audience",
            Fault::WrongIssuer => "wrong-issuer",
            Fault::ExpiredToken => "expired-token",
            Fault::ClockSkew { .. } => "clock-skew",
            Fault::UnknownKid => "unknown-kid",
            Fault::RotatedKeysNoOverlap => "rotated-keys-no-overlap",
            Fault::AlgNone => "alg-none",
            Fault::JwksDown => "jwks-down",
            Fault::DiscoveryIssuerMismatch => "discovery-issuer-mismatch",
        }
    }

    /// Where the fault takes effect.
    pub fn endpoint(self) -> Endpoint {
        match self {
            Fault::JwksDown => Endpoint::Jwks,
            Fault::DiscoveryIssuerMismatch => Endpoint::Discovery,
            _ => Endpoint::Token,
        }
    }

    /// Reads one mode (`wrong-audience`, `slow:2000`, `clock-skew:-90`).
    pub fn parse(s: &str) -> Result<Fault, FaultError> {
        let s = s.trim();
        if let Some(n) = s.strip_prefix("slow:") {
            return match n.trim().parse::<u64>() {
                Ok(ms) if ms <= MAX_SLOW_MS => Ok(Fault::Slow { ms }),
                _ => Err(FaultError::Parameter {
                    mode: s.to_owned(),
                    reason: format!(
                        "give the delay in milliseconds, 0 to {MAX_SLOW_MS} (e.g. `slow:2000`)"
                    ),
                }),
            };
        }
        if let Some(n) = s.strip_prefix("clock-skew:") {
            return match n.trim().parse::<i64>() {
                Ok(seconds) if seconds.abs() <= MAX_SKEW_S => Ok(Fault::ClockSkew { seconds }),
                _ => Err(FaultError::Parameter {
                    mode: s.to_owned(),
                    reason: format!(
                        "give the shift in seconds, -{MAX_SKEW_S} to {MAX_SKEW_S} (e.g. `clock-skew:300` for a clock five minutes ahead)"
                    ),
                }),
            };
        }
        if s == "slow" || s == "clock-skew" {
            return Err(FaultError::Parameter {
                mode: s.to_owned(),
                reason: if s == "slow" {
                    "needs a delay in milliseconds (e.g. `slow:2000`)".to_owned()
                } else {
                    "needs a shift in seconds (e.g. `clock-skew:300`)".to_owned()
                },
            });
        }
        Fault::examples()
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| FaultError::Unknown(s.chars().take(60).collect()))
    }

    /// Reads a comma-separated list of modes.
    pub fn parse_list(s: &str) -> Result<Vec<Fault>, FaultError> {
        s.split(',')
            .map(|m| {
                if m.trim().is_empty() {
                    Err(FaultError::Empty(s.chars().take(80).collect()))
                } else {
                    Fault::parse(m)
                }
            })
            .collect()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Slow { ms } => write!(f, "slow:{ms}"),
            Fault::ClockSkew { seconds } => write!(f, "clock-skew:{seconds}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Fault, FaultError> {
        Fault::parse(s)
    }
}

/// The audience `wrong-audience` puts in tokens.
pub const WRONG_AUDIENCE: &str = "https://another-api.example.test";

/// The body of nginx's 502 page (what a reverse proxy serves when the
/// authorization server behind it fails).
const NGINX_502: &str = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

/// The body of nginx's 503 page.
const NGINX_503: &str = "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body></html>";

/// Where `redirect-to-login` sends the client.
const LOGIN_LOCATION: &str = "/login?next=/token";

/// The seconds `rate-limited` asks the client to wait.
const RETRY_AFTER_S: u64 = 30;

/// The delay of the first `slow` fault, if any.
pub(crate) fn delay(faults: &[Fault]) -> Option<std::time::Duration> {
    faults.iter().find_map(|f| match f {
        Fault::Slow { ms } => Some(std::time::Duration::from_millis(*ms)),
        _ => None,
    })
}

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The answer that replaces the token endpoint's own, for the faults that
/// do not need a token (the first such fault in the list wins).
pub(crate) fn token_replacement(faults: &[Fault]) -> Option<Response> {
    faults.iter().find_map(|f| {
        Some(match f {
            // What a reverse proxy serves when the server behind it fails.
            Fault::HtmlErrorPage => response(
                StatusCode::BAD_GATEWAY,
                "text/html",
                NGINX_502,
            ),
            // An SSO or authentication proxy that treats the token call as a
            // browser visit (RFC 6749 §5.1 wants 200 with JSON).
            Fault::RedirectToLogin => {
                let mut r = response(
                    StatusCode::FOUND,
                    "text/html; charset=utf-8",
                    format!("<a href=\"{LOGIN_LOCATION}\">Found</a>"),
                );
                r.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static(LOGIN_LOCATION));
                r
            }
            // RFC 6585 §4: 429, and RFC 9110 §10.2.3 Retry-After.
            Fault::RateLimited => {
                let mut r = no_store(response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "application/json",
                    json!({"error": "temporarily_unavailable", "error_description": format!("too many requests; retry after {RETRY_AFTER_S} seconds")}).to_string(),
                ));
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
                r
            }
            // RFC 6749 §5.2 requires WWW-Authenticate on this 401 when the
            // client used the Authorization header; it is left out.
            Fault::InvalidClientNoChallenge => no_store(response(
                StatusCode::UNAUTHORIZED,
                "application/json",
                json!({"error": "invalid_client", "error_description": "client authentication failed"}).to_string(),
            )),
            // RFC 6749 §5.2 errors are 400/401; this one comes with 200.
            Fault::ErrorIn200 => no_store(response(
                StatusCode::OK,
                "application/json",
                json!({"error": "invalid_grant", "error_description": "error reported with HTTP 200"}).to_string(),
            )),
            // RFC 8259 §2: an empty body is not a JSON text.
            Fault::EmptyBody => no_store(response(StatusCode::OK, "application/json", "")),
            _ => return None,
        })
    })
}

/// Changes the claims of a token about to be signed (access and ID tokens).
pub(crate) fn tamper_claims(claims: &mut Value, faults: &[Fault], issuer: &str) {
    let Some(m) = claims.as_object_mut() else {
        return;
    };
    for f in faults {
        match *f {
            // RFC 8725 §3.9: the resource server expects its own audience.
            Fault::WrongAudience => {
                m.insert("aud".into(), json!(WRONG_AUDIENCE));
            }
            // OpenID Connect Core §3.1.3.7 step 2, RFC 9068 §4: exact match;
            // the trailing slash is the most common difference (F59).
            Fault::WrongIssuer => {
                m.insert("iss".into(), json!(format!("{issuer}/")));
            }
            // RFC 7519 §4.1.4: exp an hour ago, same lifetime as issued.
            Fault::ExpiredToken => {
                let (iat, exp) = times(m);
                let new_exp = iat - 3600;
                m.insert("exp".into(), json!(new_exp));
                m.insert("iat".into(), json!(new_exp - (exp - iat)));
            }
            // The signer's clock is off: every time it stamps moves.
            Fault::ClockSkew { seconds } => {
                let (iat, exp) = times(m);
                m.insert("iat".into(), json!(iat.saturating_add(seconds)));
                m.insert("exp".into(), json!(exp.saturating_add(seconds)));
            }
            _ => {}
        }
    }
}

fn times(m: &Map<String, Value>) -> (i64, i64) {
    let get = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or_default();
    (get("iat"), get("exp"))
}

/// A `kid` no published key has: 32 random bytes, base64url, shaped like
/// the RFC 7638 thumbprints the real keys use.
pub(crate) fn unknown_kid() -> String {
    let mut b = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut b);
    gatewise_core::jose::b64url_encode(&b)
}

/// The successful token response, changed by the member and encoding faults.
pub(crate) fn token_success(mut out: Map<String, Value>, faults: &[Fault]) -> Response {
    let has = |f: Fault| faults.contains(&f);
    if has(Fault::MissingAccessToken) {
        out.remove("access_token");
    }
    if has(Fault::MissingTokenType) {
        out.remove("token_type");
    }
    if has(Fault::ExpiresInString)
        && let Some(v) = out.get_mut("expires_in")
    {
        // RFC 6749 App. A.14: expires-in = 1*DIGIT, a JSON number.
        *v = Value::String(v.to_string());
    }
    let (mut body, mut content_type) = if has(Fault::FormEncoded) {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &out {
            match v {
                Value::String(s) => form.append_pair(k, s),
                other => form.append_pair(k, &other.to_string()),
            };
        }
        (
            form.finish().into_bytes(),
            "application/x-www-form-urlencoded",
        )
    } else {
        let mut s = Value::Object(out).to_string();
        if has(Fault::InvalidJson) {
            // RFC 8259 §4: no comma after the last member.
            s.pop();
            s.push_str(",}");
        }
        (s.into_bytes(), "application/json")
    };
    if has(Fault::WrongContentType) {
        content_type = "text/plain; charset=utf-8";
    }
    if has(Fault::Bom) {
        // RFC 8259 §8.1: senders MUST NOT add a byte order mark.
        body.splice(0..0, [0xEF, 0xBB, 0xBF]);
    }
    if has(Fault::TruncatedJson) {
        // RFC 9112 §6.3: Content-Length promises the whole body; half of
        // it is sent, then the connection is closed.
        let full = body.len();
        body.truncate(full / 2);
        let mut r = no_store(response(
            StatusCode::OK,
            content_type,
            Body::new(CutShort::new(body)),
        ));
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(full));
        return r;
    }
    no_store(response(StatusCode::OK, content_type, body))
}

/// `jwks-down`: what a proxy serves when the key service behind it is down.
pub(crate) fn jwks_down() -> Response {
    let mut r = response(StatusCode::SERVICE_UNAVAILABLE, "text/html", NGINX_503);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

/// `discovery-issuer-mismatch`: the issuer the metadata claims. RFC 8414
/// §3.3 and OpenID Connect Discovery §4.3 want it identical to the URL the
/// document was fetched from; the loopback host is swapped (`127.0.0.1` ↔
/// `localhost`, the internal-versus-public host name mix-up), other issuers
/// get a trailing slash.
pub(crate) fn other_issuer(issuer: &str) -> String {
    if let Ok(mut u) = url::Url::parse(issuer) {
        let swapped = match u.host_str() {
            Some("127.0.0.1") => Some("localhost"),
            Some("localhost") => Some("127.0.0.1"),
            _ => None,
        };
        if let Some(h) = swapped
            && u.set_host(Some(h)).is_ok()
        {
            return u.as_str().trim_end_matches('/').to_owned();
        }
    }
    format!("{issuer}/")
}

/// The page `redirect-to-login` leads to (only served in fault mode).
pub(crate) fn login_page() -> Response {
    response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate SSO</title></head>\
         <body><h1>Sign in</h1><form method=\"post\" action=\"/login\">\
         <label>User <input name=\"username\"></label> \
         <label>Password <input name=\"password\" type=\"password\"></label> \
         <button>Sign in</button></form>\
         <p>(gatewise fault mode: <code>redirect-to-login</code> sent the token request here.)</p>\
         </body></html>\n",
    )
}

/// A body that sends its bytes, then fails, so the server closes the
/// connection before `Content-Length` is reached (`truncated-json`).
#[derive(Debug)]
struct CutShort {
    data: Option<Bytes>,
    yielded: bool,
}

impl CutShort {
    fn new(data: Vec<u8>) -> CutShort {
        CutShort {
            data: Some(Bytes::from(data)),
            yielded: false,
        }
    }
}

impl http_body::Body for CutShort {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(d))));
        }
        if !self.yielded {
            // Pending once, so the server flushes what was written before
            // the failure closes the connection.
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "truncated-json fault: the body stops here",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_and_prints_back() {
        let examples = Fault::examples();
        assert_eq!(examples.len(), MODES.len());
        for (f, mode) in examples.iter().zip(MODES) {
            assert_eq!(f.name(), mode.split(':').next().unwrap());
            assert_eq!(Fault::parse(&f.to_string()), Ok(*f));
        }
        assert_eq!(Fault::parse(" slow:250 "), Ok(Fault::Slow { ms: 250 }));
        assert_eq!(
            Fault::parse("clock-skew:-90"),
            Ok(Fault::ClockSkew { seconds: -90 })
        );
    }

    #[test]
    fn bad_modes_are_named_with_the_valid_ones() {
        let e = Fault::parse("html-eror-page").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`html-eror-page`"), "{msg}");
        for mode in MODES {
            assert!(msg.contains(mode), "{mode} not listed in: {msg}");
        }
        for bad in ["slow", "slow:soon", "slow:-1", "clock-skew:x", "clock-skew"] {
            assert!(
                matches!(Fault::parse(bad), Err(FaultError::Parameter { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            Fault::parse_list("bom, wrong-audience"),
            Ok(vec![Fault::Bom, Fault::WrongAudience])
        );
        assert!(matches!(
            Fault::parse_list("bom,,alg-none"),
            Err(FaultError::Empty(_))
        ));
        assert!(matches!(
            Fault::parse_list("bom,nope"),
            Err(FaultError::Unknown(m)) if m == "nope"
        ));
    }

    #[test]
    fn claims_are_changed_as_documented() {
        let base =
            json!({"iss": "https://as.test", "aud": "https://api.test", "iat": 1000, "exp": 4600});
        let mut c = base.clone();
        tamper_claims(
            &mut c,
            &[Fault::WrongAudience, Fault::WrongIssuer],
            "https://as.test",
        );
        assert_eq!(c["aud"], WRONG_AUDIENCE);
        assert_eq!(c["iss"], "https://as.test/");
        let mut c = base.clone();
        tamper_claims(&mut c, &[Fault::ExpiredToken], "https://as.test");
        assert_eq!(
            (c["iat"].as_i64(), c["exp"].as_i64()),
            (Some(-6200), Some(-2600))
        );
        let mut c = base.clone();
        tamper_claims(
            &mut c,
            &[Fault::ClockSkew { seconds: -120 }],
            "https://as.test",
        );
        assert_eq!(
            (c["iat"].as_i64(), c["exp"].as_i64()),
            (Some(880), Some(4480))
        );
        let mut c = base.clone();
        tamper_claims(&mut c, &[Fault::Bom, Fault::AlgNone], "https://as.test");
        assert_eq!(c, base);
    }

    #[test]
    fn other_issuer_differs() {
        assert_eq!(
            other_issuer("http://127.0.0.1:9100"),
            "http://localhost:9100"
        );
        assert_eq!(
            other_issuer("http://localhost:9100/realms/x"),
            "http://127.0.0.1:9100/realms/x"
        );
        assert_eq!(other_issuer("https://as.test"), "https://as.test/");
    }
}
