//! The state store on SQLite and PostgreSQL: its compare-and-swaps, replay
//! protection and purging, and a server restart that keeps keys and
//! tokens valid, with nothing secret in the database in clear.

#[macro_use]
mod support;

use gatewise_authz::keys::Sealer;
use gatewise_authz::store::{GrantKind, GrantRecord, Ring, StoredKey};
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::FixedClock;
use gatewise_core::jose::{Alg, b64url_encode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use support::Backend;

const NOW: u64 = 1_767_225_600;

fn key(kid: &str, ring: Ring) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        ring,
        alg: Alg::ES256,
        private: vec![0x30, 1, 2, 3],
        created_at: NOW,
        active: true,
    }
}

fn active(keys: &[StoredKey], ring: Ring) -> Vec<String> {
    keys.iter()
        .filter(|k| k.ring == ring && k.active)
        .map(|k| k.kid.clone())
        .collect()
}

async fn key_installation_is_a_compare_and_swap(b: &Backend) {
    let st = b.store().await;
    assert!(
        st.install_key(key("a", Ring::Access), None, true, 2)
            .await
            .unwrap()
    );
    // A second "first" key loses: the ring is no longer empty.
    assert!(
        !st.install_key(key("x", Ring::Access), None, true, 2)
            .await
            .unwrap()
    );
    assert!(
        st.install_key(key("i", Ring::Id), None, true, 2)
            .await
            .unwrap()
    );
    // Two servers rotating from `a`: one wins.
    assert!(
        st.install_key(key("b", Ring::Access), Some("a".into()), true, 2)
            .await
            .unwrap()
    );
    assert!(
        !st.install_key(key("c", Ring::Access), Some("a".into()), true, 2)
            .await
            .unwrap()
    );
    for k in ["c", "d"] {
        let current = active(&st.keys().await.unwrap(), Ring::Access)[0].clone();
        assert!(
            st.install_key(key(k, Ring::Access), Some(current), true, 2)
                .await
                .unwrap()
        );
    }
    let keys = st.keys().await.unwrap();
    let kids: Vec<&str> = keys
        .iter()
        .filter(|k| k.ring == Ring::Access)
        .map(|k| k.kid.as_str())
        .collect();
    // Newest first; two previous keys kept, the oldest deleted.
    assert_eq!(kids, ["d", "c", "b"]);
    assert_eq!(active(&keys, Ring::Access), ["d"]);
    assert_eq!(active(&keys, Ring::Id), ["i"]);
    assert_eq!(keys[0].private, [0x30, 1, 2, 3]);
    // Without overlap, the previous keys go at once (the other ring stays).
    assert!(
        st.install_key(key("e", Ring::Access), Some("d".into()), false, 2)
            .await
            .unwrap()
    );
    let keys = st.keys().await.unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["e", "i"]);
}

fn grant(kind: GrantKind, n: u8, exp: u64) -> GrantRecord {
    GrantRecord {
        kind,
        hash: [n; 32],
        client_id: "svc".into(),
        family: None,
        exp,
        used: false,
        data: json!({"scope": "a b", "n": n}),
    }
}

