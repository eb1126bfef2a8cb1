//! The live doctor's workflows: which exchanges to make, in what order, and
//! which of the core's judges to hand each one to. Every finding comes from
//! `gatewise-core` (its response judges, `jwt::inspect`, and
//! `diagnose::transport` for what only a live exchange shows).

use crate::ProbeError;
use crate::fetch::{self, Options, Request};
use crate::oauth::{self, ClientAuth, Grant, TokenParams};
use crate::transcript::Transcript;
use gatewise_core::capture::Headers;
use gatewise_core::clock::Clock;
use gatewise_core::diagnose::{self, Context, Expect, live, transport};
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
    pub(crate) fn new() -> Live {
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
pub(crate) async fn step(
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
pub(crate) fn json_object(t: &Transcript) -> Option<Map<String, Value>> {
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
pub(crate) fn judge(t: &Transcript, ctx: &Context, all_hops: bool) -> Vec<Finding> {
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

/// `gatewise doctor token`: (discovery, then) the token request of the
/// grant in `params`, judged by the core with the request in the capture; a
/// JWT access token and an ID token verified against the discovered JWK Set;
/// clock skew against the server's `Date` and the token's `iat`; for the
/// refresh_token grant, whether the refresh token was rotated; for the
/// password grant, that it should not be used.
pub async fn token(
    endpoint: &TokenEndpoint,
    params: &TokenParams,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    token_repeated(endpoint, params, 1, opts, clock, progress).await
}

/// [`token`] with the token request sent `repeat` times (`--repeat N`, at
/// least once). With several runs, the distinct outcomes are grouped (LV-01:
/// "3 of 4: …; 1 of 4: …"), the findings of the first run of each outcome
/// are kept (titles say which runs when the outcomes differ), and every
/// transcript is kept (`token #1`, `token #2`, …). Discovery runs once.
pub async fn token_repeated(
    endpoint: &TokenEndpoint,
    params: &TokenParams,
    repeat: usize,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    let (mut live, token_url, issuer) = match resolve(endpoint, opts, clock, progress).await? {
        Resolved::Ready(live, url, issuer) => (live, url, issuer),
        Resolved::Stopped(live) => return Ok(live),
    };
    if let Grant::Password { username, .. } = &params.grant {
        live.findings.push(live::password_grant(username));
    }
    auth_method_findings(&mut live, params);
    let metadata = live.metadata.clone();
    let jwks = live.jwks.clone();
    let target = Target {
        token_url: &token_url,
        token_endpoint: &token_url,
        issuer: issuer.as_deref(),
        jwks: jwks.as_ref(),
        metadata: metadata.as_ref(),
    };
    let n = repeat.max(1);
    let mut runs = Vec::with_capacity(n);
    for i in 1..=n {
        let label = if n == 1 {
            "token".to_string()
        } else {
            format!("token #{i}")
        };
        runs.push(exchange(&label, &target, params, None, opts, clock, progress).await?);
    }
    // One clock comparison is enough: the (first) token response's replaces
    // the metadata's.
    if let Some(f) = runs.first().and_then(|r| r.date.clone()) {
        let dated = [transport::DATE_SKEW.code, transport::DATE_SKEW_LARGE.code];
        live.findings.retain(|x| !dated.contains(&x.code));
        live.findings.push(f);
    }
    live.unreachable = live.unreachable || runs.iter().all(|r| r.unreachable);
    let outcomes: Vec<live::Outcome> = runs.iter().map(|r| r.outcome.clone()).collect();
    let groups = live::group(&outcomes);
    for (outcome, count) in &groups {
        let Some(first) = runs.iter().position(|r| &r.outcome == outcome) else {
            continue;
        };
        let Some(run) = runs.get(first) else { continue };
        for mut f in run.findings.clone() {
            if groups.len() > 1 {
                f.title = format!("{count} of {n} runs (like #{}): {}", first + 1, f.title);
            }
            live.findings.push(f);
        }
    }
    if n > 1 {
        live.findings
            .push(live::repeat_outcomes("token request", &outcomes));
    }
    live.transcripts
        .extend(runs.into_iter().map(|r| r.transcript));
    Ok(live)
}

/// The token endpoint found: ready to send, or stopped with the findings
/// that say why (discovery failed).
enum Resolved {
    Ready(Live, Url, Option<String>),
    Stopped(Live),
}

/// Finds the token endpoint (through discovery with `--issuer`).
async fn resolve(
    endpoint: &TokenEndpoint,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Resolved, ProbeError> {
    Ok(match endpoint {
        TokenEndpoint::Url(u) => Resolved::Ready(Live::new(), u.clone(), None),
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
                return Ok(Resolved::Stopped(live));
            };
            Resolved::Ready(live, url, Some(iss.clone()))
        }
    })
}

/// `target` sent through `via` instead: the intermediary's scheme, host and
/// port, its path as a prefix, then the target's path and query
/// (`https://as/oauth/token` via `http://gw:8080/auth` is
/// `http://gw:8080/auth/oauth/token`).
pub fn via_url(target: &Url, via: &Url) -> Url {
    let mut u = via.clone();
    let base = via.path().trim_end_matches('/');
    u.set_path(&format!("{base}{}", target.path()));
    u.set_query(target.query());
    u.set_fragment(None);
    u
}

/// `gatewise doctor token --via URL`: the token request sent directly and
/// through an intermediary (a gateway or reverse proxy at `via`, see
/// [`via_url`]); both judged, and compared (LV-02, LV-03). The direct run's
/// findings are kept as they are; the other run's are titled `via …`.
pub async fn token_via(
    endpoint: &TokenEndpoint,
    params: &TokenParams,
    via: &Url,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    let (mut live, token_url, issuer) = match resolve(endpoint, opts, clock, progress).await? {
        Resolved::Ready(live, url, issuer) => (live, url, issuer),
        Resolved::Stopped(live) => return Ok(live),
    };
    if let Grant::Password { username, .. } = &params.grant {
        live.findings.push(live::password_grant(username));
    }
    auth_method_findings(&mut live, params);
    let metadata = live.metadata.clone();
    let jwks = live.jwks.clone();
    let through = via_url(&token_url, via);
    let direct_target = Target {
        token_url: &token_url,
        token_endpoint: &token_url,
        issuer: issuer.as_deref(),
        jwks: jwks.as_ref(),
        metadata: metadata.as_ref(),
    };
    let via_target = Target {
        token_url: &through,
        ..direct_target
    };
    let direct = exchange(
        "token (direct)",
        &direct_target,
        params,
        None,
        opts,
        clock,
        progress,
    )
    .await?;
    let through_run = exchange(
        "token (via)",
        &via_target,
        params,
        None,
        opts,
        clock,
        progress,
    )
    .await?;
    if let Some(f) = direct.date.clone() {
        let dated = [transport::DATE_SKEW.code, transport::DATE_SKEW_LARGE.code];
        live.findings.retain(|x| !dated.contains(&x.code));
        live.findings.push(f);
    }
    live.unreachable = live.unreachable || (direct.unreachable && through_run.unreachable);
    live.findings.extend(direct.findings.iter().cloned());
    let host = via.host_str().unwrap_or("the intermediary");
    for mut f in through_run.findings.iter().cloned() {
        f.title = format!("via {host}: {}", f.title);
        live.findings.push(f);
    }
    let d = seen_parts(&direct.transcript);
    let v = seen_parts(&through_run.transcript);
    let (d_url, v_url) = (token_url.to_string(), through.to_string());
    let d_seen = live::Seen {
        url: &d_url,
        response: match &d {
            Ok((s, h, b)) => Ok(live::Answer {
                status: *s,
                headers: h.as_slice(),
                body: b.as_slice(),
            }),
            Err(code) => Err(code),
        },
    };
    let v_seen = live::Seen {
        url: &v_url,
        response: match &v {
            Ok((s, h, b)) => Ok(live::Answer {
                status: *s,
                headers: h.as_slice(),
                body: b.as_slice(),
            }),
            Err(code) => Err(code),
        },
    };
    live.findings.extend(live::via_diff(d_seen, v_seen));
    live.transcripts.push(direct.transcript);
    live.transcripts.push(through_run.transcript);
    Ok(live)
}

/// The final response's status, headers and body decoded as the core
/// decodes it (chunked, gzip); or the failure's finding code.
#[allow(clippy::type_complexity)]
pub(crate) fn seen_parts(
    t: &Transcript,
) -> Result<(u16, Vec<(String, String)>, Vec<u8>), &'static str> {
    let Some(r) = t.response() else {
        return Err(t
            .failure
            .as_ref()
            .map_or("no-response-captured", |f| f.check().code));
    };
    let body = t
        .hops
        .last()
        .and_then(|h| h.capture())
        .and_then(|ex| ex.response)
        .map_or_else(|| r.body.clone(), |resp| resp.body.decoded);
    Ok((r.status, r.headers.clone(), body))
}

/// Where the token request goes and what its tokens are checked against.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    /// Where the request is sent (the token endpoint, or it through `--via`).
    pub(crate) token_url: &'a Url,
    /// The token endpoint itself: a client assertion's `aud` (RFC 7523 §3).
    pub(crate) token_endpoint: &'a Url,
    pub(crate) issuer: Option<&'a str>,
    pub(crate) jwks: Option<&'a Value>,
    /// The server's metadata, when discovery found it (CA-03).
    pub(crate) metadata: Option<&'a Map<String, Value>>,
}

/// One token request and what the core found in it.
pub(crate) struct Run {
    pub(crate) findings: Vec<Finding>,
    /// The clock comparison with the response's `Date`.
    pub(crate) date: Option<Finding>,
    pub(crate) transcript: Transcript,
    pub(crate) unreachable: bool,
    outcome: live::Outcome,
}

/// Sends the token request once and judges the response and its tokens
/// (an ID token's `nonce` against `nonce` when the request sent one).
pub(crate) async fn exchange(
    label: &str,
    target: &Target<'_>,
    params: &TokenParams,
    nonce: Option<&str>,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Run, ProbeError> {
    let req = params.request_via(target.token_url, target.token_endpoint, clock.unix_now())?;
    let t = step(label, req, opts, progress).await?;
    Ok(judge_token_response(t, target, params, nonce, clock))
}

/// Judges a token response already received (see [`exchange`]).
pub(crate) fn judge_token_response(
    t: Transcript,
    target: &Target<'_>,
    params: &TokenParams,
    nonce: Option<&str>,
    clock: &dyn Clock,
) -> Run {
    let now = clock.unix_now();
    let issuer = target.issuer.map(str::to_string);
    let keys = || target.jwks.cloned().map_or(Keys::None, Keys::Jwks);
    let ctx = Context {
        expect: Expect::Token,
        request_scope: params.scope.clone(),
        issuer: issuer.clone(),
        now: Some(now),
    };
    let mut findings = judge(&t, &ctx, true);
    let date = date_skew(&t, clock);
    let body = json_object(&t);
    let access = body
        .as_ref()
        .and_then(|b| b.get("access_token"))
        .and_then(Value::as_str);
    if let (Some(body), Grant::RefreshToken { refresh_token }) = (&body, &params.grant)
        && access.is_some()
    {
        findings.push(live::refresh_rotation(
            refresh_token,
            body.get("refresh_token").and_then(Value::as_str),
            params.auth == ClientAuth::None,
        ));
    }
    if let Some(metadata) = target.metadata
        && invalid_client(&t)
    {
        findings.extend(live::auth_method_others_advertised(
            params.auth.name(),
            metadata,
        ));
    }
    if let Some(id_token) = body
        .as_ref()
        .and_then(|b| b.get("id_token"))
        .and_then(Value::as_str)
    {
        // One iat comparison is enough: the access token's when it is a JWT.
        if access.is_none_or(|a| jwt::decode(a).is_err()) {
            findings.extend(transport::iat_skew("id_token", id_token, now));
        }
        let options = jwt::Options {
            now,
            leeway: 60,
            issuer: issuer.clone(),
            audiences: Vec::new(),
            kind: TokenKind::Id,
            nonce: nonce.map(str::to_string),
            access_token: access.map(str::to_string),
            client_id: Some(params.client_id.clone()),
            keys: keys(),
        };
        for mut f in jwt::inspect(id_token, &options) {
            f.title = format!("id_token: {}", f.title);
            findings.push(f);
        }
    }
    if let Some(access) = access
        && jwt::decode(access).is_ok()
    {
        findings.extend(transport::iat_skew("access_token", access, now));
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
            keys: keys(),
        };
        for mut f in jwt::inspect(access, &options) {
            f.title = format!("access_token: {}", f.title);
            findings.push(f);
        }
    }
    let outcome = outcome(&t, &findings);
    Run {
        findings,
        date,
        unreachable: t.unreachable(),
        transcript: t,
        outcome,
    }
}

/// True when the final response is an RFC 6749 §5.2 `invalid_client` error.
fn invalid_client(t: &Transcript) -> bool {
    let Ok((status, _, body)) = seen_parts(t) else {
        return false;
    };
    if (200..300).contains(&status) {
        return false;
    }
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|e| e == "invalid_client")
}

