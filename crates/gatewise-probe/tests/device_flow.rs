//! The device authorization grant (RFC 8628) played live against a small
//! authorization server on 127.0.0.1 whose token endpoint answers
//! `slow_down` a given number of times before it issues tokens. The poll
//! interval must grow by 5 s on every `slow_down` (§3.5); the test shortens
//! the doctor's second with [`Pacing`] and has the server note when each
//! poll arrived.

use gatewise_core::Verdict;
use gatewise_core::clock::FixedClock;
use gatewise_probe::Options;
use gatewise_probe::device::{Pacing, Prompt, device_code};
use gatewise_probe::doctor::Quiet;
use gatewise_probe::oauth::{ClientAuth, Grant, TokenParams};
use gatewise_probe::tls::Trust;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::time::Instant;

mod common;

use common::read_request;

const NOW: u64 = 1_767_225_600;

fn json_response(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the server saw: when each poll of the token endpoint arrived.
#[derive(Default)]
struct Seen {
    device_authorization: Option<Instant>,
    polls: Vec<Instant>,
}

/// An authorization server with a device endpoint (`interval` 1) whose
/// token endpoint answers `slow_down` to the first `slow_downs` polls,
/// then tokens.
async fn server(slow_downs: usize) -> (String, Arc<Mutex<Seen>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Arc::clone(&seen);
    let iss = issuer.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            let iss = iss.clone();
            tokio::spawn(async move {
                let Some((method, path)) = read_request(&mut s).await else {
                    return;
                };
                let at = Instant::now();
                let bytes = match (method.as_str(), path.as_str()) {
                    (
                        "GET",
                        "/.well-known/oauth-authorization-server"
                        | "/.well-known/openid-configuration",
                    ) => json_response(
                        "200 OK",
                        &json!({
                            "issuer": iss,
                            "token_endpoint": format!("{iss}/token"),
                            "device_authorization_endpoint": format!("{iss}/device_authorization"),
                            "response_types_supported": ["code"],
                            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code"],
                            "token_endpoint_auth_methods_supported": ["none"],
                        }),
                    ),
                    ("POST", "/device_authorization") => {
                        state.lock().unwrap().device_authorization = Some(at);
                        json_response(
                            "200 OK",
                            &json!({
                                "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
                                "user_code": "WDJB-MJHT",
                                "verification_uri": format!("{iss}/device"),
                                "verification_uri_complete": format!("{iss}/device?user_code=WDJB-MJHT"),
                                "expires_in": 1800,
                                "interval": 1
                            }),
                        )
                    }
                    ("POST", "/token") => {
                        let n = {
                            let mut g = state.lock().unwrap();
                            g.polls.push(at);
                            g.polls.len()
                        };
                        if n <= slow_downs {
                            json_response("400 Bad Request", &json!({"error": "slow_down"}))
                        } else {
                            json_response(
                                "200 OK",
                                &json!({
                                    "access_token": "opaque-device-token-0123456789",
                                    "token_type": "Bearer",
                                    "expires_in": 3600
                                }),
                            )
                        }
                    }
                    _ => json_response("404 Not Found", &json!({})),
                };
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (issuer, seen)
}

fn params() -> TokenParams {
    TokenParams {
        grant: Grant::ClientCredentials,
        client_id: "tv".into(),
        client_secret: None,
        auth: ClientAuth::None,
        scope: None,
        resources: vec![],
        audience: None,
    }
}

fn opts() -> Options {
    let mut o = Options::new(Trust::new(false, None).unwrap());
    o.timeout = Duration::from_secs(5);
    o
}

/// One "second" of `interval` in these tests.
const UNIT: Duration = Duration::from_millis(40);

#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval() {
    let (issuer, seen) = server(1).await;
    let shown: Mutex<Option<Prompt>> = Mutex::new(None);
    let show = |p: &Prompt| *shown.lock().unwrap() = Some(p.clone());
    let live = device_code(
        &issuer,
        &params(),
        Pacing { second: UNIT },
        &opts(),
        &FixedClock(NOW),
        &Quiet,
        &show,
    )
    .await
    .unwrap();
    let report = live.report(&issuer);
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code).collect();
    assert_ne!(report.verdict, Verdict::Unreachable, "{codes:?}");
    assert_eq!(shown.lock().unwrap().as_ref().unwrap().interval, 1);

    // Two polls: slow_down, then tokens.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.polls.len(), 2, "{codes:?}");
    // The doctor waited the interval (1) before the first poll and 1 + 5
    // after the slow_down (RFC 8628 §3.5). Sleeps never end early, so these
    // lower bounds hold however slow the machine is.
    let first = seen.polls[0] - seen.device_authorization.unwrap();
    let second = seen.polls[1] - seen.polls[0];
    assert!(first >= UNIT, "{first:?}");
    assert!(second >= UNIT * 6, "{second:?} after slow_down");

    // It was a slow_down the doctor did not provoke (it had waited the
    // interval it was given): DV finding with the interval then in force.
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "device-slow-down-unprovoked")
        .unwrap_or_else(|| panic!("{codes:?}"));
    assert!(f.evidence.contains("interval 1 s"), "{}", f.evidence);
    // The tokens were judged; the transcript keeps the slow_down and the last poll.
    let labels: Vec<&str> = live.transcripts.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(
        labels[labels.len() - 3..],
        ["device authorization", "token (poll 1)", "token (poll 2)"]
    );
    assert_eq!(
        live.transcripts.last().unwrap().response().unwrap().status,
        200
    );
}

/// Every `slow_down` adds 5 s again: 1, then 6, then 11.
#[tokio::test]
async fn each_slow_down_adds_five_seconds_again() {
    let (issuer, seen) = server(2).await;
    let live = device_code(
        &issuer,
        &params(),
        Pacing { second: UNIT / 2 },
        &opts(),
        &FixedClock(NOW),
        &Quiet,
        &|_: &Prompt| {},
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.polls.len(), 3);
    let unit = UNIT / 2;
    assert!(seen.polls[1] - seen.polls[0] >= unit * 6);
    assert!(seen.polls[2] - seen.polls[1] >= unit * 11);
    // One finding for the unprovoked slow_down, not one per answer.
    let n = live
        .findings
        .iter()
        .filter(|f| f.code == "device-slow-down-unprovoked")
        .count();
    assert_eq!(n, 1);
}
