# Sourced by bench/load.sh and bench/pgo.sh: installs what the load harness runs when it is
# missing (nginx and HAProxy from apt-get, taskset, oha from crates.io, and CMake, which the
# gateway's own build needs) and puts their directories on PATH.

source scripts/lib.sh
ensure_cmake

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# Debian installs nginx and haproxy as services: the harness starts its own, so a
# system instance that apt may have started is left alone (it listens on other ports).
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
if ! command -v oha >/dev/null 2>&1; then
    echo "bench: installing oha (cargo install oha --locked)" >&2
    cargo install oha --locked
fi
