//! The gateway's edge check (`jose::check`): each reason to refuse, at its
//! boundary, for keys generated here.

mod support;

use gatewise_core::jose::check::{self, Policy, Rejection};
use gatewise_core::jose::jwk::{self, VerifyingKey};
use gatewise_core::jose::{Alg, b64url_encode};
use serde_json::{Value, json};
use support::mint::{TestKey, sign_raw};

const NOW: u64 = 1_767_225_600;

fn claims() -> Value {
    json!({"iss": "https://as.example.com", "sub": "user-1", "aud": ["https://api.example.com", "other"],
           "client_id": "c1", "iat": NOW - 10, "exp": NOW + 3600, "jti": "j1", "scope": "read write"})
}

fn policy(alg: Alg) -> Policy {
    Policy {
        issuer: Some("https://as.example.com".into()),
        audiences: vec!["https://api.example.com".into()],
        require_at_jwt: true,
        ..Policy::new(vec![alg])
    }
}

fn key(k: &TestKey) -> VerifyingKey {
    let jwk = k.jwk();
    let obj = jwk.as_object().unwrap();
    let alg = Alg::parse(k.alg).unwrap();
    VerifyingKey::new(alg, &jwk::material(obj).unwrap()).unwrap()
}

fn run(token: &str, vk: &VerifyingKey, p: &Policy, now: u64) -> Result<check::Verified, Rejection> {
    check::parse(token, p)?.verify(vk, p, now)
}

#[test]
fn good_tokens_pass_for_each_algorithm() {
    for alg in ["RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256"] {
        let k = TestKey::new(alg, "k1");
        let t = k.sign(json!({"typ": "at+jwt"}), claims());
        let a = Alg::parse(alg).unwrap();
        let v = run(&t, &key(&k), &policy(a), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(v.header.kid.as_deref(), Some("k1"));
        assert_eq!(v.claims.scopes().collect::<Vec<_>>(), ["read", "write"]);
        assert_eq!(v.claims.client_id.as_deref(), Some("c1"));
    }
}

#[test]
fn signature_flip_is_refused() {
    let k = TestKey::new("ES256", "k1");
    let t = k.sign(json!({"typ": "at+jwt"}), claims());
    let (rest, sig) = t.rsplit_once('.').unwrap();
    let mut bytes = gatewise_core::jose::b64url_decode(sig).unwrap();
    bytes[5] ^= 1;
    let forged = format!("{rest}.{}", b64url_encode(&bytes));
    let e = run(&forged, &key(&k), &policy(Alg::ES256), NOW).unwrap_err();
    assert_eq!(e.reason(), "jwt-signature-invalid");
}

#[test]
fn alg_none_and_unlisted_algs_are_refused_before_any_key() {
    let none = sign_raw(&json!({"alg": "none"}), &claims(), |_| Vec::new());
    let p = policy(Alg::RS256);
    assert_eq!(
        check::parse(&none, &p).unwrap_err().reason(),
        "jwt-alg-not-allowed"
    );
    let hs = TestKey::new("HS256", "k1").sign(json!({}), claims());
    assert_eq!(
        check::parse(&hs, &p).unwrap_err().reason(),
        "jwt-alg-not-allowed"
    );
    let weird = sign_raw(&json!({"alg": "RS256 "}), &claims(), |_| vec![1]);
    assert_eq!(
        check::parse(&weird, &p).unwrap_err().reason(),
        "jwt-alg-not-allowed"
    );
}

#[test]
fn key_confusion_rs256_key_cannot_check_hs256() {
    // The policy allows both, but the key found for the kid is RSA.
    let rsa = TestKey::new("RS256", "k1");
    let hs = TestKey::new("HS256", "k1").sign(json!({"typ": "at+jwt"}), claims());
    let p = Policy {
        algorithms: vec![Alg::RS256, Alg::HS256],
        ..policy(Alg::RS256)
    };
    let e = run(&hs, &key(&rsa), &p, NOW).unwrap_err();
    assert_eq!(e.reason(), "jwt-key-mismatch");
}

#[test]
fn crit_and_malformed_shapes() {
    let k = TestKey::new("HS256", "k1");
    let p = policy(Alg::HS256);
    let crit = k.sign(json!({"crit": ["exp"], "exp": 1}), claims());
    assert_eq!(
        check::parse(&crit, &p).unwrap_err(),
        Rejection::CritUnsupported
    );
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "e30.e30.!!",
        "W10.e30.AA",
    ] {
        let e = check::parse(bad, &p).unwrap_err();
        assert_eq!(e.reason(), "jwt-malformed", "{bad}: {e}");
    }
    let huge = "a".repeat(check::MAX_TOKEN_LEN + 1);
    assert_eq!(
        check::parse(&huge, &p).unwrap_err().reason(),
        "jwt-malformed"
    );
    // A payload that is an array.
    let arr = k.sign(json!({"typ": "at+jwt"}), json!([1, 2]));
    assert_eq!(
        run(&arr, &key(&k), &p, NOW).unwrap_err().reason(),
        "jwt-malformed"
    );
}

