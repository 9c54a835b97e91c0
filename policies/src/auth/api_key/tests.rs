#![allow(clippy::unwrap_used)]

use super::*;

// SHA-256 of "key-for-erp" and of "key-for-crm" (`printf %s key-for-erp | sha256sum`).
const ERP_DIGEST: &str = "99b4d1ab75cdb94b3d01ff907751c0bd6f03d609d1a6c8e5790dec694301ed58";
const CRM_DIGEST: &str = "d789b522bbb044fd56062857daccb08c97084b6abb35b028fdbef68ffcbe7fde";

fn keys() -> ApiKeys {
    ApiKeys::new(&[
        ("erp-batch".to_owned(), ERP_DIGEST.to_owned()),
        ("crm".to_owned(), CRM_DIGEST.to_uppercase()),
    ])
    .unwrap()
}

#[test]
fn identifies_the_consumer_of_a_known_key() {
    let keys = keys();
    assert_eq!(keys.identify("key-for-erp"), Some("erp-batch"));
    assert_eq!(keys.identify("key-for-crm"), Some("crm"));
}

#[test]
fn unknown_keys_and_near_misses_are_refused() {
    let keys = keys();
    assert_eq!(keys.identify("key-for-erq"), None);
    assert_eq!(keys.identify(""), None);
    // The digest itself is not a key: the config holds nothing a client could present.
    assert_eq!(keys.identify(ERP_DIGEST), None);
}

#[test]
fn only_digests_are_accepted_in_the_config() {
    // A plain key where the digest belongs is refused, not silently hashed.
    let plain = ApiKeys::new(&[("erp".to_owned(), "key-for-erp".to_owned())]);
    assert!(matches!(plain, Err(KeyError::InvalidApiKey { .. })));
    let not_hex = ApiKeys::new(&[("erp".to_owned(), "z".repeat(64))]);
    assert!(not_hex.is_err());
    let twice = ApiKeys::new(&[
        ("a".to_owned(), ERP_DIGEST.to_owned()),
        ("b".to_owned(), ERP_DIGEST.to_owned()),
    ]);
    assert!(twice.unwrap_err().to_string().contains("twice"));
    assert!(ApiKeys::new(&[(String::new(), ERP_DIGEST.to_owned())]).is_err());
}

#[test]
fn debug_output_shows_consumers_only() {
    let shown = format!("{:?}", keys());
    assert!(shown.contains("erp-batch"));
    assert!(!shown.to_lowercase().contains(&ERP_DIGEST[..16]));
}

#[test]
fn an_empty_list_identifies_nobody() {
    let keys = ApiKeys::new(&[]).unwrap();
    assert!(keys.is_empty());
    assert_eq!(keys.identify("anything"), None);
}
