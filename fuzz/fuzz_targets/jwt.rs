//! The JWT decoder and inspector, with and without keys, and the gateway's
//! edge check.
#![no_main]
use gatewise_core::jose::check::{self, Policy};
use gatewise_core::jose::jwk::{Material, VerifyingKey};
use gatewise_core::jose::jwt::{self, Keys, Options};
use gatewise_core::jose::Alg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = jwt::inspect(token, &Options::at(1_767_225_600));
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "oct", "kid": "k2", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
    ]});
    let _ = jwt::inspect(token, &Options { keys: Keys::Jwks(jwks), ..Options::at(0) });
    let _ = jwt::inspect(token, &Options { keys: Keys::Secret(vec![1; 32]), ..Options::at(u64::MAX) });
    let policy = Policy { audiences: vec!["api".into()], require_at_jwt: true, ..Policy::new(vec![Alg::HS256, Alg::ES256]) };
    if let (Ok(parsed), Ok(key)) = (check::parse(token, &policy), VerifyingKey::new(Alg::HS256, &Material::Oct(vec![1; 32]))) {
        let _ = parsed.verify(&key, &policy, 1_767_225_600);
    }
});
