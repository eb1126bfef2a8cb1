//! JWT inspection against keys generated here, for every algorithm, and the
//! classic attacks (RFC 8725): alg none, RS256-to-HS256 confusion, kid
//! tricks, time boundaries at the leeway, audiences.

mod support;

use gatewise_core::jose::jwt::{self, Keys, Options, TokenKind};
use gatewise_core::{Report, Severity, Verdict};
use serde_json::{Value, json};
use support::mint::{self, TestKey};

const NOW: u64 = 1_767_225_600;

fn claims() -> Value {
    json!({"iss": "https://as.example.com", "sub": "user-1", "aud": "https://api.example.com",
           "client_id": "c1", "iat": NOW - 10, "exp": NOW + 3600, "jti": "j1", "scope": "read"})
}

fn opts(keys: Keys) -> Options {
    Options {
        issuer: Some("https://as.example.com".into()),
        audiences: vec!["https://api.example.com".into()],
        keys,
        ..Options::at(NOW)
    }
}

fn report(token: &str, o: &Options) -> Report {
    Report::new("token", jwt::inspect(token, o))
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.code).collect()
}

#[test]
fn every_algorithm_verifies_and_a_flipped_bit_does_not() {
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    ] {
        let key = TestKey::new(alg, &format!("kid-{alg}"));
        let token = key.sign(json!({}), claims());
        let keys = if alg.starts_with("HS") {
            Keys::Secret(vec![7u8; 64])
        } else {
            Keys::Jwks(TestKey::jwks(&[&key]))
        };
        let r = report(&token, &opts(keys.clone()));
        assert!(
            r.has_code("jwt-signature-verified"),
            "{alg}: {:?}",
            codes(&r)
        );
        assert_eq!(r.verdict, Verdict::Ok, "{alg}: {:?}", codes(&r));

        // Alter one character of the payload: the signature must fail.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let altered = mint::b64(json!({"iss": "https://as.example.com", "sub": "admin", "aud": "https://api.example.com", "exp": NOW + 3600}).to_string().as_bytes());
        parts[1] = altered;
        let forged = parts.join(".");
        let r = report(&forged, &opts(keys));
        assert!(
            r.has_code("jwt-signature-invalid"),
            "{alg}: {:?}",
            codes(&r)
        );
        assert_eq!(r.verdict, Verdict::Error);
    }
}

#[test]
fn tokens_minted_by_jsonwebtoken_verify() {
    // An independent JOSE implementation as a peer: what it signs, we accept.
    let key = TestKey::new("ES256", "peer");
    let mint::Signer::Ec(pair, _) = &key.signer else {
        unreachable!()
    };
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let enc = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("peer".into());
    let token = jsonwebtoken::encode(&header, &claims(), &enc).unwrap();
    let r = report(&token, &opts(Keys::Jwks(TestKey::jwks(&[&key]))));
    assert!(r.has_code("jwt-signature-verified"), "{:?}", codes(&r));

    let secret = vec![9u8; 48];
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384);
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let r = report(&token, &opts(Keys::Secret(secret)));
    assert!(r.has_code("jwt-signature-verified"), "{:?}", codes(&r));
}

#[test]
fn alg_none_is_rejected_before_anything_else() {
    let header = json!({"alg": "none", "typ": "JWT"});
    let token = format!(
        "{}.{}.",
        mint::b64(header.to_string().as_bytes()),
        mint::b64(claims().to_string().as_bytes())
    );
    let r = report(&token, &opts(Keys::None));
    assert_eq!(r.findings[0].code, "jwt-alg-none");
    assert_eq!(r.findings[0].rule, "JB-01");
    // Case games on "none" are unknown algorithms, not accepted either.
    let header = json!({"alg": "None"});
    let token = format!(
        "{}.{}.",
        mint::b64(header.to_string().as_bytes()),
        mint::b64(claims().to_string().as_bytes())
    );
    assert!(report(&token, &opts(Keys::None)).has_code("jwt-alg-unknown"));
}

