#!/usr/bin/env bash
# Usage: bench/quick.sh [BUILD_DIR [BASELINE_BUILD_DIR]]  — a rough single-machine measurement (not yet the full
# SPEC §11 harness), everything in one run so the rows compare:
#   nginx proxy_pass (1 worker, keep-alive upstream) to the mock upstream: the floor every ratio is against;
#   the mock upstream directly;
#   llm-proxy (SQLite, IO_THREADS=1) with an unlimited token (cached: zero DB round trips) and a quota token
#   (one atomic UPDATE per request) — for BUILD_DIR and, when given, BASELINE_BUILD_DIR (e.g. an older commit).
# Needs built trees (scripts/build.sh; RelWithDebInfo or Release for meaningful numbers), wrk and nginx
# (scripts/setup.sh installs both). Env: DURATION (10s), CONNECTIONS (32), IO_THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
baseline=${2:-}
duration=${DURATION:-10s}
conns=${CONNECTIONS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of_pid() { ss -ltnpH 2>/dev/null | awk -v pid="$1" '$0 ~ "pid="pid"," {split($4,a,":"); print a[length(a)]; exit}'; }

"$build/tests/support/mock-upstream" >"$work/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^PORT ' "$work/mock.log" && break; sleep 0.1; done
mock_port=$(awk '/^PORT /{print $2; exit}' "$work/mock.log")

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOT
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-bench";
    }
  }
}
EOT
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>>"$work/nginx/error.log" &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "localhost:$nginx_port/" && break; sleep 0.1; done

cat >"$work/providers.yaml" <<EOT
default_api: openai
apis:
  openai:
    base_url: http://127.0.0.1:$mock_port
    allowed_endpoints: [/v1/chat/completions]
    allowed_methods: [POST]
    connection:
      max_idle_conns: 1024
      max_idle_conns_per_host: 1024
EOT

# Starts the llm-proxy of build dir $2 under the name $1 and sets PROXY_PORT, UNLIMITED and QUOTA.
start_proxy() {
  local name=$1 dir=$2
  mkdir -p "$work/$name"
  MANAGEMENT_TOKEN=bench-management-token-0123456789abcdef LISTEN_ADDR=127.0.0.1:0 IO_THREADS=${IO_THREADS:-1} LOG_LEVEL=warn \
    DATABASE_PATH="$work/$name/db.sqlite" AUDIT_LOG_FILE="$work/$name/audit.log" API_CONFIG_PATH="$work/providers.yaml" \
    "$dir/apps/llm-proxy/llm-proxy" server >"$work/$name/proxy.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  # LOG_LEVEL=warn hides the listening line, so find the port from the process's socket.
  PROXY_PORT=
  for _ in $(seq 100); do
    PROXY_PORT=$(port_of_pid "$pid")
    [ -n "$PROXY_PORT" ] && curl -sf "localhost:$PROXY_PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  manage() { curl -sf -H "Authorization: Bearer bench-management-token-0123456789abcdef" -H "Content-Type: application/json" -d "$2" "localhost:$PROXY_PORT$1"; }
  local project
  project=$(manage /manage/projects '{"name":"bench","api_key":"sk-bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  UNLIMITED=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60}" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  QUOTA=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60,\"max_requests\":100000000}" |
    sed 's/.*"token":"\([^"]*\)".*/\1/')
}

to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }
nginx_rps=
nginx_p99=
run() {
  local name=$1 port=$2 token=$3
  TOKEN=$token wrk -t1 -c"$conns" -d"$duration" --latency -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions" >"$work/row.txt"
  local rps p50 p99 errors ratio="" p99_ratio=""
  rps=$(awk '/Requests\/sec/{print $2}' "$work/row.txt")
  p50=$(awk '$1=="50%"{print $2}' "$work/row.txt")
  p99=$(awk '$1=="99%"{print $2}' "$work/row.txt")
  errors=$(awk '/Non-2xx/{print $NF}' "$work/row.txt")
  if [ -z "$nginx_rps" ]; then
    nginx_rps=$rps
    nginx_p99=$(to_ms "$p99")
  fi
  ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { printf "%.2fx", a / b }')
  p99_ratio=$(awk -v a="$(to_ms "$p99")" -v b="$nginx_p99" 'BEGIN { printf "%.2fx", a / b }')
  printf '| %-34s | %9s | %5s | %-8s | %-8s | %5s | %s |\n' "$name" "$rps" "$ratio" "$p50" "$p99" "$p99_ratio" "${errors:-0}"
}

echo "wrk -t1 -c$conns -d$duration, POST /v1/chat/completions (JSON answer), $(nproc) cores, IO_THREADS=${IO_THREADS:-1}"
echo "| target | req/s | x nginx | p50 | p99 | p99 x nginx | non-2xx |"
echo "|---|---|---|---|---|---|---|"
run "nginx proxy_pass (1 worker)" "$nginx_port" ""
run "mock upstream directly" "$mock_port" ""
start_proxy current "$build"
run "llm-proxy ($build) unlimited token" "$PROXY_PORT" "$UNLIMITED"
run "llm-proxy ($build) quota token" "$PROXY_PORT" "$QUOTA"
if [ -n "$baseline" ]; then
  start_proxy baseline "$baseline"
  run "llm-proxy ($baseline) unlimited token" "$PROXY_PORT" "$UNLIMITED"
  run "llm-proxy ($baseline) quota token" "$PROXY_PORT" "$QUOTA"
fi
