//! Bad input never panics or hangs: property tests over the capture parser,
//! every judge, the JWT decoder and the JWKS judge, plus size extremes.

use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::jose::jwt::{self, Keys, Options};
use proptest::prelude::*;

const EXPECTS: [Expect; 5] = [
    Expect::Token,
    Expect::Introspection,
    Expect::Discovery,
    Expect::Jwks,
    Expect::Revocation,
];

fn judge_all(bytes: &[u8]) {
    let cap = capture::parse(bytes);
    for e in EXPECTS {
        let _ = diagnose::response(&cap, &Context::new(e));
    }
}

/// HTTP-shaped inputs: a status line, some headers from a menu, a body of
/// arbitrary bytes; shrinks to small reproducers.
fn http_like() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        "Content-Type: application/json",
        "Content-Type: text/html",
        "Transfer-Encoding: chunked",
        "Content-Encoding: gzip",
        "Content-Encoding: deflate",
        "Content-Length: 5",
        "Content-Length: x",
        "Content-Encoding: br",
        "WWW-Authenticate: Bearer",
        "Cache-Control: no-store",
        "X",
    ]);
    let status = prop::sample::select(vec![
        "200 OK",
        "302 Found",
        "400 Bad Request",
        "401",
        "500 X",
        "100 Continue",
        "abc",
    ]);
    (status, prop::collection::vec(header, 0..6), prop::collection::vec(any::<u8>(), 0..300), any::<bool>()).prop_map(
        |(s, hs, body, with_req)| {
            let mut out = Vec::new();
            if with_req {
                out.extend_from_slice(b"POST /token HTTP/1.1\nAuthorization: Basic Og==\n\ngrant_type=x&code_verifier=abc\n");
            }
            out.extend_from_slice(format!("HTTP/1.1 {s}\r\n").as_bytes());
            for h in hs {
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        judge_all(&bytes);
    }

    #[test]
    fn http_shaped_input_never_panics(bytes in http_like()) {
        judge_all(&bytes);
    }

    #[test]
    fn json_bodies_never_panic(json in "[{}\\[\\]\":,a-z0-9 .\\-]{0,200}") {
        judge_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{json}").as_bytes());
        judge_all(json.as_bytes());
    }

    #[test]
    fn arbitrary_tokens_never_panic(token in "[A-Za-z0-9_\\-.=+/]{0,300}") {
        let _ = jwt::inspect(&token, &Options::at(1_700_000_000));
        let _ = jwt::inspect(&token, &Options { keys: Keys::Jwks(serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]})), ..Options::at(0) });
    }

    #[test]
    fn base64url_json_segments_never_panic(h in "[ -~]{0,60}", p in "[ -~]{0,60}") {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}.{}", e.encode(h), e.encode(p), e.encode("sig"));
        let _ = jwt::inspect(&token, &Options { keys: Keys::Secret(vec![1; 32]), ..Options::at(u64::MAX) });
    }
}

#[test]
fn a_jwks_with_ten_thousand_keys_is_judged_and_summarised() {
    let keys: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "same", "x": format!("bad{i}"), "y": "AAAA"}))
        .collect();
    let body = serde_json::json!({ "keys": keys }).to_string();
    let input = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{body}");
    let cap = capture::parse(input.as_bytes());
    let findings = diagnose::response(&cap, &Context::new(Expect::Jwks));
    // Ten per code, then one summary line per code: a readable report.
    assert!(findings.len() < 40, "{} findings", findings.len());
    assert!(
        findings
            .iter()
            .any(|f| f.title.contains("more keys with the same problem"))
    );
}

#[test]
fn a_large_body_is_handled() {
    let mut input =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\"".to_vec();
    input.extend(std::iter::repeat_n(b'a', 8 * 1024 * 1024));
    judge_all(&input);
}

#[test]
fn a_gzip_bomb_is_refused() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..80 {
        enc.write_all(&zeros).unwrap();
    }
    let gz = enc.finish().unwrap();
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    input.extend_from_slice(&gz);
    let cap = capture::parse(&input);
    let findings = diagnose::response(&cap, &Context::new(Expect::Token));
    assert!(
        findings
            .iter()
            .any(|f| f.code == "content-encoding-undecodable"),
        "{findings:?}"
    );
}
