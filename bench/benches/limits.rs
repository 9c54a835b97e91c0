//! Limit cost per request: one `Limit` with a rate and a day quota, 1000 consumers taking
//! turns, counters in memory (the embedded store's hot path). Target: under 1 µs.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use propylon_policies::limits::{Limit, LimitSpec, MemoryQuotaCounters};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    // Generous enough that the steady state is the allowed path, headers included.
    let spec =
        LimitSpec::parse(Some("1000000/s"), Some(1_000_000), Some("1000000000/day")).unwrap();
    let limit = Limit::new("default", &spec);
    let counters = MemoryQuotaCounters::new();
    let keys: Vec<String> = (0..1000).map(|i| format!("consumer-{i:04}")).collect();
    let now = 1_716_200_000;
    let mut i = 0;
    c.bench_function("limits/rate_and_quota_check", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(limit.check(black_box(&keys[i]), &counters, now))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
