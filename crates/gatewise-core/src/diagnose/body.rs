//! Transport and body checks shared by every kind of response (HT-01 to
//! HT-04), and the per-kind "is this a JSON object" judgement.

use crate::capture::{FramingIssue, Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::media::{self, Shape, Sniffed};
use crate::secret;
use serde_json::{Map, Value};

macro_rules! check {
    ($name:ident, $rule:literal, $code:literal, $sev:ident, $spec:literal, $summary:literal) => {
        #[doc = $summary]
        pub const $name: Check = Check {
            rule: $rule,
            code: $code,
            severity: Severity::$sev,
            spec: $spec,
            summary: $summary,
        };
    };
}
pub(crate) use check;

check!(
    HTML_LABELLED_JSON,
    "HT-01",
    "html-labelled-json",
    Error,
    "RFC 9110 §8.3",
    "Content-Type says JSON but the body is an HTML page: an intermediary or error page answered."
);
check!(
    BODY_TYPE_MISMATCH,
    "HT-01",
    "body-type-mismatch",
    Error,
    "RFC 9110 §8.3",
    "Content-Type says JSON but the body is something else (form pairs, XML, text)."
);
check!(
    GZIP_UNLABELLED,
    "HT-02",
    "gzip-unlabelled",
    Error,
    "RFC 9110 §8.4",
    "The body is gzip-compressed but no Content-Encoding says so."
);
check!(
    ENCODING_UNDECODABLE,
    "HT-02",
    "content-encoding-undecodable",
    Error,
    "RFC 9110 §8.4",
    "Content-Encoding names a coding the body is not actually encoded with."
);
check!(
    ENCODING_UNSUPPORTED,
    "HT-02",
    "content-encoding-unsupported",
    Info,
    "RFC 9110 §8.4",
    "Content-Encoding names a coding the doctor cannot decode (br, zstd); the body was not judged."
);
check!(
    BODY_TRUNCATED,
    "HT-03",
    "body-truncated",
    Error,
    "RFC 9112 §6.3",
    "The body is shorter than Content-Length and the document is incomplete."
);
check!(
    LENGTH_MISMATCH,
    "HT-03",
    "content-length-mismatch",
    Warn,
    "RFC 9112 §6.3",
    "Content-Length does not match the body received, though the document is complete."
);
check!(
    CHUNKED_UNTERMINATED,
    "HT-03",
    "chunked-unterminated",
    Error,
    "RFC 9112 §7.1",
    "The chunked body has no terminating zero-length chunk: the message is incomplete."
);
check!(
    CHUNKED_MALFORMED,
    "HT-03",
    "chunked-malformed",
    Error,
    "RFC 9112 §7.1",
    "A chunk-size line is not hexadecimal or a chunk runs past the end of the capture."
);
check!(
    CHUNKED_WITH_LENGTH,
    "HT-03",
    "chunked-with-content-length",
    Warn,
    "RFC 9112 §6.3",
    "Both Transfer-Encoding: chunked and Content-Length are present (request-smuggling territory)."
);
check!(
    BAD_CONTENT_LENGTH,
    "HT-03",
    "content-length-invalid",
    Warn,
    "RFC 9110 §8.6",
    "Content-Length is not a number, or appears twice with different values."
);
check!(
    BODY_BOM,
    "HT-04",
    "body-bom",
    Warn,
    "RFC 8259 §8.1",
    "The body starts with a UTF-8 byte order mark, which JSON senders must not add."
);
check!(
    BODY_NOT_UTF8,
    "HT-04",
    "body-not-utf8",
    Error,
    "RFC 8259 §8.1",
    "The body is not valid UTF-8, which JSON exchanged between systems must be."
);
check!(
    CHARSET_NOT_UTF8,
    "HT-04",
    "charset-not-utf8",
    Warn,
    "RFC 8259 §8.1",
    "Content-Type declares a charset other than UTF-8 for a JSON body."
);
check!(
    HEADERS_UNKNOWN,
    "HT-06",
    "capture-without-headers",
    Info,
    "RFC 9110 §6",
    "The input is a bare body: status and header rules (media type, caching) were not checked."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &HTML_LABELLED_JSON,
    &BODY_TYPE_MISMATCH,
    &GZIP_UNLABELLED,
    &ENCODING_UNDECODABLE,
    &ENCODING_UNSUPPORTED,
    &BODY_TRUNCATED,
    &LENGTH_MISMATCH,
    &CHUNKED_UNTERMINATED,
    &CHUNKED_MALFORMED,
    &CHUNKED_WITH_LENGTH,
    &BAD_CONTENT_LENGTH,
    &BODY_BOM,
    &BODY_NOT_UTF8,
    &CHARSET_NOT_UTF8,
    &HEADERS_UNKNOWN,
];

/// The checks that differ per kind of document: the rule a non-JSON or
/// malformed body breaks depends on what the body was supposed to be.
#[derive(Debug)]
pub struct KindChecks {
    /// A noun for messages: "token response", "JWK Set", ...
    pub noun: &'static str,
    /// Content-Type is not `application/json` (nor an accepted alternative).
    pub content_type: &'static Check,
    /// The body is an HTML page (under a non-JSON Content-Type).
    pub html: &'static Check,
    /// The body is not JSON at all (form, XML, text, binary).
    pub not_json: &'static Check,
    /// The body is empty.
    pub empty: &'static Check,
    /// The body is JSON with a syntax error.
    pub syntax: &'static Check,
    /// The body is JSON but not an object.
    pub not_object: &'static Check,
}

/// Declares the five per-kind checks of a [`KindChecks`].
macro_rules! kind_checks {
    ($kinds:ident, $noun:literal, $prefix:literal,
     type: ($trule:literal, $tsev:ident, $tspec:literal),
     body: ($brule:literal, $bspec:literal)) => {
        #[allow(missing_docs)]
        pub mod $kinds {
            use crate::finding::{Check, Severity};
            pub const CONTENT_TYPE: Check = Check {
                rule: $trule,
                code: concat!($prefix, "-content-type"),
                severity: Severity::$tsev,
                spec: $tspec,
                summary: concat!("The ", $noun, " is not labelled application/json."),
            };
            pub const HTML: Check = Check {
                rule: $trule,
                code: concat!($prefix, "-html-page"),
                severity: Severity::Error,
                spec: $tspec,
                summary: concat!("An HTML page came back where a ", $noun, " was expected."),
            };
            pub const NOT_JSON: Check = Check {
                rule: $trule,
                code: concat!($prefix, "-not-json"),
                severity: Severity::Error,
                spec: $tspec,
                summary: concat!(
                    "The ",
                    $noun,
                    " body is not JSON (form pairs, XML, text or binary)."
                ),
            };
            pub const EMPTY: Check = Check {
                rule: $brule,
                code: concat!($prefix, "-body-empty"),
                severity: Severity::Error,
                spec: $bspec,
                summary: concat!("The ", $noun, " body is empty."),
            };
            pub const SYNTAX: Check = Check {
                rule: $brule,
                code: concat!($prefix, "-json-syntax"),
                severity: Severity::Error,
                spec: $bspec,
                summary: concat!("The ", $noun, " body is malformed JSON."),
            };
            pub const NOT_OBJECT: Check = Check {
                rule: $brule,
                code: concat!($prefix, "-not-object"),
                severity: Severity::Error,
                spec: $bspec,
                summary: concat!("The ", $noun, " body is JSON but not an object."),
            };
            pub const KIND: super::KindChecks = super::KindChecks {
                noun: $noun,
                content_type: &CONTENT_TYPE,
                html: &HTML,
                not_json: &NOT_JSON,
                empty: &EMPTY,
                syntax: &SYNTAX,
                not_object: &NOT_OBJECT,
            };
            pub const CHECKS: &[&Check] = &[
                &CONTENT_TYPE,
                &HTML,
                &NOT_JSON,
                &EMPTY,
                &SYNTAX,
                &NOT_OBJECT,
            ];
        }
    };
}

kind_checks!(token_kind, "token response", "token",
    type: ("TR-02", Error, "RFC 6749 §5.1"), body: ("TR-03", "RFC 6749 §5.1; RFC 8259 §2"));
kind_checks!(error_kind, "error response", "error-response",
    type: ("ER-04", Error, "RFC 6749 §5.2"), body: ("ER-04", "RFC 6749 §5.2"));
kind_checks!(introspection_kind, "introspection response", "introspection",
    type: ("IN-02", Error, "RFC 7662 §2.2"), body: ("IN-02", "RFC 7662 §2.2"));
kind_checks!(discovery_kind, "metadata document", "discovery",
    type: ("MD-06", Error, "RFC 8414 §3.2"), body: ("MD-06", "RFC 8414 §3.2"));
kind_checks!(jwks_kind, "JWK Set", "jwks",
    type: ("JK-09", Warn, "RFC 7517 §8.5.1"), body: ("JK-01", "RFC 7517 §5"));

/// Transport-level checks on a response body: framing, encodings, BOM,
/// UTF-8. `bom` is the check a leading byte order mark breaks for this kind
/// ([`BODY_BOM`] in general). Returns the sniffed body.
pub fn transport(
    req: Option<&Request>,
    resp: &Response,
    bom: &'static Check,
    findings: &mut Vec<Finding>,
) -> Sniffed {
    let sniffed = media::sniff(&resp.body.decoded);
    let complete = matches!(sniffed.shape, Shape::Json(_) | Shape::Empty);
    for issue in &resp.body.issues {
        match issue {
            FramingIssue::ShortBody { declared, received } => {
                let f = if complete {
                    Finding::new(&LENGTH_MISMATCH, format!("Content-Length says {declared} bytes but {received} arrived"))
                        .cause("the capture was edited (line endings converted, pretty-printed) or a proxy rewrote the body without fixing Content-Length; a client reading exactly Content-Length bytes waits for the rest and times out")
                        .fix("capture again with `curl -si` and compare; if the length really is wrong, fix the component that rewrites the body")
                } else {
                    Finding::new(&BODY_TRUNCATED, format!("the body stops after {received} of {declared} bytes"))
                        .cause("the connection was cut (proxy or load-balancer timeout, a body-size limit, a crashed backend) or the client's read buffer is too small")
                        .fix("look for a size limit or idle timeout on the intermediaries between client and server; capture again directly against the server")
                };
                findings.push(f.evidence(format!(
                    "Content-Length: {declared}; bytes received: {received}; body ends with: {}",
                    tail_preview(&resp.body.decoded)
                )));
            }
            FramingIssue::LongBody { declared, received } => findings.push(
                Finding::new(&LENGTH_MISMATCH, format!("Content-Length says {declared} bytes but {received} follow"))
                    .evidence(format!("Content-Length: {declared}; bytes present: {received}"))
                    .cause("a proxy or filter appended to the body without updating Content-Length, or the capture holds more than one message")
                    .fix("find the component that changes the body; the client will only read the first Content-Length bytes"),
            ),
            FramingIssue::BadContentLength(v) => findings.push(
                Finding::new(&BAD_CONTENT_LENGTH, "Content-Length is invalid or contradictory")
                    .evidence(format!("Content-Length: {v}"))
                    .cause("two components each set Content-Length, or the value was garbled")
                    .fix("send exactly one valid Content-Length (RFC 9110 §8.6)"),
            ),
            FramingIssue::ChunkedWithContentLength => findings.push(
                Finding::new(&CHUNKED_WITH_LENGTH, "both Transfer-Encoding: chunked and Content-Length are set")
                    .evidence(format!("Transfer-Encoding: {}; Content-Length: {}", resp.headers.get("transfer-encoding").unwrap_or(""), resp.headers.get("content-length").unwrap_or("")))
                    .cause("a proxy added one framing without removing the other")
                    .fix("send only one; RFC 9112 §6.3 makes Transfer-Encoding win, and some intermediaries disagree"),
            ),
            FramingIssue::ChunkedUnterminated => findings.push(
                Finding::new(&CHUNKED_UNTERMINATED, "the chunked body never ends (no zero-length last chunk)")
                    .evidence(format!("body ends with: {}", tail_preview(&resp.body.wire)))
                    .cause("the server or a proxy closed the stream early")
                    .fix("check upstream timeouts and crashes; capture again directly against the server"),
            ),
            FramingIssue::ChunkedMalformed { offset } => findings.push(
                Finding::new(&CHUNKED_MALFORMED, format!("the chunked encoding is malformed at byte {offset}"))
                    .evidence(format!("near: {}", media::preview(resp.body.wire.get(*offset..).unwrap_or(&[]), 40)))
                    .cause("the body was captured after de-chunking while the header was kept, or a chunk was cut short")
                    .fix("if the capture tool decoded the body already, drop the Transfer-Encoding header from the capture"),
            ),
            FramingIssue::ContentDecodingFailed { coding, error } => findings.push(
                Finding::new(&ENCODING_UNDECODABLE, format!("Content-Encoding says {coding} but the body is not {coding} data"))
                    .evidence(format!("Content-Encoding: {coding}; decoder: {error}; body starts: {}", media::preview(&resp.body.wire, 40)))
                    .cause("a proxy decompressed the body but kept the Content-Encoding header (or the capture tool did)")
                    .fix("remove Content-Encoding when the body is not encoded; the client will otherwise fail to decompress it"),
            ),
            FramingIssue::UnknownContentCoding(c) => findings.push(
                Finding::new(&ENCODING_UNSUPPORTED, format!("the body is {c}-encoded and was not decoded"))
                    .evidence(format!("Content-Encoding: {c}"))
                    .cause("the server compresses with a coding the doctor does not read; many OAuth clients cannot read it either")
                    .fix(format!("capture without compression (`curl` without --compressed, or `Accept-Encoding: identity`); if the client did not advertise {c}, the server must not use it")),
            ),
            FramingIssue::MalformedHeaderLine { .. } => {}
        }
    }
    if matches!(sniffed.shape, Shape::Gzip) && resp.body.decoded_codings.is_empty() {
        let accept = req
            .and_then(|r| r.headers.get("accept-encoding"))
            .map(|a| format!("; the request sent Accept-Encoding: {a}"))
            .unwrap_or_else(|| "; the request sent no Accept-Encoding".to_string());
        findings.push(
            Finding::new(&GZIP_UNLABELLED, "the body is gzip data but nothing says it is compressed")
                .evidence(format!("body starts with bytes {}; Content-Encoding: {}{accept}", media::preview(&resp.body.decoded, 4), resp.headers.get("content-encoding").unwrap_or("(none)")))
                .cause("a proxy stripped the Content-Encoding header, or the server compresses regardless of Accept-Encoding; the client then parses compressed bytes (Node prints \"Unexpected token '\\u001f'\")")
                .fix("keep Content-Encoding: gzip on compressed bodies, and compress only when the client sent Accept-Encoding: gzip"),
        );
    }
    if sniffed.bom {
        findings.push(
            Finding::new(bom, "the body starts with a UTF-8 byte order mark")
                .evidence("first bytes: EF BB BF")
                .cause("the server writes JSON with an encoder that adds a BOM (common in .NET and PowerShell) or serves a file saved with one")
                .fix("write JSON without a BOM; RFC 8259 §8.1 forbids adding one, and parsers such as JSON.parse on raw text reject it"),
        );
    }
    if sniffed.invalid_utf8 && !matches!(sniffed.shape, Shape::Gzip | Shape::Binary) {
        findings.push(
            Finding::new(&BODY_NOT_UTF8, "the body is not valid UTF-8")
                .evidence(format!(
                    "body starts: {}",
                    media::preview(&resp.body.decoded, 40)
                ))
                .cause("the server encodes text in Latin-1 or another legacy charset")
                .fix("encode JSON as UTF-8"),
        );
    }
    if let Some(cs) = resp
        .media_type()
        .as_ref()
        .and_then(|m| m.non_utf8_charset().map(str::to_string))
        && resp
            .media_type()
            .is_some_and(|m| m.is_json() || m.is_json_suffix())
    {
        findings.push(
            Finding::new(
                &CHARSET_NOT_UTF8,
                format!("the JSON body is labelled charset={cs}"),
            )
            .evidence(format!(
                "Content-Type: {}",
                resp.headers.get("content-type").unwrap_or("")
            ))
            .cause("the server's framework default charset leaks into JSON responses")
            .fix("send JSON as UTF-8 and drop the charset parameter or set it to utf-8"),
        );
    }
    sniffed
}

fn tail_preview(data: &[u8]) -> String {
    let from = data.len().saturating_sub(40);
    let tail = data.get(from..).unwrap_or(&[]);
    format!(
        "{}{}",
        if from > 0 { "…" } else { "" },
        secret::mask_text(&media::preview(tail, 40))
    )
}

/// A body rendered for evidence with secrets masked and cut to `max` chars.
pub fn body_evidence(sniffed: &Sniffed, raw: &[u8], max: usize) -> String {
    match &sniffed.shape {
        Shape::Json(v) => secret::json_evidence(v, max),
        Shape::Form(pairs) => {
            let s = secret::mask_form(pairs);
            if s.chars().count() > max {
                format!("{}…", s.chars().take(max).collect::<String>())
            } else {
                s
            }
        }
        Shape::Empty => "(empty body)".to_string(),
        _ => secret::mask_text(&media::preview(raw, max)),
    }
}

/// What the body of a JSON-expected response turned out to be.
#[derive(Debug)]
pub enum Json<'a> {
    /// A JSON object: the normal case.
    Object(&'a Map<String, Value>),
    /// Anything else; the finding explaining it was already pushed.
    Not,
}

/// Judges media type and body shape for a response that must be a JSON
/// object, pushing the kind's findings; returns the object when there is one.
///
/// `also_accept` lists other media types that are legal for this kind (e.g.
/// `application/jwk-set+json`).
pub fn json_object<'a>(
    kind: &KindChecks,
    resp: &Response,
    sniffed: &'a Sniffed,
    also_accept: &[&str],
    findings: &mut Vec<Finding>,
) -> Json<'a> {
    let mt = resp.media_type();
    let labelled_json = mt
        .as_ref()
        .is_some_and(|m| m.is_json() || m.is_json_suffix());
    let evidence_ct = match resp.headers.get("content-type") {
        Some(ct) => format!("Content-Type: {ct}"),
        None if resp.has_head() => "no Content-Type header".to_string(),
        None => "no headers in the capture".to_string(),
    };
    let status = resp
        .status
        .map(|s| format!("HTTP {s}; "))
        .unwrap_or_default();
    let preview = body_evidence(sniffed, &resp.body.decoded, 160);
    match &sniffed.shape {
        Shape::Html { title } => {
            let named = title
                .as_ref()
                .map(|t| format!(" titled \"{t}\""))
                .unwrap_or_default();
            let (check, what) = if labelled_json {
                (
                    &HTML_LABELLED_JSON,
                    format!("the {} is an HTML page{named} labelled as JSON", kind.noun),
                )
            } else {
                (
                    kind.html,
                    format!(
                        "an HTML page{named} came back instead of the expected {}",
                        kind.noun
                    ),
                )
            };
            findings.push(
                Finding::new(check, what)
                    .evidence(format!("{status}{evidence_ct}; body: {preview}"))
                    .cause(html_cause(resp.status, title.as_deref()))
                    .fix("call the endpoint the metadata names, with POST and the right host; if a gateway, WAF or SSO proxy sits in between, exempt the OAuth endpoints from it and let JSON errors through"),
            );
            return Json::Not;
        }
        Shape::BrokenJson(e) => {
            let mut f = Finding::new(
                kind.syntax,
                format!(
                    "the {} is not valid JSON: {} at line {}, column {}",
                    kind.noun, e.message, e.line, e.column
                ),
            )
            .evidence(format!(
                "{status}{evidence_ct}; at line {} column {}:\n{}",
                e.line,
                e.column,
                secret::mask_text(&e.snippet)
            ));
            f = if e.eof {
                f.cause("the document ends early: the body was cut off (timeout, size limit, dropped connection) or written before it was complete").fix("check for truncation between server and client; compare the bytes received with Content-Length")
            } else {
                f.cause("the server builds JSON by hand or a filter edited the body")
                    .fix("serialize the response with a JSON library; find what rewrites the body")
            };
            findings.push(f);
            return Json::Not;
        }
        Shape::Json(Value::Object(map)) => {
            content_type_for_json(kind, resp, mt.as_ref(), also_accept, &evidence_ct, findings);
            return Json::Object(map);
        }
        Shape::Json(other) => {
            findings.push(
                Finding::new(kind.not_object, format!("the {} is {}, not a JSON object", kind.noun, sniffed.shape.describe()))
                    .evidence(format!("{status}{evidence_ct}; body: {}", secret::mask_text(&media::preview(other.to_string().as_bytes(), 120))))
                    .cause("the server returns a bare value (a token string, an array) where RFC requires an object")
                    .fix(format!("return a JSON object with the members the {} requires", kind.noun)),
            );
            return Json::Not;
        }
        Shape::Gzip => return Json::Not, // already reported as gzip-unlabelled
        _ => {}
    }
    // Not JSON at all.
    let check = match (&sniffed.shape, labelled_json) {
        (Shape::Empty, _) => kind.empty,
        (_, true) => &BODY_TYPE_MISMATCH,
        _ => kind.not_json,
    };
    let (cause, fix) = match &sniffed.shape {
        Shape::Empty => (
            "the server or a proxy answered with no body: a crashed handler, a gateway that swallows bodies, or a HEAD/OPTIONS confusion".to_string(),
            format!("return the {} as a JSON object; find the hop that drops the body", kind.noun),
        ),
        Shape::Form(_) => (
            "the server answers in the legacy form encoding (GitHub does unless the request sends `Accept: application/json`; old Facebook Graph did too)".to_string(),
            "send `Accept: application/json` with the request, or use a provider setting that returns JSON".to_string(),
        ),
        Shape::Xml { .. } => (
            "an XML error from a storage or gateway layer (S3, an API gateway, SOAP stack) answered instead of the OAuth server".to_string(),
            "route the OAuth endpoint to the authorization server itself".to_string(),
        ),
        _ => (
            "a proxy, load balancer or framework default answered with text instead of the OAuth server's JSON".to_string(),
            format!("return the {} as application/json; find the hop that writes this text", kind.noun),
        ),
    };
    findings.push(
        Finding::new(
            check,
            format!(
                "the {} is {}, not JSON",
                kind.noun,
                sniffed.shape.describe()
            ),
        )
        .evidence(format!("{status}{evidence_ct}; body: {preview}"))
        .cause(cause)
        .fix(fix),
    );
    Json::Not
}

