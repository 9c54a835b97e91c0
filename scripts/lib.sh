# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.

# Pingora's build needs CMake (for its zlib/compression dependencies). Installs it with
# apt-get when it is missing, as root or through sudo.
ensure_cmake() {
    if command -v cmake >/dev/null 2>&1; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: cmake is needed to build Propylon; install it (e.g. apt-get install cmake) and retry" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: cmake is needed to build Propylon, and apt-get is not available here; install cmake with your package manager and retry" >&2
        return 1
    fi
    echo "==> installing cmake (needed to build Pingora)"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -q cmake; then
        "${sudo[@]}" apt-get update -q
        "${sudo[@]}" apt-get install -y -q cmake
    fi
}