#[test]
fn time_boundaries_at_the_leeway() {
    let k = TestKey::new("HS256", "k1");
    let vk = key(&k);
    let p = policy(Alg::HS256);
    let mut c = claims();
    c["exp"] = json!(NOW - 60);
    let t = k.sign(json!({"typ": "at+jwt"}), c.clone());
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::Expired { by: 60 }
    );
    c["exp"] = json!(NOW - 59);
    let t = k.sign(json!({"typ": "at+jwt"}), c.clone());
    assert!(run(&t, &vk, &p, NOW).is_ok());
    c["nbf"] = json!(NOW + 61);
    c["exp"] = json!(NOW + 600);
    let t = k.sign(json!({"typ": "at+jwt"}), c.clone());
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::NotYetValid { by: 61 }
    );
    c["nbf"] = json!(NOW + 60);
    c["iat"] = json!(NOW + 95);
    let t = k.sign(json!({"typ": "at+jwt"}), c.clone());
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::IssuedInFuture { by: 95 }
    );
    c.as_object_mut().unwrap().remove("exp");
    c["iat"] = json!(NOW);
    let t = k.sign(json!({"typ": "at+jwt"}), c);
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::ClaimMissing("exp")
    );
}

#[test]
fn issuer_audience_typ_and_id_tokens() {
    let k = TestKey::new("HS256", "k1");
    let vk = key(&k);
    let p = policy(Alg::HS256);
    let mut c = claims();
    c["iss"] = json!("https://as.example.com/");
    let t = k.sign(json!({"typ": "at+jwt"}), c);
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err().reason(),
        "jwt-iss-mismatch"
    );

    let mut c = claims();
    c["aud"] = json!("api://default");
    let t = k.sign(json!({"typ": "at+jwt"}), c);
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::AudienceMismatch {
            found: vec!["api://default".into()]
        }
    );

    let t = k.sign(json!({"typ": "JWT"}), claims());
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::TypMismatch("JWT".into())
    );
    let t = k.sign(json!({"typ": "application/AT+JWT"}), claims());
    assert!(run(&t, &vk, &p, NOW).is_ok());

    let mut c = claims();
    c["nonce"] = json!("n-0S6_WzA2Mj");
    let t = k.sign(json!({"typ": "at+jwt"}), c);
    assert_eq!(
        run(&t, &vk, &p, NOW).unwrap_err(),
        Rejection::IdTokenAsAccessToken
    );
}

#[test]
fn scp_arrays_are_read_when_scope_is_absent() {
    let k = TestKey::new("HS256", "k1");
    let mut c = claims();
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["files.read", "mail.send"]);
    let t = k.sign(json!({"typ": "at+jwt"}), c);
    let v = run(&t, &key(&k), &policy(Alg::HS256), NOW).unwrap();
    assert_eq!(
        v.claims.scopes().collect::<Vec<_>>(),
        ["files.read", "mail.send"]
    );
}

#[test]
fn every_reason_is_listed_once() {
    let all = [
        Rejection::Malformed(String::new()),
        Rejection::CritUnsupported,
        Rejection::AlgNotAllowed(String::new()),
        Rejection::KidUnknown(String::new()),
        Rejection::KeyMismatch {
            key: Alg::RS256,
            alg: Alg::HS256,
        },
        Rejection::SignatureInvalid,
        Rejection::ClaimMissing("exp"),
        Rejection::Expired { by: 1 },
        Rejection::NotYetValid { by: 1 },
        Rejection::IssuedInFuture { by: 1 },
        Rejection::IssuerMismatch {
            found: String::new(),
        },
        Rejection::AudienceMismatch { found: Vec::new() },
        Rejection::TypMismatch(String::new()),
        Rejection::IdTokenAsAccessToken,
    ];
    let reasons: Vec<&str> = all.iter().map(Rejection::reason).collect();
    assert_eq!(reasons, Rejection::REASONS);
}

#[test]
fn key_sets_pick_by_kid_and_alg_and_skip_what_they_must() {
    use gatewise_core::jose::keyset::KeySet;
    let rs = TestKey::new("RS256", "rs-1");
    let es = TestKey::new("ES256", "es-1");
    let mut private = TestKey::new("ES256", "leaky").jwk();
    private["d"] = json!("AAAA");
    let mut enc = TestKey::new("RS256", "enc-1").jwk();
    enc["use"] = json!("enc");
    let doc = json!({"keys": [rs.jwk(), es.jwk(), private, enc, {"kty": "RSA", "kid": "broken"}]});
    let set = KeySet::from_jwks(doc.to_string().as_bytes(), &[Alg::RS256, Alg::ES256]).unwrap();
    assert_eq!(set.kids(), ["es-1", "rs-1"]);
    assert_eq!(set.len(), 2);
    assert_eq!(set.skipped.len(), 3, "{:?}", set.skipped);
    assert_eq!(set.candidates(Some("rs-1"), Alg::RS256).len(), 1);
    assert!(set.candidates(Some("rs-1"), Alg::ES256).is_empty());
    assert!(set.candidates(Some("nope"), Alg::RS256).is_empty());
    // No kid: any key of the algorithm.
    assert_eq!(set.candidates(None, Alg::ES256).len(), 1);
    // Only RS256 allowed: the EC key is not usable.
    let only_rs = KeySet::from_jwks(doc.to_string().as_bytes(), &[Alg::RS256]).unwrap();
    assert_eq!(only_rs.kids(), ["rs-1"]);
    assert!(KeySet::from_jwks(b"<html>", &[Alg::RS256]).is_err());
    assert!(KeySet::from_jwks(b"{}", &[Alg::RS256]).is_err());
}
