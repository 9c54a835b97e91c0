//! Verified tokens, so that a client reusing its token does not pay a signature check
//! (tens of microseconds for RS256) on every request.
//!
//! Eviction is by two generations: inserts go to `current`; when it holds half the capacity
//! it becomes `previous` and the old `previous` is dropped — the oldest half goes at once,
//! in O(1). A hit in `previous` moves the entry back to `current`, so tokens in use survive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Unique per cache (never reused, unlike an address): a [`LastToken`] remembered from
    /// another cache (an earlier config) does not answer for this one.
    id: u64,
    capacity: usize,
    inner: Mutex<Generations>,
}

/// The bearer token a client connection presented last, with its claims. A client sends the
/// same token on every request of a keep-alive connection; comparing it with the last one
/// costs less than the cache's digest (BLAKE3 of a 700-byte token is ~4,500 instructions,
/// ~4 % of a mapped request's user-space work: bench/README.md, stop 21).
///
/// It answers only what the cache would: the same cache, the same token byte for byte, and
/// `now < exp`. It holds the connection's own token, which its read buffer held anyway, and
/// goes with the connection. The comparison's time reveals nothing another client sent.
/// The `Mutex` is never contended (one connection's requests run one after another); it is
/// there because the connection's future must be `Send`.
#[derive(Default)]
pub struct LastToken(Mutex<Option<Remembered>>);

struct Remembered {
    cache: u64,
    token: Box<str>,
    entry: Entry,
}

impl LastToken {
    fn claims(&self, cache: &TokenCache, token: &str, now: u64) -> Option<Arc<Value>> {
        let last = self.0.lock().ok()?;
        let last = last.as_ref()?;
        (last.cache == cache.id && now < last.entry.expires_at && *last.token == *token)
            .then(|| last.entry.claims.clone())
    }

    fn remember(&self, cache: &TokenCache, token: &str, entry: &Entry) {
        if let Ok(mut last) = self.0.lock() {
            match last.as_mut() {
                // The same token again (a cache hit after its `exp` moved on, say): keep the
                // text already held.
                Some(held) if *held.token == *token => {
                    held.cache = cache.id;
                    held.entry = entry.clone();
                }
                _ => {
                    *last = Some(Remembered {
                        cache: cache.id,
                        token: token.into(),
                        entry: entry.clone(),
                    })
                }
            }
        }
    }
}

impl TokenCache {
    /// Holds at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        TokenCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            capacity,
            inner: Mutex::new(Generations::default()),
        }
    }

    /// The claims of a cached token, only while `now < exp` (no leeway: past `exp` the token
    /// is verified afresh). `nbf` was checked when the token was inserted.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Value>> {
        self.get_on(None, token, now)
    }

    /// [`TokenCache::get`], asking the connection's `last` token (if any) first and
    /// remembering the answer there.
    pub fn get_on(&self, last: Option<&LastToken>, token: &str, now: u64) -> Option<Arc<Value>> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(claims) = last.and_then(|last| last.claims(self, token, now)) {
            return Some(claims);
        }
        let entry = self.entry(token, now)?;
        if let Some(last) = last {
            last.remember(self, token, &entry);
        }
        Some(entry.claims)
    }

    fn entry(&self, token: &str, now: u64) -> Option<Entry> {
        let hash = hash(token);
        let mut inner = self.lock();
        if let Some(entry) = inner.current.get(&hash) {
            if now < entry.expires_at {
                return Some(entry.clone());
            }
            inner.current.remove(&hash);
            return None;
        }
        let entry = inner.previous.remove(&hash)?;
        if now >= entry.expires_at {
            return None;
        }
        self.put(&mut inner, hash, entry.clone());
        Some(entry)
    }

    pub fn insert(&self, token: &str, verified: &VerifiedToken) {
        self.insert_on(None, token, verified);
    }

    /// [`TokenCache::insert`], and the connection's `last` token (if any) is this one.
    pub fn insert_on(&self, last: Option<&LastToken>, token: &str, verified: &VerifiedToken) {
        if self.capacity == 0 {
            return;
        }
        let hash = hash(token);
        let entry = Entry {
            claims: verified.claims.clone(),
            expires_at: verified.expires_at,
        };
        if let Some(last) = last {
            last.remember(self, token, &entry);
        }
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