#[test]
fn rs256_to_hs256_key_confusion_is_named() {
    let rsa = TestKey::new("RS256", "rsa-1");
    let jwks = TestKey::jwks(&[&rsa]);
    // The attacker MACs the token with the public key's bytes as the secret.
    let n = jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec();
    let header = json!({"alg": "HS256", "kid": "rsa-1"});
    let token = mint::sign_raw(&header, &claims(), |m| {
        aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &n),
            m,
        )
        .as_ref()
        .to_vec()
    });
    let r = report(&token, &opts(Keys::Jwks(jwks)));
    assert!(r.has_code("jwt-alg-key-confusion"), "{:?}", codes(&r));
    assert!(!r.has_code("jwt-signature-verified"));
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn kid_tricks_are_flagged_and_never_resolve() {
    let key = TestKey::new("HS256", "../../../../dev/null");
    let token = key.sign(json!({}), claims());
    let r = report(&token, &opts(Keys::Jwks(json!({"keys": []}))));
    assert!(r.has_code("jwt-kid-suspicious"));
    assert!(r.has_code("jwt-kid-not-in-jwks"));
    let key = TestKey::new("RS256", "k' OR '1'='1");
    let token = key.sign(
        json!({"jku": "https://attacker.example/jwks.json"}),
        claims(),
    );
    let r = report(&token, &opts(Keys::None));
    assert!(r.has_code("jwt-kid-suspicious"));
    assert!(r.has_code("jwt-header-key-reference"));
}

#[test]
fn unknown_kid_lists_the_keys_present() {
    let signer = TestKey::new("RS256", "2024-06");
    let a = TestKey::new("RS256", "2024-09");
    let b = TestKey::new("RS256", "2024-12");
    let token = signer.sign(json!({}), claims());
    let r = report(&token, &opts(Keys::Jwks(TestKey::jwks(&[&a, &b]))));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "jwt-kid-not-in-jwks")
        .unwrap();
    assert_eq!(f.title, "kid \"2024-06\" is not in the JWKS");
    assert!(
        f.evidence.contains("\"2024-09\", \"2024-12\""),
        "{}",
        f.evidence
    );
    assert!(f.cause.contains("rotated"));
}

fn timed(exp: i64, nbf: Option<i64>, iat: i64, leeway: u64) -> Report {
    let key = TestKey::new("HS256", "k");
    let mut c = claims();
    c["exp"] = json!(exp);
    c["iat"] = json!(iat);
    if let Some(n) = nbf {
        c["nbf"] = json!(n);
    }
    let token = key.sign(json!({}), c);
    report(
        &token,
        &Options {
            leeway,
            ..opts(Keys::Secret(vec![7u8; 64]))
        },
    )
}

#[test]
fn expiry_at_the_leeway_boundaries() {
    let now = NOW as i64;
    // Exactly at exp: still valid (RFC 7519 §4.1.4: on or after exp is expired; we allow equality as now == exp).
    assert_eq!(timed(now, None, now - 100, 60).verdict, Verdict::Ok);
    // 60 s after exp with 60 s leeway: passes, with a warning.
    let r = timed(now - 60, None, now - 100, 60);
    assert!(r.has_code("jwt-expired-within-leeway"));
    assert_eq!(r.verdict, Verdict::Warn);
    // 61 s: expired.
    let r = timed(now - 61, None, now - 100, 60);
    assert!(r.has_code("jwt-expired"));
    // 47 s with no leeway: the message a person needs.
    let r = timed(now - 47, None, now - 100, 0);
    let f = r.findings.iter().find(|f| f.code == "jwt-expired").unwrap();
    assert_eq!(
        f.title,
        "expired 47 s ago; with a 50 s leeway it would pass"
    );
}

#[test]
fn not_before_and_issued_at_in_the_future_name_the_clock() {
    let now = NOW as i64;
    let r = timed(now + 3600, Some(now + 30), now, 60);
    assert!(r.has_code("jwt-nbf-within-leeway"));
    let r = timed(now + 3600, Some(now + 61), now, 60);
    assert!(r.has_code("jwt-not-yet-valid"));
    let r = timed(now + 3600, None, now + 95, 60);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "jwt-iat-in-future")
        .unwrap();
    assert_eq!(
        f.title,
        "iat is 95 s in the future: the issuer's clock is ahead"
    );
}

#[test]
fn audience_string_or_array_and_near_misses() {
    let key = TestKey::new("HS256", "k");
    let mut c = claims();
    c["aud"] = json!(["https://other.example.com", "https://api.example.com"]);
    let r = report(
        &key.sign(json!({}), c.clone()),
        &opts(Keys::Secret(vec![7u8; 64])),
    );
    assert!(!r.has_code("jwt-aud-mismatch"));
    c["aud"] = json!("api://default");
    let r = report(
        &key.sign(json!({}), c.clone()),
        &opts(Keys::Secret(vec![7u8; 64])),
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "jwt-aud-mismatch")
        .unwrap();
    assert_eq!(
        f.title,
        "aud is \"api://default\" but you expect \"https://api.example.com\""
    );
    c["aud"] = json!("https://api.example.com/");
    let r = report(&key.sign(json!({}), c), &opts(Keys::Secret(vec![7u8; 64])));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "jwt-aud-mismatch")
        .unwrap();
    assert!(f.cause.contains("trailing slash"));
}

