#!/usr/bin/env bash
# Durable jobs benchmark (issue 5): jobs accepted per second with the backend down, and the
# replay drain rate to a fast backend. Builds the release binaries, then runs `jobs-bench`
# (loopback only, free ports, the gateway is killed at the end of each run).
#
#   bench/jobs.sh                                   # 3 runs of each scenario, the median
#   bench/jobs.sh --runs 1 --duration 3 --scenarios fallback   # a quick look
#   bench/jobs.sh --help
#
# The report is printed and written to bench/results/jobs.json (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cmake  # Pingora's build needs it; a fresh machine may not have it
cargo build --release -p propylon -p propylon-bench
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/jobs-bench" --propylon "$target_dir/release/propylon" "$@"
