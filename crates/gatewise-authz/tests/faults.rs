//! Fault mode end to end: for every fault, the real server on 127.0.0.1
//! serves it and the live doctor (`gatewise-probe`, the code behind
//! `gatewise doctor token --issuer`) must name the rule it breaks. Also: the
//! `Gatewise-Fault` header is ignored outside fault mode, picks one fault per
//! request inside it, and a client's own faults reach that client only.

#[macro_use]
mod support;

use support::Backend;

use gatewise_authz::clients::ClientSpec;
use gatewise_authz::faults::{Fault, MODES};
use gatewise_authz::{Authz, AuthzConfig, AuthzError};
use gatewise_core::clock::Clock;
use gatewise_probe::Options;
use gatewise_probe::doctor::{self, Quiet, TokenEndpoint};
use gatewise_probe::oauth::{ClientAuth, Grant, TokenParams};
use gatewise_probe::tls::Trust;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const RESOURCE: &str = "https://api.example.test";
const SECRET: &str = "fault-mode-s3cret+/=";

/// The doctor compares token times with its clock, the server stamps them
/// with its own: both read the wall clock, as in real use.
struct Wall;

impl Clock for Wall {
    #[allow(clippy::disallowed_methods)]
    fn unix_now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

/// What the doctor must name for each fault: the finding code of the rule
/// the fault breaks (an exhaustive match, so a new fault needs a row).
fn expected(f: Fault) -> &'static str {
    match f {
        Fault::HtmlErrorPage => "error-response-html-page", // ER-04
        Fault::InvalidJson => "token-json-syntax",          // TR-03
        Fault::TruncatedJson => "body-truncated",           // HT-03
        Fault::EmptyBody => "token-body-empty",             // TR-03
        Fault::MissingAccessToken => "token-access-token-missing", // TR-04
        Fault::MissingTokenType => "token-type-missing",    // TR-05
        Fault::ExpiresInString => "token-expires-in-string", // TR-06
        Fault::FormEncoded => "token-not-json",             // TR-02
        Fault::WrongContentType => "token-content-type",    // TR-02
        Fault::Bom => "body-bom",                           // HT-04
        Fault::ErrorIn200 => "token-error-in-success",      // TR-11
        Fault::RedirectToLogin => "token-redirect",         // TR-01
        Fault::Slow { .. } => "response-timeout",           // NET-06
        Fault::RateLimited => "error-rate-limited",         // HT-10
        Fault::InvalidClientNoChallenge => "error-401-without-challenge", // ER-01
        Fault::WrongAudience => "jwt-aud-mismatch",         // JB-04
        Fault::WrongIssuer => "jwt-iss-mismatch",           // JB-04
        Fault::ExpiredToken => "jwt-expired",               // ID-06
        Fault::ClockSkew { .. } => "clock-skew-iat-large",  // CK-02
        Fault::UnknownKid => "jwt-kid-not-in-jwks",         // JK-03
        Fault::RotatedKeysNoOverlap => "jwt-kid-not-in-jwks", // JK-03
        Fault::AlgNone => "jwt-alg-none",                   // JB-01
        Fault::JwksDown => "jwks-keys-missing",             // JK-01
        // An OpenID Connect document (both well-known paths serve it): MD-04.
        Fault::DiscoveryIssuerMismatch => "oidc-issuer-mismatch", // MD-04
    }
}

/// `slow` must outlast the doctor's timeout by far, so the timeout (not
/// the machine's load) decides the outcome.
const SLOW_MS: u64 = 60_000;
const DOCTOR_TIMEOUT_FOR_SLOW: Duration = Duration::from_secs(2);

fn client(id: &str, faults: &[Fault]) -> ClientSpec {
    ClientSpec {
        faults: faults.to_vec(),
        ..ClientSpec::machine(id, SECRET, &["orders.read"], &[RESOURCE])
    }
}

/// Starts a server on 127.0.0.1; `setup` adjusts the configuration.
async fn start(backend: &Backend, setup: impl FnOnce(&mut AuthzConfig)) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&issuer);
    config.clients = vec![client("svc", &[])];
    setup(&mut config);
    let authz = backend.authz(config, Arc::new(Wall)).await;
    let router = authz.router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    issuer
}

/// `gatewise doctor token --issuer ISSUER --client-id ID --resource ...`:
/// the finding codes.
async fn doctor_codes(issuer: &str, client_id: &str, timeout: Option<Duration>) -> Vec<String> {
    let mut opts = Options::new(Trust::new(false, None).unwrap());
    if let Some(t) = timeout {
        opts.timeout = t;
    }
    let params = TokenParams {
        grant: Grant::ClientCredentials,
        client_id: client_id.to_owned(),
        client_secret: Some(SECRET.to_owned()),
        auth: ClientAuth::Basic,
        scope: Some("orders.read".to_owned()),
        resources: vec![RESOURCE.to_owned()],
        audience: None,
    };
    let live = doctor::token(
        &TokenEndpoint::Issuer(issuer.to_owned()),
        &params,
        &opts,
        &Wall,
        &Quiet,
    )
    .await
    .unwrap();
    live.findings.iter().map(|f| f.code.to_owned()).collect()
}

