//! The live doctor's workflows: which exchanges to make, in what order, and
//! which of the core's judges to hand each one to. Every finding comes from
//! `gatewise-core` (its response judges, `jwt::inspect`, and
//! `diagnose::transport` for what only a live exchange shows).

use crate::ProbeError;
use crate::fetch::{self, Options, Request};
use crate::oauth::{self, TokenParams};
use crate::transcript::Transcript;
use gatewise_core::capture::Headers;
use gatewise_core::clock::Clock;
use gatewise_core::diagnose::{self, Context, Expect, transport};
use gatewise_core::jose::jwt::{self, Keys, TokenKind};
use gatewise_core::{Finding, Report, Verdict};
use serde_json::{Map, Value};
use url::Url;

/// Told about each network step, to show progress (a spinner on a terminal).
pub trait Progress: Send + Sync {
    /// A step starts (`GET https://…`).
    fn begin(&self, step: &str);
    /// The step ended; `outcome` is one line (`200 OK, 12 ms`).
    fn end(&self, step: &str, outcome: &str);
}

/// No progress output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&self, _step: &str) {}
    fn end(&self, _step: &str, _outcome: &str) {}
}

/// What a live diagnosis found.
#[derive(Debug, Clone)]
pub struct Live {
    /// The findings, in the order found.
    pub findings: Vec<Finding>,
    /// Every exchange made, unmasked.
    pub transcripts: Vec<Transcript>,
    /// True when the target could not be reached at all.
    pub unreachable: bool,
    /// The metadata document used, when discovery found one.
    pub metadata: Option<Map<String, Value>>,
    /// The JWK Set fetched through discovery, when there was one.
    pub jwks: Option<Value>,
}

impl Live {
    fn new() -> Live {
        Live {
            findings: Vec::new(),
            transcripts: Vec::new(),
            unreachable: false,
            metadata: None,
            jwks: None,
        }
    }

    /// The report: findings worst first, `unreachable` when nothing came back.
    pub fn report(&self, subject: impl Into<String>) -> Report {
        let mut r = Report::new(subject, self.findings.clone());
        if self.unreachable {
            r.verdict = Verdict::Unreachable;
        }
        r
    }
}

