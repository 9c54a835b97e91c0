#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the end-to-end tests in tests/ (they start
# the real `propylon` binary on loopback ports) and doc tests. CI runs this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

start=$SECONDS
report() {
    local status=$?
    local verdict="passed"
    [ "$status" -eq 0 ] || verdict="FAILED (exit $status)"
    echo "==> tests $verdict in $((SECONDS - start))s"
}
trap report EXIT

ensure_cmake
cargo test --workspace
