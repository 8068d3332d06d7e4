#!/usr/bin/env bash
# Usage: bench/cpu_split.sh [BUILD_DIR]  — where a proxied request's CPU time goes, nginx and llm-proxy side by
# side: microseconds of CPU per request in user space, in system calls and in softirq (the loopback network
# stack), on the proxy's CPU, and TCP segments per request (in + out: over loopback each segment counts twice, so
# 8 is the minimum for a proxied exchange: request and answer, on both connections).
#
# Placed like bench/run.sh's main row: the proxy under test (nginx with 1 worker, or llm-proxy with IO_THREADS=1,
# SQLite, an unlimited token) alone on CPU 0; the mock upstream (nginx answering a canned completion) and
# wrk -t1 -c32 on CPU 1. The proxy saturates CPU 0, so its time per request is what CPU 0 spent (from
# /proc/stat) divided by the requests served; the counts cover the middle of each run (after WARMUP, for
# DURATION). Read it with bench/run.sh's ratios: a throughput gap to nginx shows up here as the extra
# microseconds, and says which side (user space or the kernel) they are on.
#
# BUILD_DIR: a built tree (default build-bench; bench/run.sh builds it). Env: LOG_LEVEL (warn), ROUNDS (2),
# DURATION (5, seconds counted), WARMUP (2). Needs nginx, wrk, python3, taskset, curl, ss and two CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
rounds=${ROUNDS:-2}
duration=${DURATION:-5}
warmup=${WARMUP:-2}
binary=$build/apps/llm-proxy/llm-proxy
[ -x "$binary" ] || { echo "cpu_split: no $binary (build it: bench/run.sh, or cmake --build $build --target llm-proxy)" >&2; exit 2; }
read -r cpu0 cpu1 < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[0], c[1] if len(c) > 1 else "")')
[ -n "$cpu1" ] || { echo "cpu_split: needs two CPUs" >&2; exit 2; }
hz=$(getconf CLK_TCK)
# perf (linux-perf) counts the system calls; without it (or without tracepoint access) those columns read "-".
perf=
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then perf=1; fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of_pid() { ss -ltnpH 2>/dev/null | awk -v pid="$1" '$0 ~ "pid="pid"," {n=split($4,a,":"); print a[n]; exit}'; }
nginx_conf() { # nginx_conf NAME BODY: a one-worker nginx configuration with the http block's BODY
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<EOT
worker_processes 1;
daemon off;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $work/$1/body;
  proxy_temp_path $work/$1/proxy;
$2
}
EOT
}

# The same canned completion as bench/run.sh's mock.
completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},"system_fingerprint":"fp_bench"}'
mock_port=$(free_port)
nginx_conf mock "  server { listen 127.0.0.1:$mock_port; location / { default_type application/json; return 200 '$completion'; } }"
taskset -c "$cpu1" nginx -c "$work/mock/nginx.conf" -p "$work/mock" -e "$work/mock/error.log" &
pids+=($!)

nginx_port=$(free_port)
nginx_conf floor "  proxy_http_version 1.1;
  proxy_set_header Connection \"\";
  proxy_set_header Authorization \"Bearer sk-bench\";
  upstream mock { server 127.0.0.1:$mock_port; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 300s; }
  server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://mock; } }"
taskset -c "$cpu0" nginx -c "$work/floor/nginx.conf" -p "$work/floor" -e "$work/floor/error.log" &
pids+=($!)

printf 'default_api: openai\napis:\n  openai:\n    base_url: http://127.0.0.1:%s\n    allowed_endpoints: [/v1/chat/completions]\n    allowed_methods: [POST]\n    connection:\n      max_idle_conns: 1024\n      max_idle_conns_per_host: 1024\n' \
  "$mock_port" >"$work/providers.yaml"
MANAGEMENT_TOKEN=bench-management-token-0123456789abcdef LISTEN_ADDR=127.0.0.1:0 IO_THREADS=1 LOG_LEVEL=${LOG_LEVEL:-warn} \
  DATABASE_PATH="$work/db.sqlite" AUDIT_LOG_FILE="$work/audit.log" API_CONFIG_PATH="$work/providers.yaml" \
  taskset -c "$cpu0" "$binary" server >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