/// CA-03 (RFC 8414 §2): the method `params` authenticates with, against
/// the metadata's `token_endpoint_auth_methods_supported`.
pub(crate) fn auth_method_findings(out: &mut Live, params: &TokenParams) {
    if let Some(m) = &out.metadata {
        out.findings
            .extend(live::auth_method_not_advertised(params.auth.name(), m));
    }
}

/// How an exchange ended, for grouping repeated runs.
fn outcome(t: &Transcript, findings: &[Finding]) -> live::Outcome {
    let errors: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity == gatewise_core::Severity::Error)
        .map(|f| f.code)
        .collect();
    if let Some(f) = &t.failure
        && t.response().is_none()
    {
        return live::Outcome::failure(f.check().code);
    }
    let decoded = t
        .hops
        .last()
        .and_then(|h| h.capture())
        .and_then(|ex| ex.response)
        .map(|r| r.body.decoded);
    match (t.response(), decoded) {
        (Some(r), Some(body)) => live::Outcome::response(r.status, &body, &errors),
        (Some(r), None) => live::Outcome::response(r.status, &r.body, &errors),
        (None, _) => live::Outcome::failure("no-response-captured"),
    }
}

/// Where `gatewise doctor jwt` takes the keys from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// A JWK Set read from a file: (its name, the parsed document).
    Document(String, Value),
    /// A JWK Set URL (`--jwks https://…`), fetched.
    Url(Url),
    /// The `jwks_uri` of the issuer's metadata (`--issuer … --discover`).
    Discovered,
}