#[test]
fn issuer_trailing_slash_is_explained() {
    let key = TestKey::new("HS256", "k");
    let mut c = claims();
    c["iss"] = json!("https://as.example.com/");
    let r = report(&key.sign(json!({}), c), &opts(Keys::Secret(vec![7u8; 64])));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "jwt-iss-mismatch")
        .unwrap();
    assert!(f.evidence.contains("trailing slash"), "{}", f.evidence);
}

#[test]
fn id_token_rules_nonce_at_hash_azp() {
    let key = TestKey::new("RS256", "k");
    let access_token = "an-opaque-access-token";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let at_hash = mint::b64(&digest.as_ref()[..16]);
    let id = json!({"iss": "https://as.example.com", "sub": "u", "aud": ["c1", "c2"], "iat": NOW, "exp": NOW + 300,
                    "nonce": "n-1", "at_hash": at_hash});
    let token = key.sign(json!({}), id);
    let base = Options {
        kind: TokenKind::Id,
        client_id: Some("c1".into()),
        nonce: Some("n-1".into()),
        access_token: Some(access_token.into()),
        audiences: vec![],
        ..opts(Keys::Jwks(TestKey::jwks(&[&key])))
    };
    let r = report(&token, &base);
    assert!(r.has_code("jwt-signature-verified"));
    assert!(!r.has_code("jwt-at-hash-mismatch"));
    assert!(!r.has_code("jwt-nonce-mismatch"));
    assert!(
        r.has_code("jwt-azp"),
        "multiple audiences without azp: {:?}",
        codes(&r)
    );
    let r = report(
        &token,
        &Options {
            nonce: Some("other".into()),
            access_token: Some("other".into()),
            ..base.clone()
        },
    );
    assert!(r.has_code("jwt-nonce-mismatch"));
    assert!(r.has_code("jwt-at-hash-mismatch"));
}

#[test]
fn access_token_profile_rules() {
    let key = TestKey::new("RS256", "k");
    let token = key.sign(
        json!({"typ": "JWT"}),
        json!({"iss": "https://as.example.com", "aud": "https://api.example.com", "exp": NOW + 60}),
    );
    let r = report(
        &token,
        &Options {
            kind: TokenKind::Access,
            ..opts(Keys::None)
        },
    );
    assert!(r.has_code("jwt-at-typ-missing"));
    assert!(r.has_code("jwt-at-claims-missing"));
    // An ID token sent to an API is named as such.
    let id = key.sign(json!({}), json!({"iss": "https://as.example.com", "aud": "https://api.example.com", "exp": NOW + 60, "nonce": "x"}));
    let r = report(
        &id,
        &Options {
            kind: TokenKind::Access,
            ..opts(Keys::None)
        },
    );
    assert!(r.has_code("jwt-typ-confusion"));
}

#[test]
fn malformed_tokens_are_findings_not_panics() {
    for (token, code) in [
        ("", "jwt-opaque"),
        ("opaque-reference-token", "jwt-opaque"),
        ("a.b.c.d.e", "jwt-is-jwe"),
        ("a.b", "jwt-malformed"),
        ("a.b.c.d", "jwt-malformed"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0=.sig", "jwt-malformed"),
        (
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.si+g/",
            "jwt-malformed",
        ),
        ("e30.W10.", "jwt-malformed"),
        ("!!!.###.$$$", "jwt-malformed"),
    ] {
        let r = report(token, &opts(Keys::None));
        assert!(r.has_code(code), "{token:?}: {:?}", codes(&r));
    }
    let huge = "a".repeat(100_000) + ".b.c";
    assert!(report(&huge, &opts(Keys::None)).has_code("jwt-malformed"));
}

#[test]
fn short_hmac_secret_warns() {
    let short = b"secret".to_vec();
    let token = mint::sign_raw(&json!({"alg": "HS256"}), &claims(), |m| {
        aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &short),
            m,
        )
        .as_ref()
        .to_vec()
    });
    let r = report(&token, &opts(Keys::Secret(short.clone())));
    assert!(r.has_code("jwt-hmac-secret-short"));
    assert!(r.has_code("jwt-signature-verified"));
    assert!(r.findings.iter().all(|f| f.severity != Severity::Error));
}
