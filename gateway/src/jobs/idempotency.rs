//! Keys whose first request is still being handled, so that a concurrent repeat gets a 409
//! instead of a second delivery (IETF Idempotency-Key draft).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct KeysInProgress {
    keys: Arc<Mutex<HashSet<(String, String)>>>,
}

/// Held while the request is handled; the key is free again when it drops.
pub struct InProgress {
    keys: Arc<Mutex<HashSet<(String, String)>>>,
    entry: (String, String),
}

impl KeysInProgress {
    /// `None` when the same consumer's key is already being handled.
    pub fn begin(&self, consumer: &str, key: &str) -> Option<InProgress> {
        let entry = (consumer.to_string(), key.to_string());
        let mut keys = self.keys.lock().ok()?;
        keys.insert(entry.clone()).then(|| InProgress {
            keys: self.keys.clone(),
            entry,
        })
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&self.entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_busy_until_its_guard_drops() {
        let keys = KeysInProgress::default();
        let first = keys.begin("erp", "k1");
        assert!(first.is_some());
        assert!(keys.begin("erp", "k1").is_none());
        assert!(keys.begin("crm", "k1").is_some(), "keys are per consumer");
        drop(first);
        assert!(keys.begin("erp", "k1").is_some());
    }
}