async fn the_doctor_names_the_rule_every_fault_breaks(backend: &Backend) {
    let faults = Fault::examples();
    assert_eq!(faults.len(), MODES.len(), "every mode is tested");

    // Without faults, none of the codes the faults must produce appears:
    // each one below is caused by its fault.
    let issuer = start(backend, |_| {}).await;
    let clean = doctor_codes(&issuer, "svc", None).await;
    assert!(
        clean.contains(&"jwt-signature-verified".to_owned()),
        "{clean:?}"
    );
    for f in &faults {
        assert!(
            !clean.contains(&expected(*f).to_owned()),
            "`{}` appears without fault {f}: {clean:?}",
            expected(*f)
        );
    }

    let mut failures = Vec::new();
    for f in faults {
        let (fault, timeout) = match f {
            Fault::Slow { .. } => (Fault::Slow { ms: SLOW_MS }, Some(DOCTOR_TIMEOUT_FOR_SLOW)),
            other => (other, None),
        };
        let issuer = start(backend, |c| c.faults = vec![fault]).await;
        let codes = doctor_codes(&issuer, "svc", timeout).await;
        if !codes.contains(&expected(f).to_owned()) {
            failures.push(format!(
                "{fault}: expected `{}`, the doctor said {codes:?}",
                expected(f)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn a_clients_faults_reach_that_client_only(backend: &Backend) {
    let issuer = start(backend, |c| {
        c.clients = vec![
            client("broken", &[Fault::MissingTokenType, Fault::WrongAudience]),
            client("fine", &[]),
        ];
    })
    .await;
    let broken = doctor_codes(&issuer, "broken", None).await;
    let fine = doctor_codes(&issuer, "fine", None).await;
    for code in ["token-type-missing", "jwt-aud-mismatch"] {
        assert!(broken.contains(&code.to_owned()), "{code}: {broken:?}");
        assert!(!fine.contains(&code.to_owned()), "{code}: {fine:?}");
    }
    assert!(
        fine.contains(&"jwt-signature-verified".to_owned()),
        "{fine:?}"
    );
}

#[test]
fn client_faults_must_fit_the_token_endpoint() {
    let mut config = AuthzConfig::dev("http://127.0.0.1:9");
    config.clients = vec![client("svc", &[Fault::JwksDown])];
    let err = Authz::new(config, Arc::new(Wall)).unwrap_err();
    assert!(
        matches!(&err, AuthzError::Config(m) if m.contains("jwks-down") && m.contains("svc")),
        "{err}"
    );
}

async fn token_with_header(issuer: &str, fault: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(
            "svc",
            Some(url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>()),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials");
    if let Some(f) = fault {
        req = req.header("Gatewise-Fault", f);
    }
    req.send().await.unwrap()
}

async fn jwks_with_header(issuer: &str, fault: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{issuer}/jwks.json"))
        .header("Gatewise-Fault", fault)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn the_header_is_ignored_without_fault_mode(backend: &Backend) {
    let issuer = start(backend, |_| {}).await;
    for value in ["html-error-page", "missing-access-token", "not-a-fault"] {
        let r = token_with_header(&issuer, Some(value)).await;
        assert_eq!(r.status(), 200, "{value}");
        let body: Value = r.json().await.unwrap();
        assert!(body["access_token"].is_string(), "{value}: {body}");
        assert_eq!(body["token_type"], "Bearer");
    }
    assert_eq!(jwks_with_header(&issuer, "jwks-down").await, 200);
    let login = reqwest::get(format!("{issuer}/login")).await.unwrap();
    assert_eq!(login.status(), 404);
}

async fn in_fault_mode_the_header_picks_one_fault_for_one_request(backend: &Backend) {
    let issuer = start(backend, |c| c.fault_header = true).await;
    // Without the header: a normal answer.
    let r = token_with_header(&issuer, None).await;
    assert_eq!(r.status(), 200);
    // With it: that fault, for that request.
    let r = token_with_header(&issuer, Some("html-error-page")).await;
    assert_eq!(r.status(), 502);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = token_with_header(&issuer, Some("expires-in-string")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], "3600", "{body}");
    // A fault of another endpoint does nothing here, and works there.
    assert_eq!(
        token_with_header(&issuer, Some("jwks-down")).await.status(),
        200
    );
    assert_eq!(jwks_with_header(&issuer, "jwks-down").await, 503);
    assert_eq!(jwks_with_header(&issuer, "bom").await, 200);
    // A bad value is refused, naming it and the valid modes.
    let r = token_with_header(&issuer, Some("html-eror-page")).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let desc = body["error_description"].as_str().unwrap();
    assert!(
        desc.contains("html-eror-page") && desc.contains("rotated-keys-no-overlap"),
        "{desc}"
    );
}

async fn the_header_replaces_the_configured_faults(backend: &Backend) {
    let issuer = start(backend, |c| c.faults = vec![Fault::MissingTokenType]).await;
    let body: Value = token_with_header(&issuer, None).await.json().await.unwrap();
    assert!(body.get("token_type").is_none(), "{body}");
    let r = token_with_header(&issuer, Some("expires-in-string")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], "3600", "{body}");
}

#[test]
fn docs_faults_md_documents_every_mode_with_the_code_tested_here() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/faults.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    for (f, mode) in Fault::examples().into_iter().zip(MODES) {
        assert!(
            doc.contains(&format!("\n### `{mode}`\n")),
            "docs/faults.md has no section for `{mode}`"
        );
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{mode}` |")))
            .unwrap_or_else(|| panic!("docs/faults.md's summary has no row for `{mode}`"));
        assert!(
            row.contains(&format!("`{}`", expected(f))),
            "the summary row of `{mode}` does not name `{}`: {row}",
            expected(f)
        );
    }
}

on_both_stores!(
    the_doctor_names_the_rule_every_fault_breaks,
    a_clients_faults_reach_that_client_only,
    the_header_is_ignored_without_fault_mode,
    in_fault_mode_the_header_picks_one_fault_for_one_request,
    the_header_replaces_the_configured_faults,
);
