//! The device authorization grant as the doctor plays it (RFC 8628):
//! discovery, the device authorization request (§3.1) judged by the core
//! (`diagnose::device`), the user code and verification URI handed to the
//! caller to show (§3.3), then the token endpoint polled (§3.4) with the
//! `interval` honoured and raised by 5 s on every `slow_down` (§3.5), until
//! tokens (judged like every `doctor token` run), `access_denied` or
//! `expired_token` (each explained by a finding), another error, or the
//! codes' lifetime has passed with the server still saying
//! `authorization_pending`.
//!
//! The doctor waits before every poll, the first included, so a `slow_down`
//! is always a finding: the server did not honour its own interval. Waiting
//! is `tokio::time::sleep`; the crate still reads no wall clock (expiry is
//! counted in the seconds waited, which never exceed the time that passed).

use crate::ProbeError;
use crate::doctor::{self, Live, Progress, Target};
use crate::fetch::Options;
use crate::oauth::{Grant, TokenParams};
use crate::transcript::Transcript;
use gatewise_core::Finding;
use gatewise_core::clock::Clock;
use gatewise_core::diagnose::{self, Context, Expect, device};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// What the user is shown (RFC 8628 §3.3): never the device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// A link with the code in it, when the server gave one.
    pub verification_uri_complete: Option<String>,
    /// Seconds the code is valid.
    pub expires_in: u64,
    /// Seconds between polls, as the server said (or the default 5).
    pub interval: u64,
}

/// How the polls are paced; tests shorten the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// One second of `interval` lasts this long.
    pub second: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            second: Duration::from_secs(1),
        }
    }
}

