//! Diagnosis of captured responses: each module judges one kind of response
//! by its own rules and returns findings. Checks are ordered as
//! `oauth-rules.md` §3 recommends: transport, media type and body shape,
//! success-or-error classification, then members.

pub mod assertion;
pub mod authorize;
pub mod body;
pub mod call;
pub mod callback;
pub mod device;
pub mod discovery;
pub mod error;
pub mod introspection;
pub mod jwks;
pub mod live;
pub mod provider;
pub mod request;
pub mod revocation;
pub mod token;
pub mod transport;

use crate::capture::{Capture, CaptureKind, Exchange};
use crate::finding::{Check, Finding, Severity};

/// What a response is supposed to be (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A token endpoint response (success or error).
    Token,
    /// An RFC 7662 introspection response.
    Introspection,
    /// An RFC 8414 / OpenID Connect Discovery metadata document.
    Discovery,
    /// An RFC 7517 JWK Set.
    Jwks,
    /// An RFC 7009 revocation response.
    Revocation,
}

impl Expect {
    /// Parses the `--expect` value.
    pub fn parse(s: &str) -> Option<Expect> {
        match s {
            "token" => Some(Expect::Token),
            "introspection" => Some(Expect::Introspection),
            "discovery" => Some(Expect::Discovery),
            "jwks" => Some(Expect::Jwks),
            "revocation" => Some(Expect::Revocation),
            _ => None,
        }
    }

    /// The `--expect` name.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Token => "token",
            Expect::Introspection => "introspection",
            Expect::Discovery => "discovery",
            Expect::Jwks => "jwks",
            Expect::Revocation => "revocation",
        }
    }
}

/// Everything the judges may use besides the capture itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// What the response should be.
    pub expect: Expect,
    /// The scope the client asked for, when the request is not in the capture.
    pub request_scope: Option<String>,
    /// The issuer the client expects (`--issuer`).
    pub issuer: Option<String>,
    /// Current Unix time in seconds, for time-dependent checks.
    pub now: Option<u64>,
}

impl Context {
    /// A context that only says what to expect.
    pub fn new(expect: Expect) -> Self {
        Context {
            expect,
            request_scope: None,
            issuer: None,
            now: None,
        }
    }
}

/// HT-05: nothing to judge.
pub const NO_RESPONSE: Check = Check {
    rule: "HT-05",
    code: "no-response-captured",
    severity: Severity::Error,
    spec: "RFC 9110 §15",
    summary: "The capture holds no HTTP response at all (empty input, or a request with no answer).",
};

/// A malformed header line was skipped while reading the capture.
pub const CAPTURE_HEADER_SKIPPED: Check = Check {
    rule: "HT-07",
    code: "capture-header-line-malformed",
    severity: Severity::Info,
    spec: "RFC 9112 §5",
    summary: "A header line without a colon was skipped while reading the capture.",
};

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[&NO_RESPONSE, &CAPTURE_HEADER_SKIPPED];

/// Judges every exchange of a capture. Findings of later exchanges are
/// prefixed with their label when the capture holds more than one.
pub fn response(capture: &Capture, ctx: &Context) -> Vec<Finding> {
    let mut findings = Vec::new();
    for issue in &capture.issues {
        if let crate::capture::FramingIssue::MalformedHeaderLine { line, text } = issue {
            findings.push(
                Finding::new(
                    &CAPTURE_HEADER_SKIPPED,
                    format!("line {line} is not a header and was skipped"),
                )
                .evidence(format!("line {line}: {text}"))
                .cause("the capture was edited by hand or wrapped by a terminal")
                .fix("capture with `curl -si` and save the output unchanged"),
            );
        }
    }
    if capture.kind == CaptureKind::Empty {
        findings.push(
            Finding::new(&NO_RESPONSE, "the capture is empty")
                .evidence("the input holds no bytes other than whitespace")
                .cause("the client got no response (DNS, connection or TLS failure), or the capture was not saved")
                .fix("capture the exchange with `curl -si -X POST <token-url> ... > capture.http`; if curl fails too, the problem is the network path: run `gatewise doctor token` to see where it breaks"),
        );
        return findings;
    }
    let judged: Vec<&Exchange> = pick_exchanges(capture, ctx);
    let many = judged.len() > 1;
    for ex in judged {
        let mut own = exchange(ex, ctx);
        if many {
            for f in &mut own {
                f.title = format!("{}: {}", ex.label, f.title);
            }
        }
        findings.extend(own);
    }
    findings
}

/// In a HAR file only the entries that look like the expected OAuth call are
/// judged (all of them when none does); in raw captures, every exchange.
fn pick_exchanges<'a>(capture: &'a Capture, ctx: &Context) -> Vec<&'a Exchange> {
    let all: Vec<&Exchange> = capture.exchanges.iter().collect();
    if capture.kind != CaptureKind::Har {
        return all;
    }
    let wanted: Vec<&Exchange> = all
        .iter()
        .copied()
        .filter(|ex| {
            ex.request
                .as_ref()
                .is_some_and(|r| looks_like(r, ctx.expect))
        })
        .collect();
    if wanted.is_empty() {
        // Fall back to the last entry: HARs are usually saved right after the failure.
        all.last().copied().into_iter().collect()
    } else {
        wanted
    }
}

fn looks_like(req: &crate::capture::Request, expect: Expect) -> bool {
    let path = req.path().to_ascii_lowercase();
    match expect {
        Expect::Token => {
            req.method.eq_ignore_ascii_case("POST")
                && (req.form_value("grant_type").is_some() || path.ends_with("/token"))
        }
        Expect::Introspection => path.contains("introspect"),
        Expect::Revocation => path.contains("revoke") || path.contains("revocation"),
        Expect::Discovery => path.contains("/.well-known/"),
        Expect::Jwks => path.contains("jwks") || path.ends_with("/keys") || path.contains("certs"),
    }
}

/// Judges one exchange.
pub fn exchange(ex: &Exchange, ctx: &Context) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(resp) = &ex.response else {
        findings.push(
            Finding::new(&NO_RESPONSE, "a request was captured but no response")
                .evidence(match &ex.request {
                    Some(r) => format!("{} {} with no response after it", r.method, r.target),
                    None => "nothing".to_string(),
                })
                .cause("the connection failed (DNS, refused, TLS, proxy CONNECT) or timed out before a response; client libraries often report this as 'failed to obtain token'")
                .fix("run the same request with `curl -v` to see where it stops, or `gatewise doctor token` for a full transport diagnosis"),
        );
        return findings;
    };
    let req = ex.request.as_ref();
    match ctx.expect {
        Expect::Token => token::judge(req, resp, ctx, &mut findings),
        Expect::Introspection => introspection::judge(req, resp, &mut findings),
        Expect::Revocation => revocation::judge(req, resp, &mut findings),
        Expect::Discovery => discovery::judge(req, resp, ctx, &mut findings),
        Expect::Jwks => jwks::judge(resp, &mut findings),
    }
    findings
}
