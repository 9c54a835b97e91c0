//! Benchmarks live here; see `bench/README.md`. The load harness comes with its own issue.
