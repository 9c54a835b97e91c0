//! Quota counters: how many requests a key made in the current calendar window.
//!
//! Behind a trait so that a shared store (Redis, for several gateway nodes enforcing one
//! limit) can replace the in-memory one without touching the proxy.

use super::window::Window;
use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Atomic check-and-increment of a counter per (key, window).
pub trait QuotaCounters: Send + Sync {
    /// Counts one request against `key` in the window starting at `window_start`, unless
    /// that would exceed `limit`: a refused call does NOT count.
    fn try_consume(&self, key: &str, window_start: u64, limit: u64) -> QuotaOutcome;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOutcome {
    pub allowed: bool,
    /// Requests counted in the window, this one included when allowed.
    pub used: u64,
}

/// The counter key a `Limit` uses: `<window>:<limit name>:<consumer>`. The window comes first
/// so that a counter can be judged current from its key alone (see `import`), and it keeps a
/// day count from being read as a month count when an admin changes the window.
pub fn counter_key(window: Window, limit_name: &str, consumer: &str) -> String {
    let mut key = counter_key_prefix(window, limit_name);
    key.push_str(consumer);
    key
}

pub(crate) fn counter_key_prefix(window: Window, limit_name: &str) -> String {
    format!("{}:{limit_name}:", window.name())
}

/// The window a counter key names, if it was made by `counter_key`.
fn window_of_key(key: &str) -> Option<Window> {
    key.split_once(':').and_then(|(w, _)| Window::from_name(w))
}

/// Whether a counter still matters at `now_unix`. Keys of another format cannot be judged
/// and are kept.
fn is_current(key: &str, window_start: u64, now_unix: u64) -> bool {
    window_of_key(key).is_none_or(|w| w.bounds(now_unix).0 == window_start)
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    window_start: u64,
    used: u64,
}

/// Shards keep threads of different consumers off each other's lock.
const SHARDS: usize = 32;

/// The in-memory counters the embedded store wraps: one slot per key, holding the newest
/// window only (a newer window replaces an older one for the same key). `export`/`import`
/// let the gateway persist them, so that a restart does not reset a day's quota.
pub struct MemoryQuotaCounters {
    /// Hashed with foldhash (seeded per process, as `std`'s SipHash): two SipHash runs over
    /// the key were ~300 instructions of every limited request.
    shards: Box<[Mutex<HashMap<String, Slot, RandomState>>]>,
    hasher: RandomState,
    dirty: AtomicBool,
}

impl Default for MemoryQuotaCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryQuotaCounters {
    pub fn new() -> Self {
        MemoryQuotaCounters {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            dirty: AtomicBool::new(false),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Slot, RandomState>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding the lock cannot leave a slot half-written: keep counting.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every counter as `(key, window_start, used)`; clears `dirty_since_export`.
    pub fn export(&self) -> Vec<(String, u64, u64)> {
        // Cleared first: a request counted while exporting marks the store dirty again.
        self.dirty.store(false, Ordering::Release);
        let mut rows = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            rows.extend(map.iter().map(|(k, s)| (k.clone(), s.window_start, s.used)));
        }
        rows
    }

    /// Loads persisted counters, keeping only windows still current at `now_unix`. A row never
    /// replaces a newer window; for the same window the larger count wins (no double count when
    /// re-importing one's own export).
    pub fn import(&self, rows: impl IntoIterator<Item = (String, u64, u64)>, now_unix: u64) {
        for (key, window_start, used) in rows {
            if !is_current(&key, window_start, now_unix) {
                continue;
            }
            let mut map = self.shard(&key);
            let slot = map.entry(key).or_insert(Slot {
                window_start,
                used: 0,
            });
            if window_start > slot.window_start {
                *slot = Slot { window_start, used };
            } else if window_start == slot.window_start {
                slot.used = slot.used.max(used);
            }
        }
    }

    /// Drops counters whose window has ended; the gateway calls it periodically to keep memory
    /// bounded by the consumers active in the current windows.
    pub fn retain_current(&self, now_unix: u64) {
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = map.len();
            map.retain(|k, s| is_current(k, s.window_start, now_unix));
            if map.len() != before {
                map.shrink_to_fit();
                self.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Whether a counter changed since the last `export` (so persisting would write news).
    pub fn dirty_since_export(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn mark_dirty(&self) {
        // Read first: a store on every request would bounce the cache line between cores.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Release);
        }
    }
}

impl QuotaCounters for MemoryQuotaCounters {
    fn try_consume(&self, key: &str, window_start: u64, limit: u64) -> QuotaOutcome {
        let mut map = self.shard(key);
        let slot = match map.get_mut(key) {
            Some(slot) => slot,
            None if limit == 0 => {
                return QuotaOutcome {
                    allowed: false,
                    used: 0,
                }
            }
            None => map.entry(key.to_string()).or_insert(Slot {
                window_start,
                used: 0,
            }),
        };
        // A newer window starts from zero. An older one (a clock stepping back) counts against
        // the newer window already seen, so a past window can never be reopened.
        if window_start > slot.window_start {
            *slot = Slot {
                window_start,
                used: 0,
            };
        }
        if slot.used >= limit {
            return QuotaOutcome {
                allowed: false,
                used: slot.used,
            };
        }
        slot.used += 1;
        let used = slot.used;
        drop(map);
        self.mark_dirty();
        QuotaOutcome {
            allowed: true,
            used,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn lets_exactly_limit_through_and_refusals_do_not_count() {
        let c = MemoryQuotaCounters::new();
        for i in 1..=3 {
            assert_eq!(
                c.try_consume("k", 0, 3),
                QuotaOutcome {
                    allowed: true,
                    used: i
                }
            );
        }
        for _ in 0..5 {
            assert_eq!(
                c.try_consume("k", 0, 3),
                QuotaOutcome {
                    allowed: false,
                    used: 3
                }
            );
        }
        // Raising the limit (a config reload) lets the next one through: nothing was overcounted.
        assert_eq!(
            c.try_consume("k", 0, 4),
            QuotaOutcome {
                allowed: true,
                used: 4
            }
        );
    }

    #[test]
    fn a_newer_window_replaces_the_old_one() {
        let c = MemoryQuotaCounters::new();
        c.try_consume("k", 0, 1);
        assert!(!c.try_consume("k", 0, 1).allowed);
        assert_eq!(
            c.try_consume("k", DAY, 1),
            QuotaOutcome {
                allowed: true,
                used: 1
            }
        );
        // A late request stamped with the old window does not reopen it.
        assert!(!c.try_consume("k", 0, 1).allowed);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn export_import_roundtrip_keeps_current_windows_only() {
        let now = 10 * DAY + 5;
        let c = MemoryQuotaCounters::new();
        assert!(!c.dirty_since_export());
        let today = counter_key(Window::Day, "default", "alice");
        let yesterday = counter_key(Window::Day, "default", "bob");
        for _ in 0..7 {
            c.try_consume(&today, 10 * DAY, 100);
        }
        c.try_consume(&yesterday, 9 * DAY, 100);
        c.try_consume("other-format", 123, 100);
        assert!(c.dirty_since_export());
        let mut rows = c.export();
        rows.sort();
        assert!(!c.dirty_since_export());
        assert_eq!(rows.len(), 3);

        let restored = MemoryQuotaCounters::new();
        restored.import(rows, now);
        let mut back = restored.export();
        back.sort();
        assert_eq!(
            back,
            vec![
                ("day:default:alice".to_string(), 10 * DAY, 7),
                ("other-format".to_string(), 123, 1),
            ]
        );
        // The restored count goes on from 7, it does not restart.
        assert_eq!(restored.try_consume(&today, 10 * DAY, 100).used, 8);
        // Importing the same rows again does not double them.
        restored.import(vec![(today.clone(), 10 * DAY, 7)], now);
        assert_eq!(restored.try_consume(&today, 10 * DAY, 100).used, 9);
    }

    #[test]
    fn retain_current_drops_ended_windows() {
        let c = MemoryQuotaCounters::new();
        c.try_consume(&counter_key(Window::Minute, "op", "a"), 0, 10);
        c.try_consume(&counter_key(Window::Day, "op", "a"), 0, 10);
        c.export();
        c.retain_current(120);
        assert_eq!(c.len(), 1);
        assert!(c.dirty_since_export());
    }

    #[test]
    fn concurrent_consumers_never_exceed_the_limit() {
        let c = std::sync::Arc::new(MemoryQuotaCounters::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| c.try_consume("k", 0, 2500).allowed)
                        .count()
                })
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(allowed, 2500);
    }
}
