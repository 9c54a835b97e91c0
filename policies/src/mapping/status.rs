//! `response.status`: the backend's status codes translated for the facade.

use super::error::MappingError;
use std::collections::BTreeMap;

/// A status translation table, e.g. `{404: 404, 500: 502}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusMap {
    /// Sorted by backend status, for a binary search.
    pairs: Vec<(u16, u16)>,
}

impl StatusMap {
    /// Checks that every code, on either side, is an HTTP status (100 to 599). The error's
    /// pointer names the offending entry (`/700`).
    pub fn compile(map: &BTreeMap<u16, u16>) -> Result<StatusMap, MappingError> {
        let valid = 100..=599;
        for (from, to) in map {
            let bad = [from, to].into_iter().find(|c| !valid.contains(*c));
            if let Some(code) = bad {
                return Err(MappingError::new(
                    &format!("/{from}"),
                    format!("{code} is not an HTTP status; use codes from 100 to 599"),
                ));
            }
        }
        Ok(StatusMap {
            pairs: map.iter().map(|(f, t)| (*f, *t)).collect(),
        })
    }

    /// The facade's status for the backend's `status`; unmapped codes pass through.
    pub fn map(&self, status: u16) -> u16 {
        match self.pairs.binary_search_by_key(&status, |(from, _)| *from) {
            Ok(i) => self.pairs[i].1,
            Err(_) => status,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_listed_codes_and_passes_the_rest() {
        let m = StatusMap::compile(&BTreeMap::from([(404, 404), (500, 502), (201, 200)])).unwrap();
        assert_eq!(m.map(500), 502);
        assert_eq!(m.map(201), 200);
        assert_eq!(m.map(404), 404);
        assert_eq!(m.map(503), 503);
        assert_eq!(StatusMap::default().map(418), 418);
    }

    #[test]
    fn rejects_codes_outside_http() {
        let e = StatusMap::compile(&BTreeMap::from([(404, 404), (700, 500)])).unwrap_err();
        assert_eq!(e.pointer, "/700");
        assert!(e.message.contains("700 is not an HTTP status"));
        let e = StatusMap::compile(&BTreeMap::from([(500, 99)])).unwrap_err();
        assert_eq!(e.pointer, "/500");
        assert!(e.message.contains("99"));
    }
}