proxy_port=
for _ in $(seq 100); do
  proxy_port=$(port_of_pid "$proxy_pid")
  [ -n "$proxy_port" ] && curl -sf "localhost:$proxy_port/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$proxy_port" ] || { echo "cpu_split: llm-proxy did not start:" >&2; cat "$work/proxy.log" >&2; exit 1; }
manage() { curl -sf -H "Authorization: Bearer bench-management-token-0123456789abcdef" -H "Content-Type: application/json" -d "$2" "localhost:$proxy_port$1"; }
project=$(manage /manage/projects '{"name":"bench","api_key":"sk-bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
token=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60}" | sed 's/.*"token":"\([^"]*\)".*/\1/')
for _ in $(seq 50); do curl -s -o /dev/null "localhost:$nginx_port/" && break; sleep 0.1; done
nginx_worker=$(pgrep -P "$(cat "$work/floor/nginx.pid")" | head -1)

cpu0_ticks() { awk -v c="cpu$cpu0" '$1 == c {print $2 + $3, $4, $7 + $8, $5}' /proc/stat; }  # user+nice sys irq+softirq idle
segments() { awk '/^Tcp:/ {n++; if (n == 2) print $11 + $12}' /proc/net/snmp; }             # InSegs + OutSegs
# Context switches of every thread of process $1 (voluntary: it blocked, e.g. in epoll_wait with nothing ready).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v += $2} END {print v + 0}'; }

measure() { # measure NAME PORT TOKEN PID
  TOKEN=$3 taskset -c "$cpu1" wrk -t1 -c32 -d"$((warmup + duration + 1))s" -s bench/chat.lua \
    "http://127.0.0.1:$2/v1/chat/completions" >"$work/wrk.txt" &
  local w=$!
  sleep "$warmup"
  local t0 s0 t1 s1 v0 v1
  t0=$(cpu0_ticks); s0=$(segments); v0=$(switches "$4")
  local started; started=$(date +%s.%N)
  if [ -n "$perf" ]; then
    # System calls entered, and those that returned EAGAIN (a read or write tried before the socket was ready).
    perf stat -x, -o "$work/perf.txt" -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit --filter 'ret == -11' \
      -p "$4" -- sleep "$duration" >/dev/null 2>&1 || : >"$work/perf.txt"
  else
    sleep "$duration"
  fi
  t1=$(cpu0_ticks); s1=$(segments); v1=$(switches "$4")
  local elapsed; elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  wait "$w"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  local calls=-1 eagain=-1
  if [ -n "$perf" ]; then
    calls=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$work/perf.txt")
    eagain=$(awk -F, '$3 == "raw_syscalls:sys_exit" {print $1}' "$work/perf.txt")
  fi
  # Requests served while counting: the run's rate times the counted time (wrk's rate is steady after warm-up).
  awk -v name="$1" -v rps="$rps" -v el="$elapsed" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v v0="$v0" -v v1="$v1" -v calls="${calls:--1}" -v eagain="${eagain:--1}" 'BEGIN {
    split(t0, a, " "); split(t1, b, " "); n = rps * el; us = 1e6 / hz / n
    sc = calls < 0 ? "-" : sprintf("%.2f", calls / n); ea = eagain < 0 ? "-" : sprintf("%.2f", eagain / n)
    printf "| %-10s | %9.0f | %5.2f | %5.2f | %7.2f | %5.2f | %4.1f%% | %4.2f | %4.2f | %s | %s |\n", name, rps, (b[1]-a[1])*us, (b[2]-a[2])*us,
      (b[3]-a[3])*us, ((b[1]-a[1])+(b[2]-a[2])+(b[3]-a[3]))*us, 100 * (b[4]-a[4]) / ((b[1]-a[1])+(b[2]-a[2])+(b[3]-a[3])+(b[4]-a[4])),
      (s1 - s0) / n, (v1 - v0) / n, sc, ea }'
}

echo "CPU $cpu0 per request (us), wrk -t1 -c32 on CPU $cpu1, LOG_LEVEL=${LOG_LEVEL:-warn} for llm-proxy, $rounds round(s)"
echo "| target | req/s | user | sys | softirq | total | idle | segments | sleeps | syscalls | EAGAIN |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for _ in $(seq "$rounds"); do
  measure nginx "$nginx_port" "" "$nginx_worker"
  measure llm-proxy "$proxy_port" "$token" "$proxy_pid"
done
