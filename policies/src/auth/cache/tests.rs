#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn verified(sub: &str, expires_at: u64) -> VerifiedToken {
    VerifiedToken {
        claims: Arc::new(json!({ "sub": sub })),
        expires_at,
    }
}

#[test]
fn a_cached_token_is_served_until_exp_and_not_after() {
    let cache = TokenCache::new(8);
    cache.insert("tok", &verified("alice", 100));
    assert_eq!(cache.get("tok", 99).unwrap()["sub"], "alice");
    assert!(cache.get("other", 99).is_none());
    // No leeway: at exp the token is no longer served, and the entry is dropped.
    assert!(cache.get("tok", 100).is_none());
    assert_eq!(cache.len(), 0);
}

#[test]
fn the_cache_never_holds_more_than_its_capacity() {
    for capacity in [1, 2, 5, 10] {
        let cache = TokenCache::new(capacity);
        for i in 0..50 {
            cache.insert(&format!("t{i}"), &verified("x", 1000));
            assert!(
                cache.len() <= capacity,
                "capacity {capacity}: {}",
                cache.len()
            );
        }
        // The newest token is always there.
        assert!(cache.get("t49", 0).is_some());
    }
}

#[test]
fn the_oldest_half_goes_and_tokens_in_use_survive() {
    let cache = TokenCache::new(4);
    cache.insert("a", &verified("a", 1000));
    cache.insert("b", &verified("b", 1000));
    cache.insert("c", &verified("c", 1000)); // a, b become the previous generation
    assert!(cache.get("a", 0).is_some()); // used: moves back to the current one
    cache.insert("d", &verified("d", 1000)); // c, a become previous; b is dropped
    assert!(cache.get("b", 0).is_none());
    assert!(cache.get("a", 0).is_some());
    assert!(cache.get("d", 0).is_some());
    assert!(cache.len() <= 4);
}

#[test]
fn reinserting_a_token_does_not_grow_the_cache() {
    let cache = TokenCache::new(4);
    for _ in 0..10 {
        cache.insert("same", &verified("x", 1000));
    }
    assert_eq!(cache.len(), 1);
}

#[test]
fn capacity_zero_disables_caching() {
    let cache = TokenCache::new(0);
    cache.insert("tok", &verified("x", 1000));
    assert!(cache.get("tok", 0).is_none());
    assert!(cache.is_empty());
}

#[test]
fn shared_across_threads() {
    let cache = Arc::new(TokenCache::new(64));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let token = format!("{t}-{i}");
                    cache.insert(&token, &verified("x", 1000));
                    cache.get(&token, 0);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert!(cache.len() <= 64);
}

#[test]
fn the_last_token_answers_for_its_own_cache_and_token_until_exp() {
    let cache = TokenCache::new(2);
    let last = LastToken::default();
    cache.insert_on(Some(&last), "tok", &verified("alice", 100));
    // Evicted from the cache: only the connection's last token can answer now.
    cache.insert("b", &verified("b", 100));
    cache.insert("c", &verified("c", 100));
    assert!(cache.get("tok", 0).is_none());
    assert_eq!(
        cache.get_on(Some(&last), "tok", 99).unwrap()["sub"],
        "alice"
    );
    // Another token, even one that shares a prefix, goes to the cache.
    assert!(cache.get_on(Some(&last), "to", 0).is_none());
    assert!(cache.get_on(Some(&last), "tok2", 0).is_none());
    // No leeway at exp, as the cache.
    assert!(cache.get_on(Some(&last), "tok", 100).is_none());
    // A cache hit becomes the last token.
    assert_eq!(cache.get_on(Some(&last), "c", 0).unwrap()["sub"], "c");
    assert!(cache.get_on(Some(&last), "tok", 0).is_none());
}

#[test]
fn a_last_token_from_another_cache_does_not_answer() {
    let old = TokenCache::new(8);
    let last = LastToken::default();
    old.insert_on(Some(&last), "tok", &verified("alice", 100));
    assert!(old.get_on(Some(&last), "tok", 0).is_some());
    // A reloaded config has a cache of its own, with its own verdicts.
    let new = TokenCache::new(8);
    assert!(new.get_on(Some(&last), "tok", 0).is_none());
    new.insert_on(Some(&last), "tok", &verified("alice-again", 50));
    assert_eq!(
        new.get_on(Some(&last), "tok", 0).unwrap()["sub"],
        "alice-again"
    );
    assert!(
        old.get_on(Some(&last), "tok", 0).is_some(),
        "the old cache still has it"
    );
}

#[test]
fn capacity_zero_remembers_no_last_token() {
    let cache = TokenCache::new(0);
    let last = LastToken::default();
    cache.insert_on(Some(&last), "tok", &verified("x", 1000));
    assert!(cache.get_on(Some(&last), "tok", 0).is_none());
}
