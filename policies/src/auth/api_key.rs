//! API keys. The config holds only SHA-256 digests; a presented key is hashed once and
//! compared with every digest in constant time, so neither the timing nor a map lookup
//! reveals how close a guess came.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::keys::KeyError;

#[cfg(test)]
mod tests;

struct Entry {
    consumer: String,
    digest: [u8; 32],
}

/// No keys by default: nobody is identified.
#[derive(Default)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.consumer))
            .finish()
    }
}

impl ApiKeys {
    /// `(consumer, hex SHA-256 of the key)` pairs. Refuses anything but 64 hex digits and
    /// a digest listed twice (two consumers could not be told apart).
    pub fn new(entries: &[(String, String)]) -> Result<ApiKeys, KeyError> {
        let mut parsed: Vec<Entry> = Vec::with_capacity(entries.len());
        for (consumer, hex) in entries {
            let fail = |message: &str| KeyError::InvalidApiKey {
                consumer: consumer.clone(),
                message: message.to_owned(),
            };
            if consumer.is_empty() {
                return Err(fail("the consumer name is empty"));
            }
            let digest = parse_digest(hex).ok_or_else(|| {
                fail("`key_sha256` must be 64 hex digits: the SHA-256 of the key, never the key itself")
            })?;
            if parsed.iter().any(|e| e.digest == digest) {
                return Err(fail("the same key digest is listed twice"));
            }
            parsed.push(Entry {
                consumer: consumer.clone(),
                digest,
            });
        }
        Ok(ApiKeys { entries: parsed })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The consumer whose key this is. Every digest is compared, with no early exit.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = u64::MAX;
        for (index, entry) in self.entries.iter().enumerate() {
            let hit = entry.digest.ct_eq(&digest);
            found = u64::conditional_select(&found, &(index as u64), hit);
        }
        // Only the yes/no answer leaks, which the response reveals anyway.
        usize::try_from(found)
            .ok()
            .and_then(|index| self.entries.get(index))
            .map(|entry| entry.consumer.as_str())
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
