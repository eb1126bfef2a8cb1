//! The interactive authorization code grant (RFC 6749 §4.1 with PKCE S256,
//! RFC 7636; native-app loopback redirect, RFC 8252 §7.3): discovery, an
//! authorization URL with fresh `state`, `nonce` and code challenge, a
//! one-shot listener on 127.0.0.1 for the redirect, the authorization
//! response judged (`state`, RFC 9207 `iss`, error redirects), then the code
//! redeemed and the tokens judged like any `doctor token` run.

use crate::ProbeError;
use crate::doctor::{self, Live, Progress, Target};
use crate::fetch::Options;
use crate::oauth::{Grant, TokenParams};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use gatewise_core::Finding;
use gatewise_core::clock::Clock;
use gatewise_core::diagnose::{self, callback};
use http_body_util::Full;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Where the doctor listens for the redirect, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loopback {
    /// The port on 127.0.0.1 (0: any free port; RFC 8252 §7.3 lets the
    /// server accept any port for a loopback redirect URI).
    pub port: u16,
    /// The redirect URI's path (`/callback`).
    pub path: String,
    /// How long to wait for the browser to come back.
    pub wait: Duration,
}

impl Default for Loopback {
    fn default() -> Self {
        Loopback {
            port: 0,
            path: "/callback".into(),
            wait: Duration::from_secs(300),
        }
    }
}

/// Random bytes, base64url: PKCE verifiers (RFC 7636 §4.1: 43 to 128
/// characters of high entropy), `state` and `nonce`.
fn random_token(bytes: usize) -> Result<String, ProbeError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| ProbeError::Setup("no random numbers from the operating system".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(gatewise_core::secret::sha256(verifier.as_bytes()))
}

/// The whole interactive run. `show_url` is called once with the
/// authorization URL (print it, open a browser); the sign-in then happens
/// in the browser and ends at the loopback listener.
pub async fn authorization_code(
    issuer: &str,
    params: &TokenParams,
    loopback: &Loopback,
    opts: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
    show_url: &(dyn Fn(&Url) + Sync),
) -> Result<Live, ProbeError> {
    let mut live = doctor::discovery(issuer, opts, clock, progress).await?;
    let meta = live.metadata.clone().unwrap_or_default();
    let endpoint = |name: &str| {
        meta.get(name)
            .and_then(Value::as_str)
            .and_then(|s| Url::parse(s).ok())
    };
    let (Some(authorize), Some(token_url)) = (
        endpoint("authorization_endpoint"),
        endpoint("token_endpoint"),
    ) else {
        if live.metadata.is_some() && !live.unreachable {
            live.findings.push(
                Finding::new(
                    &diagnose::discovery::MEMBER_MISSING,
                    "no usable authorization_endpoint or token_endpoint in the metadata: the sign-in was not started",
                )
                .evidence(format!("issuer {issuer}"))
                .cause("the metadata lacks the endpoints of the authorization code grant")
                .fix("publish authorization_endpoint and token_endpoint (RFC 8414 §2)"),
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
    let iss_promised = meta
        .get("authorization_response_iss_parameter_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, loopback.port)))
            .await
            .map_err(|e| {
                ProbeError::Setup(format!(
                    "cannot listen on 127.0.0.1:{} for the redirect: {e}",
                    loopback.port
                ))
            })?;
    let port = listener
        .local_addr()
        .map_err(|e| ProbeError::Setup(e.to_string()))?
        .port();
    let path = if loopback.path.starts_with('/') {
        loopback.path.clone()
    } else {
        format!("/{}", loopback.path)
    };
    let redirect_uri = format!("http://127.0.0.1:{port}{path}");

    let verifier = random_token(32)?;
    let state = random_token(16)?;
    let openid = params
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    let nonce = if openid {
        Some(random_token(16)?)
    } else {
        None
    };
    let mut url = authorize;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &params.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(scope) = &params.scope {
            q.append_pair("scope", scope);
        }
        if let Some(n) = &nonce {
            q.append_pair("nonce", n);
        }
        for r in &params.resources {
            q.append_pair("resource", r);
        }
    }
    show_url(&url);
    progress.begin(&format!("waiting for the sign-in at {redirect_uri}"));
    let query = tokio::time::timeout(loopback.wait, receive(listener, &path)).await;
    let query = match query {
        Ok(Ok(q)) => {
            progress.end("redirect", "received");
            q
        }
        Ok(Err(e)) => {
            progress.end("redirect", "failed");
            return Err(e);
        }
        Err(_) => {
            progress.end("redirect", "timed out");
            live.findings.push(
                Finding::new(&diagnose::transport::RESPONSE_TIMEOUT, "the browser never came back to the redirect URI")
                    .evidence(format!("waited {} s at {redirect_uri}", loopback.wait.as_secs()))
                    .cause("the sign-in was not finished, the server refused the redirect URI (it shows an error page instead of redirecting), or a firewall blocks 127.0.0.1")
                    .fix("finish the sign-in in the browser; if the server shows an error, check the client's registered redirect URIs (loopback: any port, RFC 8252 §7.3)"),
            );
            return Ok(live);
        }
    };
    let judged = callback::judge(
        &query,
        &callback::Expect {
            state: Some(state),
            issuer: Some(expected_issuer.clone()),
            iss_promised,
        },
    );
    live.findings.extend(judged.findings);
    let Some(code) = judged.code else {
        return Ok(live);
    };
    let params = TokenParams {
        grant: Grant::AuthorizationCode {
            code,
            redirect_uri: Some(redirect_uri),
            code_verifier: Some(verifier),
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
    let run = doctor::exchange(
        "token",
        &target,
        &params,
        nonce.as_deref(),
        opts,
        clock,
        progress,
    )
    .await?;
    live.findings.extend(run.findings);
    if let Some(f) = run.date {
        live.findings.push(f);
    }
    live.unreachable = live.unreachable || run.unreachable;
    live.transcripts.push(run.transcript);
    Ok(live)
}

/// The page the browser shows once the doctor has the response.
const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>gatewise doctor</title>\
<p>The authorization response reached <b>gatewise doctor</b>. You can close this tab and read the diagnosis in your terminal.</p>";

/// Serves the loopback listener until a request for `path` arrives; returns
/// its query pairs. Other paths (a browser's favicon) get 404.
async fn receive(
    listener: tokio::net::TcpListener,
    path: &str,
) -> Result<Vec<(String, String)>, ProbeError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(String, String)>>(1);
    loop {
        tokio::select! {
            got = rx.recv() => {
                if let Some(q) = got {
                    return Ok(q);
                }
            }
            accepted = listener.accept() => {
                let (stream, _) = accepted.map_err(|e| ProbeError::Setup(format!("the redirect listener failed: {e}")))?;
                let tx = tx.clone();
                let want = path.to_owned();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        let hit = req.uri().path() == want;
                        let query: Vec<(String, String)> = url::form_urlencoded::parse(
                            req.uri().query().unwrap_or("").as_bytes(),
                        )
                        .into_owned()
                        .collect();
                        async move {
                            let (status, body) = if hit {
                                let _ = tx.send(query).await;
                                (200, DONE_PAGE)
                            } else {
                                (404, "not found")
                            };
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "text/html; charset=utf-8")
                                .header("cache-control", "no-store")
                                .body(Full::new(Bytes::from_static(body.as_bytes())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_have_the_length_rfc_7636_asks() {
        let v = random_token(32).unwrap();
        assert_eq!(v.len(), 43);
        assert_ne!(v, random_token(32).unwrap());
    }
}