/// Fetches a JWK Set and judges the response; the document when it is a
/// JSON object. `refetch` asks caches on the way for a fresh copy.
async fn fetch_jwks(
    label: &str,
    url: &Url,
    refetch: bool,
    live: &mut Live,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Option<Value>, ProbeError> {
    let mut req = Request::get(url.clone());
    req.headers = vec![(
        "Accept".into(),
        "application/jwk-set+json, application/json".into(),
    )];
    if refetch {
        req.headers
            .push(("Cache-Control".into(), "no-cache".into()));
    }
    let t = step(label, req, opts, progress).await?;
    live.findings
        .extend(judge(&t, &Context::new(Expect::Jwks), false));
    if t.unreachable() {
        live.unreachable = true;
    }
    let doc = json_object(&t).map(Value::Object);
    live.transcripts.push(t);
    Ok(doc)
}

/// `gatewise doctor jwt` with keys from the network: the JWK Set from a
/// URL, from discovery (`discover`: the issuer), or from a file with
/// discovery as the fresh source. When the token's `kid` is not in the first
/// set, the set is fetched once more (RFC 7517 §4.5, OpenID Connect Core
/// §10.1.1) and the finding says whether the keys were rotated (the kid is
/// there now) or the kid was never published. Then the token is inspected
/// by the core with the freshest set; `options.keys` is replaced by it.
pub async fn jwt(
    token: &str,
    mut options: jwt::Options,
    source: KeySource,
    discover: Option<&str>,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Live, ProbeError> {
    let mut live = Live::new();
    let mut discovered: Option<(String, Option<Value>)> = None;
    if let Some(issuer) = discover {
        let d = discovery(issuer, opts, clock, progress).await?;
        live.findings.extend(d.findings);
        live.transcripts.extend(d.transcripts);
        live.unreachable = d.unreachable;
        let uri = d
            .metadata
            .as_ref()
            .and_then(|m| m.get("jwks_uri"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(uri) = uri {
            discovered = Some((uri, d.jwks));
        }
    }
    // The first set, where it came from, and where a fresh copy comes from.
    let (first, first_name, fresh_url): (Option<Value>, String, Option<Url>) = match &source {
        KeySource::Document(name, doc) => (
            Some(doc.clone()),
            name.clone(),
            discovered.as_ref().and_then(|(u, _)| Url::parse(u).ok()),
        ),
        KeySource::Url(u) => (
            fetch_jwks("jwks", u, false, &mut live, opts, progress).await?,
            u.to_string(),
            Some(u.clone()),
        ),
        KeySource::Discovered => match &discovered {
            Some((uri, set)) => (set.clone(), uri.clone(), Url::parse(uri).ok()),
            None => (None, String::new(), None),
        },
    };
    let kid = jwt::decode(token)
        .ok()
        .and_then(|j| j.kid().map(str::to_string));
    let mut keys = first.clone();
    let mut never_published = false;
    if let (Some(kid), Some(set)) = (&kid, &first)
        && !live::kid_in_jwks(set, kid)
    {
        // A file's fresh copy is the discovered set (already fetched);
        // otherwise fetch the same URL once more.
        let second = match (&source, &discovered) {
            (KeySource::Document(..), Some((uri, Some(set)))) => Some((uri.clone(), set.clone())),
            _ => match &fresh_url {
                Some(u) => fetch_jwks("jwks (refetch)", u, true, &mut live, opts, progress)
                    .await?
                    .map(|d| (u.to_string(), d)),
                None => None,
            },
        };
        if let Some((second_name, second)) = second {
            let found = live::kid_in_jwks(&second, kid);
            never_published = !found;
            live.findings
                .push(live::kid_refetched(kid, &first_name, &second_name, found));
            keys = Some(second);
        }
    }
    if let Some(set) = &keys {
        options.keys = Keys::Jwks(set.clone());
    }
    let inspected = jwt::inspect(token, &options);
    live.findings.extend(
        inspected
            .into_iter()
            // The refetch finding already says it, more precisely.
            .filter(|f| !(never_published && f.code == jwt::KID_UNKNOWN.code)),
    );
    live.jwks = keys;
    Ok(live)
}
