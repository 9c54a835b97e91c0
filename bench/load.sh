#!/usr/bin/env bash
# Side-by-side load harness (issue 6): Propylon beside nginx and HAProxy, loopback only.
# Installs what is missing (nginx, haproxy, taskset, oha: bench/tools.sh), builds the release
# binaries — `propylon` twice: plain, and profile-guided by bench/pgo.sh — then runs
# `load-bench` (free loopback ports, every process it starts is killed at the end). The
# `propylon*` scenarios run the profile-guided build, `propylon*-plain` the plain one.
#
#   bench/load.sh                                  # 5 rounds of every scenario, the medians
#   bench/load.sh --rounds 1 --duration 5          # a quick look
#   bench/load.sh --scenarios idle --rounds 1      # idle keep-alive connections only
#   bench/load.sh --no-pgo ...                     # the plain build only (no PGO builds)
#   bench/load.sh --help
#
# Results: bench/results/load.json (every run, medians, min-max, the machine) and
# bench/results/load.md (the markdown table, also printed). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/tools.sh

pgo=1
args=()
for arg in "$@"; do
    case "$arg" in
        --no-pgo) pgo=0 ;;
        --help | -h) pgo=0; args+=("$arg") ;;  # no profile-guided build just for the usage
        *) args+=("$arg") ;;
    esac
done

cargo build --release -p propylon -p propylon-bench --bin propylon --bin load-bench
target_dir="${CARGO_TARGET_DIR:-target}"
plain="$target_dir/release/propylon"
export LOAD_BENCH_COMMAND="bench/load.sh $*"
if [ "$pgo" = 1 ]; then
    guided="$(bench/pgo.sh | tail -n 1)"
    exec "$target_dir/release/load-bench" --propylon "$guided" --propylon-plain "$plain" \
        ${args[@]+"${args[@]}"}
fi
exec "$target_dir/release/load-bench" --propylon "$plain" ${args[@]+"${args[@]}"}
