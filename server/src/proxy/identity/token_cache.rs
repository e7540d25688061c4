//! A bounded cache of verified tokens, so that a token seen again skips its signature check.
//!
//! Entries are keyed by the SHA-256 of the token (the token itself is not kept) and hold the
//! identity it established, the issuer, the generation of the issuer's key set it was verified
//! with, and its `exp`. An entry is used only before `exp` and only while the issuer's keys are
//! still usable and of the same generation: a rotated or stale key set sends every token back
//! through full verification. When the cache is full, expired entries are dropped first and then
//! an arbitrary eighth of the rest (the hasher's random order), so that the cost of a full cache
//! stays bounded and no request waits on a scan of more than the cache's size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Identity;

/// One verified token.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// What the token established.
    pub identity: Arc<Identity>,
    /// The index of the issuer that verified it.
    pub issuer: usize,
    /// The generation of the issuer's key set at verification.
    pub generation: u64,
    /// The token's `exp`, in seconds since the Unix epoch; the entry is not used from then on.
    pub expires_at: u64,
}

/// The cache.
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], CachedToken>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], CachedToken>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The entry for a token digest, if it has not expired at `now` (seconds since the epoch).
    pub fn get(&self, digest: &[u8; 32], now: u64) -> Option<CachedToken> {
        let mut entries = self.lock();
        match entries.get(digest) {
            Some(entry) if now < entry.expires_at => Some(entry.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Forgets a token (its issuer's keys changed since it was verified).
    pub fn remove(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
    }

    /// Keeps a verified token, making room when the cache is full.
    pub fn insert(&self, digest: [u8; 32], entry: CachedToken, now: u64) {
        if self.capacity == 0 || now >= entry.expires_at {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, cached| now < cached.expires_at);
            if entries.len() >= self.capacity {
                let excess = entries.len() + 1 - self.capacity;
                let drop = excess.max(self.capacity / 8);
                let victims: Vec<[u8; 32]> = entries.keys().take(drop).copied().collect();
                for victim in victims {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(digest, entry);
    }

    #[cfg(test)]
    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