/// One fetch with progress.
async fn step(
    label: &str,
    req: Request,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Transcript, ProbeError> {
    let line = format!("{label}: {} {}", req.method, req.url);
    progress.begin(&line);
    let t = fetch::fetch(label, req, opts).await?;
    let outcome = match (&t.failure, t.response()) {
        (Some(f), _) => transport::finding(t.final_url(), f).title,
        (None, Some(r)) => {
            let ms = t
                .hops
                .iter()
                .filter_map(|h| h.timings.total_ms)
                .sum::<f64>();
            format!("{} {}, {ms:.0} ms", r.status, r.reason)
        }
        (None, None) => "no response".to_string(),
    };
    progress.end(&line, &outcome);
    Ok(t)
}

/// The final response's body as a JSON object (decoded as the core decodes
/// it: chunked, gzip), when the status is 2xx.
fn json_object(t: &Transcript) -> Option<Map<String, Value>> {
    let hop = t.hops.last()?;
    let ex = hop.capture()?;
    let resp = ex.response?;
    if !resp.status.is_some_and(|s| (200..300).contains(&s)) {
        return None;
    }
    let body = resp.body.decoded;
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&body);
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Judges the hops of a transcript with the core: every hop with a response
/// when `all_hops` (token and metadata endpoints must not redirect), else
/// the final one. Titles say which hop when there are several.
fn judge(t: &Transcript, ctx: &Context, all_hops: bool) -> Vec<Finding> {
    let mut out = t.transport_findings();
    let with_response: Vec<(usize, &crate::Exchange)> = t
        .hops
        .iter()
        .enumerate()
        .filter(|(_, h)| h.response.is_some())
        .collect();
    let judged: Vec<(usize, &crate::Exchange)> = if all_hops {
        with_response
    } else {
        with_response.last().copied().into_iter().collect()
    };
    let many = t.hops.len() > 1;
    for (i, hop) in judged {
        let Some(ex) = hop.capture() else { continue };
        let mut found = diagnose::exchange(&ex, ctx);
        if many {
            for f in &mut found {
                f.title = format!("hop {} ({}): {}", i + 1, hop.request.url, f.title);
            }
        }
        out.extend(found);
    }
    out
}

fn date_skew(t: &Transcript, clock: &dyn Clock) -> Option<Finding> {
    let date = t.response()?.header("date")?.to_string();
    transport::date_skew(t.final_url(), &date, clock.unix_now())
}

/// `gatewise doctor discovery ISSUER`: both well-known forms, whether they
/// exist and agree, the metadata judged, the JWK Set fetched and judged,
/// advertised algorithms against keys, and the JWK Set's caching.
pub async fn discovery(
    issuer: &str,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    let (rfc_url, oidc_url) = oauth::well_known_urls(issuer)?;
    let mut live = Live::new();
    let ctx = Context {
        expect: Expect::Discovery,
        request_scope: None,
        issuer: Some(issuer.to_string()),
        now: Some(clock.unix_now()),
    };
    let rfc = step(
        "metadata (RFC 8414)",
        Request::get(rfc_url.clone()),
        opts,
        progress,
    )
    .await?;
    // Both URLs share the origin: when it cannot be reached, don't ask twice.
    if rfc.unreachable() {
        live.findings.extend(rfc.transport_findings());
        live.unreachable = true;
        live.transcripts.push(rfc);
        return Ok(live);
    }
    let oidc = step(
        "metadata (OpenID Connect)",
        Request::get(oidc_url.clone()),
        opts,
        progress,
    )
    .await?;
    let rfc_doc = json_object(&rfc);
    let oidc_doc = json_object(&oidc);
    match (&rfc_doc, &oidc_doc) {
        (Some(a), Some(b)) => {
            let fa = judge(&rfc, &ctx, true);
            let mut fb = judge(&oidc, &ctx, true);
            for mut f in fa {
                if let Some(i) = fb
                    .iter()
                    .position(|x| x.code == f.code && x.title == f.title)
                {
                    fb.remove(i);
                    f.title = format!("both documents: {}", f.title);
                } else {
                    f.title = format!("RFC 8414 metadata: {}", f.title);
                }
                live.findings.push(f);
            }
            for mut f in fb {
                f.title = format!("OpenID Connect metadata: {}", f.title);
                live.findings.push(f);
            }
            live.findings.extend(transport::forms_disagree(
                a,
                b,
                rfc_url.as_str(),
                oidc_url.as_str(),
            ));
        }
        (Some(_), None) => {
            live.findings.extend(judge(&rfc, &ctx, true));
            live.findings.extend(oidc.transport_findings());
            live.findings.push(transport::form_missing(
                oidc_url.as_str(),
                oidc.response().map(|r| r.status),
                rfc_url.as_str(),
            ));
        }
        (None, Some(_)) => {
            live.findings.extend(judge(&oidc, &ctx, true));
            live.findings.extend(rfc.transport_findings());
            live.findings.push(transport::form_missing(
                rfc_url.as_str(),
                rfc.response().map(|r| r.status),
                oidc_url.as_str(),
            ));
        }
        (None, None) => {
            live.findings.extend(judge(&rfc, &ctx, true));
            live.findings.extend(judge(&oidc, &ctx, true));
            live.unreachable = rfc.unreachable() && oidc.unreachable();
        }
    }
    let (used, metadata) = match (oidc_doc, rfc_doc) {
        (Some(m), _) => (&oidc, Some(m)),
        (None, Some(m)) => (&rfc, Some(m)),
        (None, None) => (&rfc, None),
    };
    live.findings.extend(date_skew(used, clock));
    live.transcripts.push(rfc.clone());
    live.transcripts.push(oidc.clone());
    let Some(metadata) = metadata else {
        return Ok(live);
    };
    if let Some(jwks_uri) = metadata.get("jwks_uri").and_then(Value::as_str) {
        // A jwks_uri that is not a URL is named by the core's metadata judge.
        if let Ok(u) = Url::parse(jwks_uri) {
            let mut req = Request::get(u.clone());
            req.headers = vec![(
                "Accept".into(),
                "application/jwk-set+json, application/json".into(),
            )];
            let t = step("jwks", req, opts, progress).await?;
            live.findings
                .extend(judge(&t, &Context::new(Expect::Jwks), false));
            if let Some(resp) = t.response().filter(|r| r.status == 200) {
                let headers = Headers::from_pairs(resp.headers.iter().cloned());
                live.findings
                    .push(transport::jwks_caching(t.final_url(), &headers));
            }
            if let Some(keys) = json_object(&t) {
                live.findings
                    .extend(transport::alg_coverage(&metadata, &keys));
                live.jwks = Some(Value::Object(keys));
            }
            live.transcripts.push(t);
        }
    }
    live.metadata = Some(metadata);
    Ok(live)
}

/// Where the token endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// Given directly (`--token-url`).
    Url(Url),
    /// Found through the issuer's metadata (`--issuer`).
    Issuer(String),
}