async fn grants_are_used_once_and_purged_when_expired(b: &Backend) {
    let st = b.store().await;
    st.put_grant(grant(GrantKind::Code, 1, NOW + 60))
        .await
        .unwrap();
    st.put_grant(grant(GrantKind::Refresh, 1, NOW + 60))
        .await
        .unwrap();
    // Same hash, other kind: another record.
    assert_eq!(
        st.grant(GrantKind::Code, [1; 32]).await.unwrap().unwrap(),
        grant(GrantKind::Code, 1, NOW + 60)
    );
    assert!(
        st.grant(GrantKind::Opaque, [1; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert!(st.mark_used(GrantKind::Code, [1; 32]).await.unwrap());
    assert!(
        !st.mark_used(GrantKind::Code, [1; 32]).await.unwrap(),
        "only once"
    );
    assert!(
        !st.mark_used(GrantKind::Code, [9; 32]).await.unwrap(),
        "unknown"
    );
    assert!(st.mark_used(GrantKind::Refresh, [1; 32]).await.unwrap());
    st.set_family(GrantKind::Code, [1; 32], "fam".into())
        .await
        .unwrap();
    let code = st.grant(GrantKind::Code, [1; 32]).await.unwrap().unwrap();
    assert!(code.used);
    assert_eq!(code.family.as_deref(), Some("fam"));

    st.revoke_family("fam".into(), NOW + 10).await.unwrap();
    st.revoke_family("fam".into(), NOW + 5).await.unwrap();
    assert!(st.family_revoked("fam".into()).await.unwrap());
    assert!(!st.family_revoked("other".into()).await.unwrap());
    st.revoke_jti("j1".into(), NOW + 10).await.unwrap();
    assert!(st.jti_revoked("j1".into()).await.unwrap());
    assert!(!st.jti_revoked("j2".into()).await.unwrap());

    // RFC 7523 §3 item 7: a client assertion's jti is accepted once per client.
    assert!(
        st.consume_jti("svc".into(), "a1".into(), NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !st.consume_jti("svc".into(), "a1".into(), NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        st.consume_jti("other".into(), "a1".into(), NOW + 10)
            .await
            .unwrap()
    );
    // Assertion jtis and revoked jtis do not mix.
    assert!(!st.jti_revoked("a1".into()).await.unwrap());

    st.put_grant(grant(GrantKind::Opaque, 2, NOW + 7200))
        .await
        .unwrap();
    st.delete_grant(GrantKind::Refresh, [1; 32]).await.unwrap();
    assert!(
        st.grant(GrantKind::Refresh, [1; 32])
            .await
            .unwrap()
            .is_none()
    );
    // Nothing expired yet; at NOW + 60 + 1h the code goes (kept an hour
    // past expiry so a replay is recognised), revocations and jtis after
    // their own expiry.
    assert_eq!(st.purge(NOW).await.unwrap(), 0);
    assert_eq!(st.purge(NOW + 60 + 3599).await.unwrap(), 4);
    assert!(st.grant(GrantKind::Code, [1; 32]).await.unwrap().is_some());
    assert!(!st.family_revoked("fam".into()).await.unwrap());
    assert_eq!(st.purge(NOW + 60 + 3600).await.unwrap(), 1);
    assert!(st.grant(GrantKind::Code, [1; 32]).await.unwrap().is_none());
    assert!(
        st.grant(GrantKind::Opaque, [2; 32])
            .await
            .unwrap()
            .is_some()
    );
}

struct Running {
    base: String,
    authz: Arc<Authz>,
    task: tokio::task::JoinHandle<()>,
}

/// The server on `base` (the same address on a restart, so the issuer stays).
async fn serve(b: &Backend, addr: Option<std::net::SocketAddr>, sealer: &str) -> Running {
    let listener = tokio::net::TcpListener::bind(addr.unwrap_or(([127, 0, 0, 1], 0).into()))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&base);
    config.alg = Alg::ES256;
    // Fixed secrets, as a configuration file gives them.
    for c in &mut config.clients {
        c.secret = format!("secret-of-{}", c.id);
    }
    let authz = Arc::new(
        Authz::open(
            config,
            Arc::new(FixedClock(NOW)),
            b.store().await,
            Some(Sealer::from_text(sealer).unwrap()),
        )
        .await
        .unwrap(),
    );
    let router = Arc::clone(&authz).router();
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running { base, authz, task }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A refresh token from the code flow (the login form posted directly).
async fn refresh_token(s: &Running) -> (String, String) {
    let verifier = "v".repeat(50);
    let challenge = b64url_encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    );
    let redirect = "http://127.0.0.1:8000/callback";
    let resp = http()
        .post(format!("{}/authorize", s.base))
        .form(&[
            ("client_id", "demo-web"),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid orders.read"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("username", "alice"),
            ("password", "wonderland"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    let q: HashMap<String, String> = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let tokens: Value = http()
        .post(format!("{}/token", s.base))
        .basic_auth("demo-web", Some("secret-of-demo-web"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        q["code"].clone(),
    )
}

async fn use_refresh(base: &str, token: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-web", Some("secret-of-demo-web"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn opaque_token(base: &str) -> String {
    let v: Value = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-opaque", Some("secret-of-demo-opaque"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(base: &str, token: &str) -> Value {
    http()
        .post(format!("{base}/introspect"))
        .basic_auth("demo-client", Some("secret-of-demo-client"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn state_survives_a_restart(b: &Backend) {
    let kek = "ab".repeat(32);
    let first = serve(b, None, &kek).await;
    let jwks_before: Value = http()
        .get(format!("{}/jwks.json", first.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (refresh, code) = refresh_token(&first).await;
    let (status, rotated) = use_refresh(&first.base, &refresh).await;
    assert_eq!(status, 200, "{rotated}");
    let live_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    let opaque = opaque_token(&first.base).await;
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let pkcs8 = first.authz.keys().active().pkcs8().to_vec();
    let addr: std::net::SocketAddr = first.base.trim_start_matches("http://").parse().unwrap();

    // Stop the server (its store goes with it) and start another.
    first.task.abort();
    let _ = first.task.await;
    drop(first.authz);
    // Without the key-encryption key, or with another, the keys stay sealed.
    let config = AuthzConfig::dev("http://127.0.0.1:9");
    let clock = Arc::new(FixedClock(NOW));
    let err = Authz::open(config.clone(), clock.clone(), b.store().await, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("encrypted") && err.contains("encryption_key"),
        "{err}"
    );
    let wrong = Sealer::from_text(&"cd".repeat(32)).unwrap();
    let err = Authz::open(config, clock, b.store().await, Some(wrong))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be decrypted"), "{err}");

    let second = serve(b, Some(addr), &kek).await;
    let jwks_after: Value = http()
        .get(format!("{}/jwks.json", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "the same keys are published");
    // Tokens issued before the restart: the JWT and the opaque one are
    // active, the rotated refresh token works, the used one is refused
    // (and that revokes its family).
    assert_eq!(introspect(&second.base, &access).await["active"], true);
    assert_eq!(introspect(&second.base, &opaque).await["active"], true);
    let (status, again) = use_refresh(&second.base, &live_refresh).await;
    assert_eq!(status, 200, "{again}");
    let newest = again["refresh_token"].as_str().unwrap().to_owned();
    let (status, reuse) = use_refresh(&second.base, &refresh).await;
    assert_eq!(status, 400);
    assert_eq!(reuse["error"], "invalid_grant");
    let (status, _) = use_refresh(&second.base, &newest).await;
    assert_eq!(status, 400, "reuse revoked the family");

    // Nothing secret is in the SQLite files in clear: tokens, code and the
    // private key (its PKCS#8 body).
    if let Backend::Sqlite(dir) = b {
        let mut bytes = Vec::new();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        assert!(bytes.len() > 4096);
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for secret in [&refresh, &live_refresh, &newest, &code, &opaque, &access] {
            assert!(
                !contains(secret.as_bytes()),
                "a token in clear in the database"
            );
        }
        // The P-256 private scalar: after `INTEGER 1, OCTET STRING (32)` of
        // the RFC 5915 structure inside the PKCS#8.
        let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
        let at = pkcs8.windows(5).position(|w| w == marker).unwrap() + 5;
        assert!(!contains(&pkcs8[at..at + 32]), "the private key in clear");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("authz.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    second.task.abort();
}

on_both_stores!(
    key_installation_is_a_compare_and_swap,
    grants_are_used_once_and_purged_when_expired,
    state_survives_a_restart,
);
