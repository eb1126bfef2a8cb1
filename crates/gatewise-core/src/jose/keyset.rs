//! A JWK Set turned into ready-to-use verifying keys for the algorithms an
//! issuer allows (RFC 7517 §5, RFC 8725 §3.1). Keys are parsed once here;
//! the gateway swaps whole sets atomically when it refetches.

use super::Alg;
use super::jwk::{self, VerifyingKey};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a document is not a usable JWK Set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// Not JSON.
    #[error("the JWKS is not JSON: {0}")]
    NotJson(String),
    /// JSON without a `keys` array.
    #[error("the JWKS has no `keys` array")]
    NoKeys,
}

/// Verifying keys by `kid` and algorithm.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyingKey>>>,
    without_kid: Vec<Arc<VerifyingKey>>,
    /// One line per member that was skipped, with the reason.
    pub skipped: Vec<String>,
}

/// Most keys tried for a token without `kid` (bounds the signature work a
/// forged token can cause).
const MAX_CANDIDATES: usize = 4;

impl KeySet {
    /// Builds the set from a JWKS document, keeping keys usable with one of
    /// `algorithms`: `use` absent or `sig`, `alg` absent or allowed, material
    /// that parses and fits. Keys with private members are skipped: a public
    /// JWKS must not carry them.
    pub fn from_jwks(doc: &[u8], algorithms: &[Alg]) -> Result<KeySet, KeySetError> {
        let v: Value =
            serde_json::from_slice(doc).map_err(|e| KeySetError::NotJson(e.to_string()))?;
        let map: &Map<String, Value> = v.as_object().ok_or(KeySetError::NoKeys)?;
        let keys = jwk::set_keys(map).ok_or(KeySetError::NoKeys)?;
        let mut set = KeySet::default();
        for k in keys {
            let name = k.kid.map_or_else(
                || format!("keys[{}]", k.index),
                |kid| format!("kid `{kid}`"),
            );
            if k.use_.is_some_and(|u| u != "sig") {
                set.skipped.push(format!("{name}: use is not sig"));
                continue;
            }
            if jwk::PRIVATE_MEMBERS.iter().any(|m| k.raw.contains_key(*m)) {
                set.skipped
                    .push(format!("{name}: carries private key members; refusing it"));
                continue;
            }
            let material = match &k.material {
                Ok(m) => m,
                Err(e) => {
                    set.skipped.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let declared = k.alg.map(Alg::parse);
            let mut usable = 0;
            let errors_before = set.skipped.len();
            for &alg in algorithms {
                if declared.is_some_and(|d| d != Some(alg)) || !material.fits(alg) {
                    continue;
                }
                match VerifyingKey::new(alg, material) {
                    Ok(vk) => {
                        usable += 1;
                        let vk = Arc::new(vk);
                        match k.kid {
                            Some(kid) => set.by_kid.entry(kid.to_owned()).or_default().push(vk),
                            None => set.without_kid.push(vk),
                        }
                    }
                    Err(e) => set.skipped.push(format!("{name}: {e}")),
                }
            }
            if usable == 0 && set.skipped.len() == errors_before {
                set.skipped.push(format!(
                    "{name}: fits none of the allowed algorithms ({})",
                    algorithms
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(set)
    }

    /// The keys to try for a token with this `kid` and `alg`: the key(s)
    /// with that `kid`, or for a token without `kid` the keys without one
    /// (then any key) of that algorithm, at most a few.
    pub fn candidates(&self, kid: Option<&str>, alg: Alg) -> Vec<Arc<VerifyingKey>> {
        let pick = |keys: &[Arc<VerifyingKey>]| -> Vec<Arc<VerifyingKey>> {
            keys.iter()
                .filter(|k| k.alg() == alg)
                .take(MAX_CANDIDATES)
                .cloned()
                .collect()
        };
        match kid {
            Some(kid) => self.by_kid.get(kid).map(|v| pick(v)).unwrap_or_default(),
            None => {
                let own = pick(&self.without_kid);
                if own.is_empty() {
                    let all: Vec<Arc<VerifyingKey>> =
                        self.by_kid.values().flatten().cloned().collect();
                    pick(&all)
                } else {
                    own
                }
            }
        }
    }

    /// Whether a key with this `kid` is in the set (for any algorithm).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The `kid`s present, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum::<usize>() + self.without_kid.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
