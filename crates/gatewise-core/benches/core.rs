//! Benchmarks of the pure core: judging a typical token response,
//! checking an RS256 JWT against the raw aws-lc-rs verify it is built on,
//! and the call log's per-request masking of headers.
//!
//! Run: `cargo bench -p gatewise-core`. Figures go in the closing notes as
//! ratios against the raw verify measured in the same run.

#![allow(missing_docs)]

use gatewise_test_support::mint;

use criterion::{Criterion, criterion_group, criterion_main};
use gatewise_core::calllog::{mask_headers, mask_request_headers, mask_request_headers_hashed};
use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::jose::jwk::{self, VerifyingKey};
use gatewise_core::jose::{Alg, check, jwt};
use gatewise_core::secret;
use serde_json::json;
use std::hint::black_box;

fn token_response() -> Vec<u8> {
    // About 2 KiB: a JWT access token, a refresh token, an ID token.
    let key = mint::TestKey::new("RS256", "k1");
    let at = key.sign(json!({"typ": "at+jwt"}), json!({"iss": "https://as.example.com", "sub": "user-1", "aud": "https://api.example.com", "client_id": "c1", "iat": 1767225600, "exp": 1767229200, "jti": "abc", "scope": "openid profile email api.read"}));
    let id = key.sign(json!({}), json!({"iss": "https://as.example.com", "sub": "user-1", "aud": "c1", "iat": 1767225600, "exp": 1767229200, "nonce": "n-0S6_WzA2Mj"}));
    let body = json!({"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": "8xLOxBtZp8-7f3a9c2e1b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4", "scope": "openid profile email api.read", "id_token": id, "ext_expires_in": 3600, "session_state": "8f2b5a6c-1d4e-4f7a-9b3c-2e6d8a1f0c4b", "not-before-policy": 0, "refresh_expires_in": 1800, "authorization_details": [{"type": "payment_initiation", "actions": ["initiate", "status"], "locations": ["https://bank.example.com/payments"], "instructedAmount": {"currency": "EUR", "amount": "123.50"}, "creditorName": "Merchant A", "creditorAccount": {"iban": "DE02100100109307118603"}}]}).to_string();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nPragma: no-cache\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let resp = token_response();
    let ctx = Context::new(Expect::Token);
    c.bench_function(
        &format!("diagnose token response ({} bytes)", resp.len()),
        |b| {
            b.iter(|| {
                let cap = capture::parse(black_box(&resp));
                black_box(diagnose::response(&cap, &ctx))
            })
        },
    );

    let key = mint::TestKey::new("RS256", "k1");
    // A typical RFC 9068 access token.
    let token = key.sign(
        json!({"typ": "at+jwt"}),
        json!({"iss": "https://as.example.com", "sub": "user-1", "aud": "api", "client_id": "c1",
               "exp": 1767229200, "iat": 1767225600, "jti": "3f2a9c1e", "scope": "openid profile api.read"}),
    );
    let jwks = mint::TestKey::jwks(&[&key]);
    let jwk_obj = jwks["keys"][0].as_object().unwrap().clone();
    let material = jwk::material(&jwk_obj).unwrap();
    let vk = VerifyingKey::new(Alg::RS256, &material).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let input = format!("{}.{}", parts[0], parts[1]);
    let sig = jwt::decode(&token).unwrap().signature;

    let mut g = c.benchmark_group("RS256");
    let components = match &material {
        jwk::Material::Rsa { n, e } => aws_lc_rs::signature::RsaPublicKeyComponents {
            n: n.clone(),
            e: e.clone(),
        },
        _ => unreachable!(),
    };
    let raw = components
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    g.bench_function("raw aws-lc-rs verify (parsed key)", |b| {
        b.iter(|| {
            raw.verify_sig(black_box(input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    g.bench_function("gatewise decode + verify (parsed key)", |b| {
        b.iter(|| {
            let j = jwt::decode(black_box(&token)).unwrap();
            vk.verify(j.signing_input.as_bytes(), &j.signature).unwrap();
        })
    });
    let policy = check::Policy {
        issuer: Some("https://as.example.com".into()),
        audiences: vec!["api".into()],
        require_at_jwt: true,
        ..check::Policy::new(vec![Alg::RS256])
    };
    g.bench_function("gateway edge check (parse + verify + claims)", |b| {
        b.iter(|| {
            check::parse(black_box(&token), &policy)
                .unwrap()
                .verify(&vk, &policy, 1767226000)
                .unwrap()
        })
    });
    g.bench_function("edge check parse only (no signature)", |b| {
        b.iter(|| check::parse(black_box(&token), &policy).unwrap())
    });
    let opts = jwt::Options {
        issuer: Some("https://as.example.com".into()),
        audiences: vec!["api".into()],
        keys: jwt::Keys::Jwks(jwks.clone()),
        ..jwt::Options::at(1767226000)
    };
    g.bench_function("doctor jwt inspect (JWKS parsed per call)", |b| {
        b.iter(|| black_box(jwt::inspect(black_box(&token), &opts)))
    });
    g.finish();

    call_log(c, &token);
}

/// What the call log does with every request's and response's headers
/// (`gatewise-gateway`'s `calls`): mask them, and fingerprint the bearer
/// token; with the token's SHA-256 known (the gateway hashes it once per
/// request, for the log and its verified-token cache) or not.
fn call_log(c: &mut Criterion, token: &str) {
    let authorization = format!("Bearer {token}");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01";
    let request: Vec<(&str, &[u8])> = vec![
        ("host", b"api.example.com"),
        ("user-agent", b"okhttp/4.12.0"),
        ("accept", b"application/json"),
        ("accept-encoding", b"gzip"),
        ("authorization", authorization.as_bytes()),
        ("traceparent", traceparent.as_bytes()),
    ];
    let response: Vec<(&str, &[u8])> = vec![
        ("server", b"nginx/1.24.0"),
        ("date", b"Sat, 28 Nov 2026 10:00:00 GMT"),
        ("content-type", b"application/json"),
        ("content-length", b"612"),
        ("cache-control", b"no-store"),
        (
            "set-cookie",
            b"sid=31d4d96e407aad42; Path=/; Secure; HttpOnly",
        ),
        ("x-request-id", b"gw-1a2b3c-4f"),
    ];
    let mut g = c.benchmark_group("call log");
    g.bench_function("header values as text: from_utf8_lossy", |b| {
        b.iter(|| {
            for (_, v) in black_box(&request) {
                black_box(String::from_utf8_lossy(v));
            }
        })
    });
    g.bench_function("header values as text: from_utf8", |b| {
        b.iter(|| {
            for (_, v) in black_box(&request) {
                let _ = black_box(std::str::from_utf8(v));
            }
        })
    });
    let (request, response) = (as_text(&request), as_text(&response));
    g.bench_function(
        format!("SHA-256 of the bearer token ({} bytes)", token.len()),
        |b| b.iter(|| secret::sha256(black_box(token.as_bytes()))),
    );
    g.bench_function("mask request headers (hashes the token)", |b| {
        b.iter(|| mask_request_headers(black_box(request.iter().copied())))
    });
    let known = secret::Hashed::new(token.as_bytes());
    g.bench_function("mask request headers (token hashed already)", |b| {
        b.iter(|| mask_request_headers_hashed(black_box(request.iter().copied()), Some(&known)))
    });
    g.bench_function("mask response headers", |b| {
        b.iter(|| mask_headers(black_box(response.iter().copied())))
    });
    g.finish();
}

/// Header pairs as `(name, value)` text, as the gateway passes them.
fn as_text<'a>(h: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a str)> {
    h.iter()
        .map(|(n, v)| (*n, std::str::from_utf8(v).unwrap_or_default()))
        .collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);
