#!/usr/bin/env bash
# Usage: bench/instructions.sh [BUILD_DIR [BUILD_DIR...]]  — user-space instructions per proxied request, counted
# by valgrind's callgrind, for each build in turn (default: build).
#
# Throughput on a shared 2-core machine moves with whatever else runs; an instruction count does not (within ~1%),
# so this is how one change is judged while other work runs. It counts only our process's user space (libc,
# OpenSSL and the allocator included; the kernel not), so it complements bench/run.sh, whose throughput figures
# against nginx are the ones quoted. The proxy runs under callgrind with instrumentation off through boot and
# warm-up, then on for DURATION of POST /v1/chat/completions with an unlimited cached token (wrk -c8), IO_THREADS=1,
# SQLite, LOG_LEVEL (warn). Needs valgrind (Debian), wrk, a built mock-upstream. CALLGRIND_KEEP=PREFIX keeps each
# profile as PREFIX.<build dir name> (for callgrind_annotate --inclusive=yes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- build
duration=${DURATION:-10s}
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }

port_of_pid() { ss -ltnpH 2>/dev/null | awk -v pid="$1" '$0 ~ "pid="pid"," {split($4,a,":"); print a[length(a)]; exit}'; }

measure() {
  local build=$1 work pids=() mock_port pid port project token out requests total
  work=$(mktemp -d)
  # shellcheck disable=SC2317  # called through the trap
  cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
  trap cleanup RETURN
  "$build/tests/support/mock-upstream" >"$work/mock.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q '^PORT ' "$work/mock.log" && break; sleep 0.1; done
  mock_port=$(awk '/^PORT /{print $2; exit}' "$work/mock.log")
  printf 'default_api: openai\napis:\n  openai:\n    base_url: http://127.0.0.1:%s\n    allowed_endpoints: [/v1/chat/completions]\n    allowed_methods: [POST]\n' \
    "$mock_port" >"$work/providers.yaml"
  MANAGEMENT_TOKEN=bench-management-token-0123456789abcdef LISTEN_ADDR=127.0.0.1:0 IO_THREADS=1 \
    LOG_LEVEL=${LOG_LEVEL:-warn} DATABASE_PATH="$work/db.sqlite" AUDIT_LOG_FILE="$work/audit.log" \
    API_CONFIG_PATH="$work/providers.yaml" \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
    "$build/apps/llm-proxy/llm-proxy" server >"$work/proxy.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 600); do
    port=$(port_of_pid "$pid")
    [ -n "$port" ] && curl -sf "localhost:$port/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  manage() {
    curl -sf -H "Authorization: Bearer bench-management-token-0123456789abcdef" -H "Content-Type: application/json" \
      -d "$2" "localhost:$port$1"
  }
  project=$(manage /manage/projects '{"name":"bench","api_key":"sk-bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  token=$(manage /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":60}" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  TOKEN=$token wrk -t1 -c8 -d2s -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  out=$(TOKEN=$token wrk -t1 -c8 -d"$duration" -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions")
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  requests=$(echo "$out" | awk '/requests in/{print $1}')
  sleep 1
  total=$(cat "$work"/callgrind.out* | awk '/^(summary|totals):/{s+=$2} END{print s+0}')
  if [ -n "${CALLGRIND_KEEP:-}" ]; then cat "$work"/callgrind.out* >"$CALLGRIND_KEEP.$(basename "$build")"; fi
  if echo "$out" | grep -q "Non-2xx"; then echo "instructions.sh: $build answered non-2xx" >&2; return 1; fi
  printf '%s\t%s requests\t%s instructions/request\n' "$build" "$requests" "$((total / requests))"
}

for b in "$@"; do measure "$b"; done
