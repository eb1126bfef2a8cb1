//! Test keys and token minting with aws-lc-rs: every algorithm the doctor
//! verifies, with the matching public JWK.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, rsa::KeySize};
use base64::Engine as _;
use serde_json::{Value, json};

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str),
    Ed(Ed25519KeyPair),
    Hmac(Vec<u8>),
}

pub struct TestKey {
    pub alg: &'static str,
    pub kid: String,
    pub signer: Signer,
}

impl TestKey {
    pub fn new(alg: &'static str, kid: &str) -> TestKey {
        let signer = match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                Signer::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
            }
            "ES256" => Signer::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                "P-256",
            ),
            "ES384" => Signer::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                "P-384",
            ),
            "EdDSA" => Signer::Ed(Ed25519KeyPair::generate().unwrap()),
            "HS256" | "HS384" | "HS512" => Signer::Hmac(vec![7u8; 64]),
            other => panic!("no test key for {other}"),
        };
        TestKey {
            alg,
            kid: kid.to_string(),
            signer,
        }
    }

    /// The public JWK (for HMAC: the `oct` key).
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public_key().into();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": self.alg, "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec(k, crv) => {
                let p = k.public_key().as_ref();
                let n = (p.len() - 1) / 2;
                json!({"kty": "EC", "kid": self.kid, "use": "sig", "alg": self.alg, "crv": crv, "x": b64(&p[1..1 + n]), "y": b64(&p[1 + n..])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "kid": self.kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            Signer::Hmac(s) => json!({"kty": "oct", "kid": self.kid, "alg": self.alg, "k": b64(s)}),
        }
    }

    pub fn jwks(keys: &[&TestKey]) -> Value {
        json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
    }

    pub fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(k) => {
                let enc: &'static dyn signature::RsaEncoding = match self.alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(enc, &rng, msg, &mut sig).unwrap();
                sig
            }
            Signer::Ec(k, _) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
            Signer::Hmac(s) => {
                let a = match self.alg {
                    "HS384" => hmac::HMAC_SHA384,
                    "HS512" => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac::sign(&hmac::Key::new(a, s), msg).as_ref().to_vec()
            }
        }
    }

    /// A compact JWS with this key's alg and kid plus `extra` header members.
    pub fn sign(&self, extra_header: Value, claims: Value) -> String {
        let mut header = json!({"alg": self.alg, "kid": self.kid});
        if let (Some(h), Some(e)) = (header.as_object_mut(), extra_header.as_object()) {
            for (k, v) in e {
                h.insert(k.clone(), v.clone());
            }
        }
        sign_raw(&header, &claims, |m| self.sign_bytes(m))
    }
}

pub fn sign_raw(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}
