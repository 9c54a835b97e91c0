//! Verified tokens, so that a client reusing its token does not pay a signature check
//! (tens of microseconds for RS256) on every request.
//!
//! Eviction is by two generations: inserts go to `current`; when it holds half the capacity
//! it becomes `previous` and the old `previous` is dropped — the oldest half goes at once,
//! in O(1). A hit in `previous` moves the entry back to `current`, so tokens in use survive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::jwt::VerifiedToken;
use serde_json::Value;

#[cfg(test)]
mod tests;

/// Keyed by a cryptographic digest of the token: the cache holds no bearer secrets, and no
/// other token can be made to match a cached one. BLAKE3 rather than SHA-256: on a CPU
/// without SHA extensions, SHA-256 of a 700-byte RS256 token took 4.1 µs, ~8 % of a
/// chain request's CPU; BLAKE3 took 0.67 µs (bench/README.md, stop 18).
type TokenHash = [u8; 32];

#[derive(Clone)]
struct Entry {
    claims: Arc<Value>,
    expires_at: u64,
}

#[derive(Default)]
struct Generations {
    current: HashMap<TokenHash, Entry>,
    previous: HashMap<TokenHash, Entry>,
}

/// Thread-safe; hashing happens outside the lock, so the critical section is a map lookup.
pub struct TokenCache {
    capacity: usize,
    inner: Mutex<Generations>,
}

impl TokenCache {
    /// Holds at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            inner: Mutex::new(Generations::default()),
        }
    }

    /// The claims of a cached token, only while `now < exp` (no leeway: past `exp` the token
    /// is verified afresh). `nbf` was checked when the token was inserted.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Value>> {
        if self.capacity == 0 {
            return None;
        }
        let hash = hash(token);
        let mut inner = self.lock();
        if let Some(entry) = inner.current.get(&hash) {
            if now < entry.expires_at {
                return Some(entry.claims.clone());
            }
            inner.current.remove(&hash);
            return None;
        }
        let entry = inner.previous.remove(&hash)?;
        if now >= entry.expires_at {
            return None;
        }
        let claims = entry.claims.clone();
        self.put(&mut inner, hash, entry);
        Some(claims)
    }

    pub fn insert(&self, token: &str, verified: &VerifiedToken) {
        if self.capacity == 0 {
            return;
        }
        let hash = hash(token);
        let entry = Entry {
            claims: verified.claims.clone(),
            expires_at: verified.expires_at,
        };
        let mut inner = self.lock();
        inner.previous.remove(&hash);
        self.put(&mut inner, hash, entry);
    }

    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.current.len() + inner.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, inner: &mut Generations, hash: TokenHash, entry: Entry) {
        // Two generations of `capacity / 2` each never exceed `capacity`; with a capacity
        // of 1 there is no room for a previous generation.
        let generation = (self.capacity / 2).max(1);
        if !inner.current.contains_key(&hash) && inner.current.len() >= generation {
            let full = std::mem::take(&mut inner.current);
            inner.previous = if self.capacity >= 2 {
                full
            } else {
                HashMap::new()
            };
        }
        inner.current.insert(hash, entry);
    }

    /// A poisoned lock only means another thread panicked mid-update of a cache; the maps
    /// are still valid, so carry on rather than fail every request.
    fn lock(&self) -> MutexGuard<'_, Generations> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn hash(token: &str) -> TokenHash {
    *blake3::hash(token.as_bytes()).as_bytes()
}
