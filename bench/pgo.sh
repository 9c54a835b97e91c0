#!/usr/bin/env bash
# Builds `propylon` with profile-guided optimisation (PGO): an instrumented build runs the
# load harness's Propylon scenarios (pass-through, full chain, async fallback: one short round,
# loopback only), its profile is merged with the toolchain's own llvm-profdata, and the
# release build is made again from that profile. Prints the binary's path on its last line.
#
#   bench/pgo.sh                  # -> target/pgo/release/propylon
#
# Installs what it needs: the `llvm-tools` rustup component (llvm-profdata matching rustc's
# LLVM) and, through bench/tools.sh, nginx, taskset and oha for the training run. Training
# is skipped when the instrumented binary is unchanged since the last profile (the profile
# is named after the binary's hash), so a second run with the same code builds nothing.
# See bench/README.md ("Profile-guided build") for what it buys and how to train on your
# own traffic instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/tools.sh

target_dir="${CARGO_TARGET_DIR:-target}"
train_dir="$target_dir/pgo-train"
use_dir="$target_dir/pgo"

host="$(rustc -vV | sed -n 's/^host: //p')"
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    echo "pgo.sh: installing the llvm-tools component (rustup component add llvm-tools)" >&2
    if ! rustup component add llvm-tools || [ ! -x "$profdata" ]; then
        echo "pgo.sh: no llvm-profdata for this rustc at $profdata; a toolchain without" \
            "rustup needs its own LLVM's llvm-profdata there (bench/load.sh --no-pgo" \
            "measures the plain build only)" >&2
        exit 1
    fi
fi

# The instrumented gateway, in its own target dir (other flags: its own build cache).
# rustc and llvm-profdata take absolute paths; CARGO_TARGET_DIR may be either.
mkdir -p "$train_dir"
train_abs="$(cd "$train_dir" && pwd)"
raw_dir="$train_abs/profraw"
CARGO_TARGET_DIR="$train_dir" RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$raw_dir" \
    cargo build --release -p propylon --bin propylon
# The same command as bench/load.sh's: another set of packages would unify features
# differently and rebuild part of target/release.
cargo build --release -p propylon -p propylon-bench --bin propylon --bin load-bench

hash="$(sha256sum "$train_dir/release/propylon" | cut -c1-16)"
profile="$train_abs/propylon-$hash.profdata"
if [ ! -f "$profile" ]; then
    rm -rf "$raw_dir"
    mkdir -p "$raw_dir"
    echo "pgo.sh: training on the load harness's Propylon scenarios (~1 min)" >&2
    # The harness stops each gateway with SIGINT: it exits, writing its profile.
    LOAD_BENCH_COMMAND="bench/pgo.sh (training run)" "$target_dir/release/load-bench" \
        --propylon "$train_dir/release/propylon" \
        --scenarios propylon,propylon-chain,propylon-async \
        --rounds 1 --warmup 1 --duration 5 \
        --out "$train_dir/training.json" >&2
    if ! ls "$raw_dir"/*.profraw >/dev/null 2>&1; then
        echo "pgo.sh: the training run left no profile in $raw_dir" >&2
        exit 1
    fi
    rm -f "$train_dir"/propylon-*.profdata
    "$profdata" merge -o "$profile" "$raw_dir"/*.profraw
fi

CARGO_TARGET_DIR="$use_dir" RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile" \
    cargo build --release -p propylon --bin propylon
echo "$use_dir/release/propylon"