fn content_type_for_json(
    kind: &KindChecks,
    resp: &Response,
    mt: Option<&media::MediaType>,
    also_accept: &[&str],
    evidence_ct: &str,
    findings: &mut Vec<Finding>,
) {
    if !resp.has_head() {
        findings.push(
            Finding::new(
                &HEADERS_UNKNOWN,
                "only a body was given: status and headers were not checked",
            )
            .evidence("the input has no status line or headers")
            .cause("the capture holds the body alone")
            .fix("capture with `curl -si` to include the status line and headers"),
        );
        return;
    }
    let ok = mt.is_some_and(|m| m.is_json() || also_accept.contains(&m.essence.as_str()));
    if ok {
        return;
    }
    let label = mt
        .map(|m| m.essence.clone())
        .unwrap_or_else(|| "(none)".to_string());
    let what = match mt {
        Some(_) => format!("the {} is valid JSON but labelled {label}", kind.noun),
        None => format!("the {} is valid JSON but has no Content-Type", kind.noun),
    };
    let cause = match label.as_str() {
        "text/javascript" | "application/javascript" => {
            "the server labels JSON as JavaScript (Dropbox did); strict clients (Rust oauth2, openidconnect, Dart oauth2) reject it"
        }
        "text/plain" => {
            "a framework default content type; strict clients (Rust oauth2, openidconnect) reject it while Python clients accept it"
        }
        "text/html" => {
            "the handler writes JSON through an HTML view or a framework default (Deezer, QQ); Spring and Rust clients reject it"
        }
        _ => {
            "the server or a proxy sets the wrong media type; strict clients compare it before parsing"
        }
    };
    findings.push(
        Finding::new(kind.content_type, what)
            .evidence(evidence_ct.to_string())
            .cause(cause)
            .fix("send Content-Type: application/json (RFC 6749 §5.1)"),
    );
}

