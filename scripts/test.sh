#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the end-to-end tests in tests/ (they start
# the real `propylon` binary on loopback ports) and doc tests, then rustfmt and clippy.
# CI runs this (see .ci/run).
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
# A one-off build gains nothing from incremental caches; they would double target/'s size.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
cargo test --workspace
# The code standards, where the toolchain has the tools (rustup's default profile does).
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
else
    echo "==> rustfmt not installed: formatting not checked"
fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets -- -D warnings
else
    echo "==> clippy not installed: lints not checked"
fi
