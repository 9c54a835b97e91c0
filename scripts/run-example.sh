#!/usr/bin/env bash
# Builds Propylon and the demo backends, then runs the bundled example
# (examples/propylon.yaml) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_cmake
cargo build --release -p propylon -p propylon-demo

backends_pid=""
gateway_pid=""
stop() {
    local pid=$1
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    stop "$gateway_pid"
    stop "$backends_pid"
}
# Pass Ctrl-C and `kill` on to the gateway (it shuts down itself); the EXIT trap then
# stops the demo backends.
forward() {
    if [ -n "$gateway_pid" ]; then
        kill -s "$1" "$gateway_pid" 2>/dev/null || true
    else
        exit 130
    fi
}
trap cleanup EXIT
# A background job of a script ignores SIGINT, so Ctrl-C reaches the gateway as SIGTERM
# (Pingora's graceful stop).
trap 'forward TERM' INT
trap 'forward TERM' TERM

target/release/demo-backends &
backends_pid=$!
sleep 0.5
if ! kill -0 "$backends_pid" 2>/dev/null; then
    echo "error: demo-backends did not start (is something else on ports 8081, 8082 or 8089?)" >&2
    exit 1
fi

token="${PROPYLON_ADMIN_TOKEN:-demo-admin-token}"
cat <<BANNER

==> Propylon example
    facade API     http://127.0.0.1:8080        (spec: http://127.0.0.1:8080/openapi.json)
    admin API      http://127.0.0.1:9090        (bearer token: \$PROPYLON_ADMIN_TOKEN, default demo-admin-token)
    legacy CRM     http://127.0.0.1:8081        ERP http://127.0.0.1:8082
    ERP switch     http://127.0.0.1:8089/erp    (POST /erp/offline, POST /erp/online)

    try:
      curl -s localhost:8080/customers/1
      curl -s 'localhost:8080/customers?name=ada'
      curl -s -X POST localhost:8080/orders -H 'Content-Type: application/json' \\
           -d '{"customer":"1","items":[{"sku":"BOLT-M8","qty":100}]}'
      curl -s -X POST localhost:8089/erp/offline    # then POST /orders again: 202 + a durable job
      curl -s -H "Authorization: Bearer $token" localhost:9090/admin/config

    stop with Ctrl-C

BANNER

# Not exec, and in the background: this script stays to forward signals and, once the
# gateway has stopped, to stop the demo backends.
target/release/propylon run --config examples/propylon.yaml &
gateway_pid=$!
set +e
while :; do
    wait "$gateway_pid"
    status=$?
    # `wait` also returns when a trapped signal arrives; go on until the gateway is gone.
    kill -0 "$gateway_pid" 2>/dev/null || break
done
set -e
exit "$status"