fn html_cause(status: Option<u16>, title: Option<&str>) -> String {
    let t = title.unwrap_or("").to_ascii_lowercase();
    let status_text = status.map(|s| s.to_string()).unwrap_or_default();
    if t.contains("bad gateway")
        || t.contains("gateway time")
        || t.contains("service unavailable")
        || matches!(status, Some(502..=504))
    {
        format!(
            "a reverse proxy or load balancer answered {status_text} because the authorization server behind it was down, slow or unreachable"
        )
    } else if t.contains("sign in")
        || t.contains("login")
        || t.contains("log in")
        || t.contains("sign-in")
    {
        "an SSO or authentication proxy intercepted the call and served its login page (the token endpoint must be reachable without a browser session)".to_string()
    } else if t.contains("method not allowed") || status == Some(405) {
        "the request used the wrong method or URL: the token endpoint only accepts POST".to_string()
    } else if t.contains("not found") || status == Some(404) {
        "the URL is wrong: no token endpoint there (check the metadata's token_endpoint)"
            .to_string()
    } else if t.contains("forbidden")
        || t.contains("access denied")
        || t.contains("attention required")
        || t.contains("request rejected")
        || status == Some(403)
    {
        "a WAF, CDN or corporate proxy blocked the request and served its block page".to_string()
    } else if status.is_some_and(|s| s < 300) {
        "the request reached a web application rather than the token endpoint (wrong URL, or an SPA fallback that serves index.html for unknown paths)".to_string()
    } else {
        "an intermediary or the server's error handler rendered an HTML error page instead of an OAuth JSON error".to_string()
    }
}