/// `gatewise doctor token`: (discovery, then) the token request, judged by
/// the core with the request in the capture; a JWT access token verified
/// against the discovered JWK Set; clock skew against the server's `Date`
/// and the token's `iat`.
pub async fn token(
    endpoint: &TokenEndpoint,
    params: &TokenParams,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    let (mut live, token_url, issuer) = match endpoint {
        TokenEndpoint::Url(u) => (Live::new(), u.clone(), None),
        TokenEndpoint::Issuer(iss) => {
            let mut live = discovery(iss, opts, clock, progress).await?;
            let url = live
                .metadata
                .as_ref()
                .and_then(|m| m.get("token_endpoint"))
                .and_then(Value::as_str)
                .and_then(|s| Url::parse(s).ok());
            let Some(url) = url else {
                // Unreachable, no metadata, or no usable token_endpoint:
                // the discovery findings say which.
                if live.metadata.is_some() && !live.unreachable {
                    live.findings.push(
                        Finding::new(&diagnose::discovery::MEMBER_MISSING, "no usable token_endpoint in the metadata: the token request was not sent")
                            .evidence(format!("issuer {iss}"))
                            .cause("the metadata lacks token_endpoint or it is not an absolute URL")
                            .fix("publish token_endpoint, or pass --token-url"),
                    );
                }
                return Ok(live);
            };
            (live, url, Some(iss.clone()))
        }
    };
    let t = step("token", params.request(&token_url), opts, progress).await?;
    let now = clock.unix_now();
    let ctx = Context {
        expect: Expect::Token,
        request_scope: params.scope.clone(),
        issuer: issuer.clone(),
        now: Some(now),
    };
    live.findings.extend(judge(&t, &ctx, true));
    if let Some(f) = date_skew(&t, clock) {
        // One clock comparison is enough: the token response's replaces the metadata's.
        let dated = [transport::DATE_SKEW.code, transport::DATE_SKEW_LARGE.code];
        live.findings.retain(|x| !dated.contains(&x.code));
        live.findings.push(f);
    }
    if t.unreachable() {
        live.unreachable = true;
    }
    if let Some(body) = json_object(&t)
        && let Some(access) = body.get("access_token").and_then(Value::as_str)
        && jwt::decode(access).is_ok()
    {
        live.findings
            .extend(transport::iat_skew("access_token", access, now));
        let mut audiences = params.resources.clone();
        audiences.extend(params.audience.clone());
        let options = jwt::Options {
            now,
            leeway: 60,
            issuer: issuer.clone(),
            audiences,
            kind: TokenKind::Access,
            nonce: None,
            access_token: None,
            client_id: Some(params.client_id.clone()),
            keys: live.jwks.clone().map_or(Keys::None, Keys::Jwks),
        };
        for mut f in jwt::inspect(access, &options) {
            f.title = format!("access_token: {}", f.title);
            live.findings.push(f);
        }
    }
    live.transcripts.push(t);
    Ok(live)
}