/// The whole run: `show` is called once with what the user must do.
pub async fn device_code(
    issuer: &str,
    params: &TokenParams,
    pacing: Pacing,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
    show: &(dyn Fn(&Prompt) + Sync),
) -> Result<Live, ProbeError> {
    let mut live = doctor::discovery(issuer, opts, clock, progress).await?;
    let Some(meta) = live.metadata.clone() else {
        return Ok(live);
    };
    let (endpoint, found) = device::endpoint(&meta, issuer);
    live.findings.extend(found);
    let token_url = meta
        .get("token_endpoint")
        .and_then(Value::as_str)
        .and_then(|s| Url::parse(s).ok());
    let (Some(endpoint), Some(token_url)) = (endpoint.and_then(|e| Url::parse(&e).ok()), token_url)
    else {
        if meta.get("token_endpoint").is_none() {
            live.findings.push(
                Finding::new(
                    &diagnose::discovery::MEMBER_MISSING,
                    "no usable token_endpoint in the metadata: the device flow was not started",
                )
                .evidence(format!("issuer {issuer}"))
                .cause("the metadata lacks token_endpoint or it is not an absolute URL")
                .fix("publish token_endpoint (RFC 8414 §2)"),
            );
        }
        return Ok(live);
    };
    let expected_issuer = meta
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or(issuer)
        .to_owned();

    doctor::auth_method_findings(&mut live, params);
    // RFC 8628 §3.1, §3.2.
    let t = doctor::step(
        "device authorization",
        params.device_authorization_request(&endpoint, &token_url, clock.unix_now())?,
        opts,
        progress,
    )
    .await?;
    let authorization = match doctor::seen_parts(&t) {
        Ok((status, _, body)) => {
            let judged = device::judge_authorization(status, &body);
            if (200..300).contains(&status) {
                live.findings.extend(t.transport_findings());
            } else {
                // RFC 8628 §3.2: errors are RFC 6749 §5.2 responses.
                let ctx = Context {
                    expect: Expect::Token,
                    request_scope: params.scope.clone(),
                    issuer: Some(expected_issuer.clone()),
                    now: Some(clock.unix_now()),
                };
                live.findings.extend(doctor::judge(&t, &ctx, true));
            }
            live.findings.extend(judged.findings);
            judged.authorization
        }
        Err(_) => {
            live.findings.extend(t.transport_findings());
            live.unreachable = live.unreachable || t.unreachable();
            None
        }
    };
    live.transcripts.push(t);
    let Some(auth) = authorization else {
        return Ok(live);
    };
    show(&Prompt {
        user_code: auth.user_code.clone(),
        verification_uri: auth.verification_uri.clone(),
        verification_uri_complete: auth.verification_uri_complete.clone(),
        expires_in: auth.expires_in,
        interval: auth.interval,
    });

    let params = TokenParams {
        grant: Grant::DeviceCode {
            device_code: auth.device_code.clone(),
        },
        ..params.clone()
    };
    let jwks = live.jwks.clone();
    let target = Target {
        token_url: &token_url,
        token_endpoint: &token_url,
        issuer: Some(&expected_issuer),
        jwks: jwks.as_ref(),
        metadata: Some(&meta),
    };
    let mut interval = auth.interval;
    let mut waited: u64 = 0;
    let mut polls: u32 = 0;
    let mut pending: u32 = 0;
    let mut told_slow_down = false;
    let mut first_pending: Option<Transcript> = None;
    progress.begin(&format!(
        "waiting for the approval of user code {}",
        auth.user_code
    ));
    let last = loop {
        if waited >= auth.expires_in.saturating_add(interval) {
            // The codes expired and the server never said so.
            live.findings
                .push(device::pending_after_expiry(auth.expires_in, pending));
            break None;
        }
        tokio::time::sleep(
            pacing
                .second
                .saturating_mul(u32::try_from(interval).unwrap_or(u32::MAX)),
        )
        .await;
        waited = waited.saturating_add(interval);
        polls += 1;
        let t = doctor::step(
            &format!("token (poll {polls})"),
            params.request(&token_url, clock.unix_now())?,
            opts,
            progress,
        )
        .await?;
        let body = doctor::seen_parts(&t).ok().map(|(s, _, b)| (s, b));
        let error: Option<(String, Option<String>)> = body.as_ref().and_then(|(status, b)| {
            if (200..300).contains(status) {
                return None;
            }
            let v: Value = serde_json::from_slice(b).ok()?;
            let e = v.get("error")?.as_str()?.to_owned();
            let d = v
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some((e, d))
        });
        match device::step(error.as_ref().map(|(e, _)| e.as_str()), interval) {
            device::Step::Wait(_) => {
                pending += 1;
                if first_pending.is_none() {
                    first_pending = Some(t);
                }
            }
            device::Step::SlowDown(next) => {
                if !told_slow_down {
                    told_slow_down = true;
                    live.findings
                        .push(device::slow_down_unprovoked(interval, interval));
                }
                interval = next;
                if first_pending.is_none() {
                    first_pending = Some(t);
                }
            }
            device::Step::Denied => {
                live.findings.extend(t.transport_findings());
                live.findings.push(device::denied(
                    error.as_ref().and_then(|(_, d)| d.as_deref()),
                ));
                break Some(t);
            }
            device::Step::Expired => {
                live.findings.extend(t.transport_findings());
                live.findings.push(device::expired(
                    error.as_ref().and_then(|(_, d)| d.as_deref()),
                    auth.expires_in,
                ));
                break Some(t);
            }
            device::Step::Done => {
                let run = doctor::judge_token_response(t, &target, &params, None, clock);
                live.findings.extend(run.findings);
                if let Some(f) = run.date {
                    // One clock comparison: the token response's replaces the metadata's.
                    let dated = [
                        diagnose::transport::DATE_SKEW.code,
                        diagnose::transport::DATE_SKEW_LARGE.code,
                    ];
                    live.findings.retain(|x| !dated.contains(&x.code));
                    live.findings.push(f);
                }
                live.unreachable = live.unreachable || run.unreachable;
                break Some(run.transcript);
            }
        }
    };
    progress.end(
        "device flow",
        &format!("{polls} poll(s), {pending} authorization_pending"),
    );
    // The transcript keeps the first waiting answer and the last one.
    live.transcripts.extend(first_pending);
    live.transcripts.extend(last);
    Ok(live)
}
