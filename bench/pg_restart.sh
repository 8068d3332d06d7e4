#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh bench/pg_restart.sh [BUILD_DIR]
# Pool behaviour when PostgreSQL restarts under load: llm-proxy on the throwaway cluster, wrk sending requests
# with a quota token (one DB write each), `pg_ctl restart` in the middle. Prints the status counts from /metrics
# and checks that the token's request_count equals the number of requests that succeeded (no lost or double counts).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
: "${TEST_DATABASE_URL:?run through scripts/with-postgres.sh}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
as_pg() { if [ -n "${TEST_PG_RUNAS:-}" ]; then runuser -u "$TEST_PG_RUNAS" -- "$@"; else "$@"; fi; }

"$build/tests/support/mock-upstream" >"$work/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^PORT ' "$work/mock.log" && break; sleep 0.1; done
mock_port=$(awk '/^PORT /{print $2; exit}' "$work/mock.log")
printf 'apis:\n  openai:\n    base_url: http://127.0.0.1:%s\n' "$mock_port" >"$work/providers.yaml"

port=$(( 20000 + RANDOM % 20000 ))
MANAGEMENT_TOKEN=bench-management-token-0123456789abcdef LISTEN_ADDR=127.0.0.1:$port IO_THREADS=2 LOG_LEVEL=warn DB_DRIVER=postgres \
  DATABASE_URL="$TEST_DATABASE_URL" DATABASE_POOL_SIZE=10 DATABASE_CONNECT_TIMEOUT=1s \
  AUDIT_LOG_FILE="$work/audit.log" API_CONFIG_PATH="$work/providers.yaml" \
  "$build/apps/llm-proxy/llm-proxy" server >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "localhost:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
manage() { curl -sf -H "Authorization: Bearer bench-management-token-0123456789abcdef" -H "Content-Type: application/json" -d "$2" "localhost:$port$1"; }
project=$(manage /manage/projects '{"name":"restart","api_key":"sk-x"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
created=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60,\"max_requests\":100000000}")
token=$(echo "$created" | sed 's/.*"token":"\([^"]*\)".*/\1/')
token_id=$(echo "$created" | sed 's/.*"id":"\([^"]*\)".*/\1/')

TOKEN=$token wrk -t2 -c16 -d${DURATION:-12s} --latency -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions" \
  >"$work/wrk.txt" &
wrk_pid=$!
sleep 4
restart_start=$(date +%s.%N)
as_pg "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DATA" -m fast -w restart >/dev/null
restart_end=$(date +%s.%N)
ready_again=""
for _ in $(seq 200); do
  if curl -sf "localhost:$port/ready" >/dev/null 2>&1; then ready_again=$(date +%s.%N); break; fi
  sleep 0.05
done
wait "$wrk_pid"
echo "pg_ctl restart took $(echo "$restart_end - $restart_start" | bc) s; /ready 200 again $(echo "$ready_again - $restart_end" | bc) s after it returned"
grep -E "Requests/sec|Non-2xx|Socket errors|99%" "$work/wrk.txt"
curl -s "localhost:$port/metrics" | grep -E '^llm_proxy_requests_total\{route="proxy"|^llm_proxy_db_errors_total|^llm_proxy_db_pool_(open|failures_total)'
ok=$(curl -s "localhost:$port/metrics" | awk -F' ' '/^llm_proxy_requests_total\{route="proxy",status="200"\}/{print $2}')
counted=$(psql "$TEST_DATABASE_URL" -qAtc "SELECT request_count FROM tokens WHERE id = '$token_id'")
echo "requests answered 200: $ok; request_count in the database: $counted"
[ "$ok" = "$counted" ] && echo "quota accounting exact across the restart" || { echo "MISMATCH"; exit 1; }
