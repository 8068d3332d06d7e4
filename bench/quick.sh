#!/usr/bin/env bash
# Usage: bench/quick.sh [BUILD_DIR]  — a rough single-machine measurement (not the SPEC §11 harness):
# wrk against the mock upstream directly, then through llm-proxy (SQLite, IO_THREADS=1) with an unlimited token
# (cached: zero DB round trips) and with a quota token (one atomic UPDATE per request).
# Needs a built tree (scripts/build.sh; a Release/RelWithDebInfo build for meaningful numbers) and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
duration=${DURATION:-10s}
conns=${CONNECTIONS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$build/tests/support/mock-upstream" >"$work/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^PORT ' "$work/mock.log" && break; sleep 0.1; done
mock_port=$(awk '/^PORT /{print $2; exit}' "$work/mock.log")

cat >"$work/providers.yaml" <<EOT
default_api: openai
apis:
  openai:
    base_url: http://127.0.0.1:$mock_port
    allowed_endpoints: [/v1/chat/completions]
    allowed_methods: [POST]
EOT
MANAGEMENT_TOKEN=bench LISTEN_ADDR=127.0.0.1:0 IO_THREADS=${IO_THREADS:-1} LOG_LEVEL=warn \
  DATABASE_PATH="$work/db.sqlite" AUDIT_LOG_FILE="$work/audit.log" API_CONFIG_PATH="$work/providers.yaml" \
  "$build/apps/llm-proxy/llm-proxy" server >"$work/proxy.log" 2>&1 &
pids+=($!)
# LOG_LEVEL=warn hides the listening line, so find the port from the process's socket.
for _ in $(seq 100); do
  proxy_port=$(ss -ltnpH 2>/dev/null | awk -v pid="${pids[1]}" '$0 ~ "pid="pid"," {split($4,a,":"); print a[length(a)]; exit}')
  [ -n "${proxy_port:-}" ] && curl -sf "localhost:$proxy_port/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
manage() { curl -sf -H "Authorization: Bearer bench" -H "Content-Type: application/json" -d "$2" "localhost:$proxy_port$1"; }
project=$(manage /manage/projects '{"name":"bench","api_key":"sk-bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
unlimited=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60}" | sed 's/.*"token":"\([^"]*\)".*/\1/')
quota=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60,\"max_requests\":100000000}" | sed 's/.*"token":"\([^"]*\)".*/\1/')

run() {
  local name=$1 port=$2 token=$3
  TOKEN=$token wrk -t1 -c"$conns" -d"$duration" --latency -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions" >"$work/$name.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/{print $2}' "$work/$name.txt")
  p50=$(awk '$1=="50%"{print $2}' "$work/$name.txt")
  p99=$(awk '$1=="99%"{print $2}' "$work/$name.txt")
  errors=$(awk '/Non-2xx/{print $NF}' "$work/$name.txt")
  printf '%-28s %12s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
}
echo "wrk -t1 -c$conns -d$duration, POST /v1/chat/completions (JSON answer), $(nproc) cores"
run "direct (mock upstream)" "$mock_port" ""
run "llm-proxy unlimited token" "$proxy_port" "$unlimited"
run "llm-proxy quota token" "$proxy_port" "$quota"
