//! Verification keys: what kind each key is, which algorithms it may verify, and the key set
//! of one issuer, indexed by `kid`.
//!
//! A key verifies only the algorithms of its own kind (an RSA key RS and PS, a P-256 key ES256,
//! a P-384 key ES384, an Ed25519 key EdDSA, an HMAC secret HS), narrowed further by the JWK's
//! `alg` when it has one. Together with the issuer's configured list this is what keeps a token
//! from choosing how it is checked.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};

/// The kind of a verification key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA public key of at least 2048 bits.
    Rsa,
    /// A P-256 public key.
    EcP256,
    /// A P-384 public key.
    EcP384,
    /// An Ed25519 public key.
    Ed25519,
    /// A shared HMAC secret.
    Hmac,
}

impl KeyKind {
    /// Whether a key of this kind can verify `algorithm`.
    pub fn suits(self, algorithm: Algorithm) -> bool {
        matches!(
            (self, algorithm),
            (
                KeyKind::Rsa,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (KeyKind::EcP256, Algorithm::ES256)
                | (KeyKind::EcP384, Algorithm::ES384)
                | (KeyKind::Ed25519, Algorithm::EdDSA)
                | (
                    KeyKind::Hmac,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                )
        )
    }
}

/// One verification key.
pub struct VerifyingKey {
    /// The key's id, when it has one.
    pub kid: Option<String>,
    /// What kind of key it is.
    pub kind: KeyKind,
    /// The one algorithm the key is meant for (the JWK's `alg`), when it says.
    pub algorithm: Option<Algorithm>,
    /// The key in jsonwebtoken's form.
    pub key: DecodingKey,
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `algorithm`.
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        self.kind.suits(algorithm) && self.algorithm.is_none_or(|only| only == algorithm)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The keys of one issuer at one time.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    by_kid: HashMap<String, usize>,
}

impl KeySet {
    /// A key set; of two keys with the same `kid` the first is kept (and the second reported
    /// in the returned list of skipped kids).
    pub fn new(keys: Vec<VerifyingKey>) -> (KeySet, Vec<String>) {
        let mut set = KeySet::default();
        let mut duplicates = Vec::new();
        for key in keys {
            if let Some(kid) = &key.kid {
                if set.by_kid.contains_key(kid) {
                    duplicates.push(kid.clone());
                    continue;
                }
                set.by_kid.insert(kid.clone(), set.keys.len());
            }
            set.keys.push(Arc::new(key));
        }
        (set, duplicates)
    }

    /// The key a token's `kid` selects: the key with that id, or, for a token without `kid`,
    /// the only key of a set that has just one.
    pub fn select(&self, kid: Option<&str>) -> Option<&Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).and_then(|&index| self.keys.get(index)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// How many keys the set has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
