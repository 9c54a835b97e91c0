#!/usr/bin/env bash
# Side-by-side load harness (issue 6): Propylon beside nginx and HAProxy, loopback only.
# Installs what is missing (nginx, haproxy, taskset, oha), builds the release binaries, then
# runs `load-bench` (free loopback ports, every process it starts is killed at the end).
#
#   bench/load.sh                                  # 5 rounds of every scenario, the medians
#   bench/load.sh --rounds 1 --duration 5          # a quick look
#   bench/load.sh --scenarios idle --rounds 1      # idle keep-alive connections only
#   bench/load.sh --help
#
# Results: bench/results/load.json (every run, medians, min-max, the machine) and
# bench/results/load.md (the markdown table, also printed). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    echo "load.sh: installing ${missing[*]}" >&2
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# Debian installs nginx and haproxy as services: the harness starts its own, so a
# system instance that apt may have started is left alone (it listens on other ports).
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
if ! command -v oha >/dev/null 2>&1; then
    echo "load.sh: installing oha (cargo install oha --locked)" >&2
    cargo install oha --locked
fi

cargo build --release -p propylon -p propylon-bench --bin propylon --bin load-bench
target_dir="${CARGO_TARGET_DIR:-target}"
export LOAD_BENCH_COMMAND="bench/load.sh $*"
exec "$target_dir/release/load-bench" --propylon "$target_dir/release/propylon" "$@"
