#!/usr/bin/env bash
# Usage: bench/run.sh            the SPEC §11 benchmark: every row in one run (about 7 minutes with the default
#                                DURATION), prints the tables with ratios to nginx, rewrites the generated part of
#                                docs/benchmarks.md and bench/baseline.tsv
#        bench/run.sh --guard    CI regression guard (20-40 s after the build): nginx floor (before and after),
#                                llm-proxy SQLite unlimited and quota tokens, 3 s each; fails only when a ratio to
#                                nginx falls below half of the committed one in bench/baseline.tsv, or a row has
#                                errors, twice in a row (one remeasurement). Writes nothing.
#
# What runs (docs/benchmarks.md explains the method): a mock upstream (nginx from Debian answering a canned chat
# completion, an SSE stream, and the completion over HTTPS with a certificate generated for the run), nginx as a
# plain proxy_pass reverse proxy (the floor every ratio is against), the mock directly, and llm-proxy on SQLite and
# on a throwaway PostgreSQL cluster with default durability, with the response cache in memory and in a throwaway
# redis-server, all loaded by wrk -t1 with bench/chat.lua. The proxy
# under test runs on CPU 0, the mock, wrk and the other clients on CPU 1 (taskset), except in the rows marked
# unpinned. Every process started here is stopped on exit, Ctrl-C included.
#
# Env: BUILD_DIR   a built tree to use (its build type is kept; llm-proxy is rebuilt there if out of date);
#                  default build-bench/, configured Release and built (target llm-proxy) on first use
#      DURATION    seconds per row (default 10s; --guard: 3s)     WARMUP   seconds of wrk before each row (2s; 1s)
#      CONNECTIONS wrk connections of the main rows (32)          TTFB_N   streaming requests per TTFB row (2000)
#      RSS_CONNS   idle connection counts of the RSS rows ("1000 10000")
#      WRITE_DOCS  0: do not rewrite docs/benchmarks.md and bench/baseline.tsv (full run)
#      KEEP_WORK   1: keep the work directory (logs, configs) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

mode=full
case "${1:-}" in
  "") ;;
  --guard) mode=guard ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--guard]" >&2; exit 2 ;;
esac

guard_duration=3 guard_warmup=1  # the guard's rows, also measured by the full run for bench/baseline.tsv
if [ "$mode" = guard ]; then duration=${DURATION:-${guard_duration}s}; warmup=${WARMUP:-${guard_warmup}s}; else duration=${DURATION:-10s}; warmup=${WARMUP:-2s}; fi
for v in "$duration" "$warmup"; do
  [[ $v =~ ^[1-9][0-9]*s?$ ]] || { echo "bench: DURATION and WARMUP are whole seconds (e.g. 10s), not '$v'" >&2; exit 2; }
done
duration=${duration%s}
warmup=${warmup%s}
conns=${CONNECTIONS:-32}
ttfb_n=${TTFB_N:-2000}
rss_conns=${RSS_CONNS:-1000 10000}
[[ $conns =~ ^[1-9][0-9]*$ && $ttfb_n =~ ^[1-9][0-9]*$ ]] || { echo "bench: CONNECTIONS and TTFB_N are positive integers" >&2; exit 2; }

missing=()
for tool in nginx wrk openssl python3 taskset ss curl redis-server; do command -v "$tool" >/dev/null || missing+=("$tool"); done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ "$mode" = full ] && { [ -z "$pg_bin" ] || ! command -v psql >/dev/null; }; then missing+=(postgresql); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]}; run scripts/setup.sh" >&2
  exit 1
fi

# --- the build ---------------------------------------------------------------------------------------------------
if [ -n "${BUILD_DIR:-}" ]; then
  build=$BUILD_DIR
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  [ -n "$build_type" ] || { echo "bench: $build is not a configured build tree" >&2; exit 1; }
else
  build=build-bench
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  build_type=${build_type:-Release}
fi
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) echo "bench: $build is a $build_type build; numbers need Release or RelWithDebInfo" >&2; exit 1 ;;
esac
if grep -qE '^LLMPROXY_(SANITIZE|TSAN|COVERAGE):BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "bench: $build is instrumented (sanitizer or coverage); use a plain build" >&2
  exit 1
fi
echo "bench: building llm-proxy in $build ($build_type)"
build_log=$(mktemp)
if ! BUILD_TYPE=$build_type TARGET=llm-proxy scripts/build.sh "$build" >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  rm -f "$build_log"
  echo "bench: build failed" >&2
  exit 1
fi
rm -f "$build_log"
llm_proxy=$repo/$build/apps/llm-proxy/llm-proxy
[[ $build = /* ]] && llm_proxy=$build/apps/llm-proxy/llm-proxy

# --- processes and cleanup ---------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/llmproxy-bench.XXXXXX)
chmod 0755 "$work"  # nginx workers (nobody) and postgres read from it when run as root
pids=()
pg_data=""
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ours() { [ "$(awk '/^PPid:/{print $2}' "/proc/$1/status" 2>/dev/null)" = "$$" ]; }
cleanup() {
  local rc=$? p all=() alive
  trap - EXIT
  trap '' INT TERM  # a second Ctrl-C does not cut the cleanup short (it takes at most 5 s)
  # Only live children of this script (a pid is checked, never reused blindly), and their children (nginx workers),
  # so a master killed late leaves no orphan.
  for p in "${pids[@]}"; do
    ours "$p" || continue
    all+=("$p")
    all+=($(ps -o pid= --ppid "$p" 2>/dev/null || true))
  done
  for p in "${all[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=""
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pg_data" ] && as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "bench: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# CPU placement: the process under test on CPU 0, load generators and the mock on CPU 1 (the first two CPUs this
# script may use, in fact).
read -r cpu0 cpu1 < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[0], c[1] if len(c) > 1 else "")')
if [ -n "$cpu1" ]; then pinning=1; else pinning=""; echo "bench: one CPU: nothing is pinned" >&2; fi
pinned=()
pin() { # pin CPUS: sets the prefix `pinned` for a command (CPUS: 0 = the proxy's CPU, 1 = the load's, or any)
  case "${pinning:+$1}" in
    0) pinned=(taskset -c "$cpu0") ;;
    1) pinned=(taskset -c "$cpu1") ;;
    *) pinned=() ;;
  esac
}
spawned=""
spawn() { # spawn NAME CPUS CMD...: starts CMD in the background, output in $work/NAME.log; pid in $spawned
  local name=$1
  pin "$2"
  shift 2
  "${pinned[@]}" "$@" >"$work/$name.log" 2>&1 &
  spawned=$!
  pids+=("$spawned")
}
fg_run() { # fg_run CMD...: CMD as a tracked child, waited for; a Ctrl-C then reaches the traps at once (bash does
  # not act on SIGINT while a foreground child that handles it, like wrk, is running)
  "$@" &
  local p=$! rc=0
  pids+=("$p")
  wait "$p" || rc=$?
  untrack "$p"
  return "$rc"
}
untrack() { # untrack PID: forget a child that has been waited for
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop() { # stop PID: TERM, wait for it (nginx masters take their workers down)
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  untrack "$1"
}
unpin() { # unpin PID: lets a running process, its threads and its children run on every CPU again
  [ -n "$pinning" ] || return 0
  local p all
  all=$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
  for p in "$1" $(ps -o pid= --ppid "$1"); do taskset -a -p -c "$all" "$p" >/dev/null; done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of_pid() { ss -ltnpH 2>/dev/null | awk -v pid="$1" '$0 ~ "pid="pid"," {n=split($4,a,":"); print a[n]; exit}'; }
wait_http() { # wait_http PORT [scheme]: until something answers HTTP there (any status)
  local i
  for i in $(seq 100); do
    curl -sk -o /dev/null --max-time 1 "${2:-http}://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "bench: nothing answers on port $1" >&2
  return 1
}
rss_kb() { # rss_kb PID...: summed VmRSS of these processes in kB
  local total=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$(( total + ${v:-0} ))
  done
  echo "$total"
}
established() { ss -tnH state established "( sport = :$1 )" 2>/dev/null | wc -l; }

results=$work/results.tsv
: >"$results"
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$results"; }

# The file limit: 10,000 idle client connections need as many descriptors in the proxy and in the client.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard"
max_held=0
kept=""
for n in $rss_conns; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench: RSS_CONNS holds positive integers, not '$n'" >&2; exit 2; }
  if [ $(( n + 1000 )) -gt "$hard" ]; then
    echo "bench: skipping the RSS row with $n connections: the open-file hard limit is $hard" >&2
    continue
  fi
  kept+="$n "
  [ "$n" -gt "$max_held" ] && max_held=$n
done
rss_conns=$kept

# --- mock upstream: nginx answering a canned completion (HTTP, HTTPS) and an SSE stream --------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},"system_fingerprint":"fp_bench"}'
sse=""
for piece in '"role":"assistant","content":""' '"content":"Hello"' '"content":"!"' '"content":" How can I help?"'; do
  sse+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{'$piece'},"finish_reason":null}]}'$'\n\n'
done
sse+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'$'\n\n''data: [DONE]'$'\n\n'

mock_port=$(free_port); mock_sse_port=$(free_port); mock_tls_port=$(free_port)
mkdir -p "$work/mock"
cat >"$work/mock/nginx.conf" <<EOT
worker_processes 1;
worker_rlimit_nofile $hard;
daemon off;
pid $work/mock/nginx.pid;
error_log $work/mock/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $work/mock/body;
  server {
    listen 127.0.0.1:$mock_port;
    location / { default_type application/json; return 200 '$completion'; }
  }
  server {
    listen 127.0.0.1:$mock_tls_port ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    location / { default_type application/json; return 200 '$completion'; }
  }
  server {
    listen 127.0.0.1:$mock_sse_port;
    location / { default_type text/event-stream; return 200 '$sse'; }
  }
}
EOT
spawn mock 1 nginx -c "$work/mock/nginx.conf" -p "$work/mock" -e "$work/mock/error.log"
mock_pid=$spawned
wait_http "$mock_port"

# --- nginx as the reverse proxy (the floor) ----------------------------------------------------------------------
# nginx_floor NAME WORKERS CPUS: proxy_pass to the mock with a keep-alive upstream pool, setting Authorization like
# llm-proxy does. Ports in ${NAME}_port (HTTP JSON), ${NAME}_sse_port, ${NAME}_tls_port; pid in ${NAME}_pid.
nginx_floor() {
  local name=$1 workers=$2 cpus=$3 port sse_port tls_port
  port=$(free_port); sse_port=$(free_port); tls_port=$(free_port)
  mkdir -p "$work/$name"
  cat >"$work/$name/nginx.conf" <<EOT
worker_processes $workers;
worker_rlimit_nofile $hard;
daemon off;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections $(( max_held + 2048 )); }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $work/$name/body;
  proxy_temp_path $work/$name/proxy;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Authorization "Bearer sk-bench";
  upstream mock { server 127.0.0.1:$mock_port; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 300s; }
  upstream mock_sse { server 127.0.0.1:$mock_sse_port; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 300s; }
  upstream mock_tls { server 127.0.0.1:$mock_tls_port; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 300s; }
  server { listen 127.0.0.1:$port; location / { proxy_pass http://mock; } }
  server { listen 127.0.0.1:$sse_port; location / { proxy_pass http://mock_sse; proxy_buffering off; } }
  server {
    listen 127.0.0.1:$tls_port;
    location / {
      proxy_pass https://mock_tls;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $work/cert.pem;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
EOT
  spawn "$name" "$cpus" nginx -c "$work/$name/nginx.conf" -p "$work/$name" -e "$work/$name/error.log"
  printf -v "${name}_pid" '%s' "$spawned"
  printf -v "${name}_port" '%s' "$port"
  printf -v "${name}_sse_port" '%s' "$sse_port"
  printf -v "${name}_tls_port" '%s' "$tls_port"
  wait_http "$port"
}

# --- PostgreSQL: a throwaway cluster with the default durability (fsync, synchronous_commit and
# full_page_writes on); unpinned --------------------------------------------------------------------------------
pg_port=""
start_postgres() {
  local dir=$work/pg
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  # --no-sync only skips initdb's own final flush of the new files; the server runs with its durable defaults.
  as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log" >&2; return 1; }
  local try
  for try in $(seq 10); do
    pg_port=$(free_port)
    if as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
      pg_data=$dir/data
      break
    fi
  done
  [ -n "$pg_data" ] || { echo "bench: PostgreSQL did not start:" >&2; cat "$dir/server.log" >&2; return 1; }
  meta postgres "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), fsync=$(pg_sql postgres 'SHOW fsync'), synchronous_commit=$(pg_sql postgres 'SHOW synchronous_commit'), full_page_writes=$(pg_sql postgres 'SHOW full_page_writes'), wal_sync_method=$(pg_sql postgres 'SHOW wal_sync_method'), unpinned"
}
pg_sql() { psql "postgresql://postgres@127.0.0.1:$pg_port/$1" -qAtc "$2"; }
pg_database() { pg_sql postgres "CREATE DATABASE $1" >/dev/null; echo "postgresql://postgres@127.0.0.1:$pg_port/$1"; }

# --- llm-proxy ---------------------------------------------------------------------------------------------------
management_token=bench-management-token-0123456789abcdef
write_providers() { # write_providers FILE BASE_URL
  cat >"$1" <<EOT
default_api: openai
apis:
  openai:
    base_url: $2
    allowed_endpoints: [/v1/chat/completions]
    allowed_methods: [POST]
    connection:
      max_idle_conns: 1024
      max_idle_conns_per_host: 1024
EOT
}
write_providers "$work/providers-http.yaml" "http://127.0.0.1:$mock_port"
write_providers "$work/providers-sse.yaml" "http://127.0.0.1:$mock_sse_port"
write_providers "$work/providers-https.yaml" "https://127.0.0.1:$mock_tls_port"

manage() { # manage PORT PATH JSON -> response body
  curl -sf -H "Authorization: Bearer $management_token" -H "Content-Type: application/json" -d "$3" \
    "http://127.0.0.1:$1$2"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# start_proxy NAME CPUS [VAR=value...]: llm-proxy (SQLite in the work directory, IO_THREADS=1, LOG_LEVEL=warn,
# the HTTP mock unless overridden). Sets proxy_pid and proxy_port.
start_proxy() {
  local name=$1 cpus=$2 i
  shift 2
  mkdir -p "$work/$name"
  spawn "$name/proxy" "$cpus" env MANAGEMENT_TOKEN=$management_token LISTEN_ADDR=127.0.0.1:0 IO_THREADS=1 LOG_LEVEL=warn \
    DATABASE_PATH="$work/$name/db.sqlite" AUDIT_LOG_FILE="$work/$name/audit.log" \
    API_CONFIG_PATH="$work/providers-http.yaml" SHUTDOWN_TIMEOUT=2s "$@" "$llm_proxy" server
  proxy_pid=$spawned
  proxy_port=""
  for i in $(seq 300); do
    kill -0 "$proxy_pid" 2>/dev/null || { echo "bench: llm-proxy $name exited:" >&2; tail -n 20 "$work/$name/proxy.log" >&2; return 1; }
    [ -n "$proxy_port" ] || proxy_port=$(port_of_pid "$proxy_pid")
    [ -n "$proxy_port" ] && curl -sf -o /dev/null "http://127.0.0.1:$proxy_port/ready" && return 0
    sleep 0.1
  done
  echo "bench: llm-proxy $name not ready after 30 s:" >&2
  tail -n 20 "$work/$name/proxy.log" >&2
  return 1
}
# make_tokens PORT NAME: a project and two tokens through the management API: $unlimited and $quota (max_requests
# 1e9, never used up); $quota_id is the quota token's id.
make_tokens() {
  local project created
  project=$(manage "$1" /manage/projects "{\"name\":\"bench-$2\",\"api_key\":\"sk-bench\"}" | json_field id)
  unlimited=$(manage "$1" /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":600}" | json_field token)
  created=$(manage "$1" /manage/tokens "{\"project_id\":\"$project\",\"duration_minutes\":600,\"max_requests\":1000000000}")
  quota=$(echo "$created" | json_field token)
  quota_id=$(echo "$created" | json_field id)
}

# --- rows --------------------------------------------------------------------------------------------------------
chat_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
probe() { # probe SCHEME PORT TOKEN -> HTTP status of one chat completion
  local auth=()
  [ -n "$3" ] && auth=(-H "Authorization: Bearer $3")
  curl -sk -o /dev/null -w '%{http_code}' --max-time 10 -H "Content-Type: application/json" "${auth[@]}" \
    -d "$chat_body" "$1://127.0.0.1:$2/v1/chat/completions" || true
}
bench_field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" "$2"; }
# wrk_row SECTION KEY LABEL FLOOR_KEY TARGET SCHEME PORT TOKEN CONNECTIONS CPUS
#   TARGET: floor | direct | unlimited (>= 1.0x nginx, p99 <= 1.2x) | quota (>= 5,000 req/s) | none
wrk_row() {
  local section=$1 key=$2 label=$3 floor=$4 target=$5 scheme=$6 port=$7 token=$8 c=$9 cpus=${10}
  local out=$work/wrk-$key.txt status note="" errors
  status=$(probe "$scheme" "$port" "$token")
  [ "$status" = 200 ] || note="probe answered $status, not 200"
  pin "$cpus"
  TOKEN=$token fg_run "${pinned[@]}" wrk -t1 -c"$c" -d"${warmup}s" --timeout 5s -s bench/chat.lua \
    "$scheme://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1 || true
  TOKEN=$token fg_run "${pinned[@]}" wrk -t1 -c"$c" -d"${duration}s" --timeout 5s --latency -s bench/chat.lua \
    "$scheme://127.0.0.1:$port/v1/chat/completions" >"$out" 2>&1 || note="${note:+$note; }wrk failed"
  if ! grep -q '^BENCH ' "$out"; then
    note="${note:+$note; }no wrk summary"
    printf 'wrk\t%s\t%s\t%s\t%s\t%s\t0\t0\t0\t0\t1\t%s\n' "$section" "$key" "$label" "$floor" "$target" "$note" >>"$results"
    return 0
  fi
  errors=$(( $(bench_field http_errors "$out") + $(bench_field connect "$out") + $(bench_field read "$out") +
             $(bench_field write "$out") + $(bench_field timeout "$out") ))
  printf 'wrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$key" "$label" "$floor" "$target" \
    "$(awk -v r="$(bench_field requests "$out")" -v d="$(bench_field duration_us "$out")" 'BEGIN{printf "%.0f", r/(d/1e6)}')" \
    "$(bench_field p50_us "$out")" "$(bench_field p99_us "$out")" "$(bench_field requests "$out")" "$errors" "$note" >>"$results"
  tail -n 1 "$results" | awk -F'\t' '{printf "  %-58s %8s req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s %s\n", $4, $7, $8/1000, $9/1000, $11, $12}'
}
ttfb_row() { # ttfb_row KEY LABEL PORT TOKEN
  local out=$work/ttfb-$1.txt
  pin 1
  fg_run "${pinned[@]}" python3 bench/ttfb.py "$3" "$ttfb_n" "$4" >"$out" 2>&1 || true
  if grep -q '^TTFB ' "$out"; then
    printf 'ttfb\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(bench_field p50_us "$out")" "$(bench_field p99_us "$out")" \
      "$(bench_field n "$out")" "$(bench_field errors "$out")" >>"$results"
  else
    printf 'ttfb\t%s\t%s\t0\t0\t0\t1\n' "$1" "$2" >>"$results"
  fi
  echo "  TTFB $2: $(grep -h '^TTFB\|error' "$out" | head -n 2 | tr '\n' ' ')"
}
rss_row() { # rss_row WHO LABEL PORT TOKEN PID...: idle RSS, then RSS with each count of idle client connections
  local who=$1 label=$2 port=$3 token=$4 n holder line i
  shift 4
  printf 'rss\t%s\t%s\tidle\t%s\t0\n' "$who" "$label" "$(rss_kb "$@")" >>"$results"
  for n in $rss_conns; do
    pin 1
    "${pinned[@]}" python3 bench/hold_conns.py "$port" "$n" "$token" >"$work/hold-$who-$n.txt" 2>&1 &
    holder=$!
    pids+=("$holder")
    line=""
    for i in $(seq 1200); do
      line=$(grep '^HELD ' "$work/hold-$who-$n.txt" || true)
      [ -n "$line" ] && break
      kill -0 "$holder" 2>/dev/null || break
      sleep 0.1
    done
    printf 'rss\t%s\t%s\t%s\t%s\t%s\n' "$who" "$label" "$n" "$(rss_kb "$@")" "$(established "$port")" >>"$results"
    echo "  RSS $label with $n connections: $(tail -n 1 "$results" | cut -f5) kB, $(tail -n 1 "$results" | cut -f6) established (${line:-holder failed})"
    stop "$holder"
  done
}

load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "bench: load average $load1 before the first row: other work shares the CPUs, the figures will be noisy" >&2
fi
started=$(date -u +%Y-%m-%dT%H:%MZ)
meta date "$started"
meta commit "$(git rev-parse --short HEAD)$(git status --porcelain -- lib apps CMakeLists.txt | grep -q . && echo ' + uncommitted changes' || true)"
meta build "$build ($build_type)"
meta machine "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
meta tools "nginx $(nginx -v 2>&1 | sed 's|.*/||'), wrk $(wrk --version 2>&1 | awk 'NR==1{print $2}'), $(openssl version | awk '{print $1, $2}')"
meta load "wrk -t1, ${duration} s per row after ${warmup} s of warm-up, POST /v1/chat/completions (${#chat_body}-byte body, ${#completion}-byte JSON answer)"
meta pinning "$([ -n "$pinning" ] && echo "proxy under test on CPU $cpu0, mock upstream and load generator on CPU $cpu1" || echo 'none (one CPU)')"

# ================================================================================================================
echo "bench: c=$conns, pinned"
nginx_floor floor 1 0
again="nginx proxy_pass, 1 worker, again after the llm-proxy rows"

# guard_rows SECTION KEY_PREFIX: the guard's rows — nginx, llm-proxy with the unlimited and the quota token, nginx
# again — pinned, c=$conns (needs the floor nginx and an llm-proxy with its tokens).
guard_rows() {
  local s=$1 k=$2
  wrk_row "$s" "${k}c32.nginx" "nginx proxy_pass, 1 worker" "${k}c32.nginx" floor http "$floor_port" "" "$conns" 1
  wrk_row "$s" "${k}c32.sqlite.unlimited.warn" "llm-proxy SQLite, unlimited token, LOG_LEVEL=warn" "${k}c32.nginx" unlimited http "$proxy_port" "$unlimited" "$conns" 1
  wrk_row "$s" "${k}c32.sqlite.quota.warn" "llm-proxy SQLite, quota token, LOG_LEVEL=warn" "${k}c32.nginx" quota http "$proxy_port" "$quota" "$conns" 1
  wrk_row "$s" "${k}c32.nginx.2" "$again" "${k}c32.nginx" floor http "$floor_port" "" "$conns" 1
}

if [ "$mode" = guard ]; then
  start_proxy sqlite-warn 0
  make_tokens "$proxy_port" sqlite-warn
  # A second measurement before failing: one stall of a shared machine must not fail CI.
  for attempt in 1 2; do
    grep '^meta' "$results" >"$results.meta" || true
    mv "$results.meta" "$results"
    guard_rows c32 ""
    python3 bench/report.py guard "$results" bench/baseline.tsv && exit 0
    [ "$attempt" = 1 ] && echo "bench: guard: measuring once more before failing"
  done
  exit 1
fi

wrk_row c32 c32.nginx "nginx proxy_pass, 1 worker" c32.nginx floor http "$floor_port" "" "$conns" 1
wrk_row c32 c32.direct "mock upstream directly (no proxy)" c32.nginx direct http "$mock_port" "" "$conns" 1
start_postgres
for db in sqlite postgres; do
  for level in warn info; do
    name=$db-$level
    if [ "$db" = postgres ]; then
      start_proxy "$name" 0 LOG_LEVEL=$level DB_DRIVER=postgres DATABASE_URL="$(pg_database "bench_$level")"
      label=PostgreSQL
    else
      start_proxy "$name" 0 LOG_LEVEL=$level
      label=SQLite
    fi
    make_tokens "$proxy_port" "$name"
    wrk_row c32 "c32.$db.unlimited.$level" "llm-proxy $label, unlimited token, LOG_LEVEL=$level" c32.nginx unlimited http "$proxy_port" "$unlimited" "$conns" 1
    wrk_row c32 "c32.$db.quota.$level" "llm-proxy $label, quota token, LOG_LEVEL=$level" c32.nginx quota http "$proxy_port" "$quota" "$conns" 1
    if [ "$name" = sqlite-warn ]; then
      echo "bench: c=1 and c=256, pinned"
      for c in 1 256; do
        wrk_row "c$c" "c$c.nginx" "nginx proxy_pass, 1 worker" "c$c.nginx" floor http "$floor_port" "" "$c" 1
        wrk_row "c$c" "c$c.sqlite.unlimited.warn" "llm-proxy SQLite, unlimited token, LOG_LEVEL=warn" "c$c.nginx" none http "$proxy_port" "$unlimited" "$c" 1
        wrk_row "c$c" "c$c.nginx.2" "$again" "c$c.nginx" floor http "$floor_port" "" "$c" 1
      done
      echo "bench: c=$conns, pinned (continued)"
    fi
    stop "$proxy_pid"
  done
done
wrk_row c32 c32.nginx.2 "$again" c32.nginx floor http "$floor_port" "" "$conns" 1

echo "bench: HTTPS upstream, c=$conns, pinned"
wrk_row https https.nginx "nginx proxy_pass, 1 worker" https.nginx floor http "$floor_tls_port" "" "$conns" 1
wrk_row https https.direct "mock upstream directly over HTTPS (wrk's TLS)" https.nginx none https "$mock_tls_port" "" "$conns" 1
start_proxy https 0 API_CONFIG_PATH="$work/providers-https.yaml" SSL_CERT_FILE="$work/cert.pem"
make_tokens "$proxy_port" https
wrk_row https https.sqlite.unlimited.warn "llm-proxy SQLite, unlimited token, LOG_LEVEL=warn" https.nginx unlimited http "$proxy_port" "$unlimited" "$conns" 1
wrk_row https https.sqlite.quota.warn "llm-proxy SQLite, quota token, LOG_LEVEL=warn" https.nginx quota http "$proxy_port" "$quota" "$conns" 1
stop "$proxy_pid"
wrk_row https https.nginx.2 "$again" https.nginx floor http "$floor_tls_port" "" "$conns" 1

echo "bench: response cache (memory, Redis), c=$conns, pinned"
redis_port=$(free_port)
spawn redis 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --daemonize no
redis_pid=$spawned
wrk_row cache cache.nginx "nginx proxy_pass, 1 worker" cache.nginx floor http "$floor_port" "" "$conns" 1
for backend in memory redis; do
  start_proxy "cache-$backend" 0 HTTP_CACHE_BACKEND=$backend REDIS_CACHE_URL="redis://127.0.0.1:$redis_port/0"
  make_tokens "$proxy_port" "cache-$backend"
  CACHE=hit wrk_row cache "cache.$backend.hit" "llm-proxy, $backend cache: every request a hit" cache.nginx hit http "$proxy_port" "$unlimited" "$conns" 1
  CACHE=store wrk_row cache "cache.$backend.store" "llm-proxy, $backend cache: every request looked up, forwarded and stored" cache.nginx none http "$proxy_port" "$unlimited" "$conns" 1
  [ "$backend" = memory ] && wrk_row cache cache.memory.bypass "llm-proxy, cache on, POST without opt-in (bypass: the default path)" cache.nginx none http "$proxy_port" "$unlimited" "$conns" 1
  stop "$proxy_pid"
done
stop "$redis_pid"
wrk_row cache cache.nginx.2 "$again" cache.nginx floor http "$floor_port" "" "$conns" 1

echo "bench: streaming time to first byte ($ttfb_n sequential requests), pinned"
start_proxy sse 0 API_CONFIG_PATH="$work/providers-sse.yaml"
make_tokens "$proxy_port" sse
ttfb_row direct "mock upstream directly" "$mock_sse_port" ""
ttfb_row nginx "nginx proxy_pass, 1 worker (proxy_buffering off)" "$floor_sse_port" ""
ttfb_row llm-proxy "llm-proxy SQLite, unlimited token, LOG_LEVEL=warn" "$proxy_port" "$unlimited"
stop "$proxy_pid"

echo "bench: the guard's rows as CI runs them (${guard_duration} s after ${guard_warmup} s), three times: bench/baseline.tsv gets the median ratios"
start_proxy calibration 0
make_tokens "$proxy_port" calibration
full_duration=$duration full_warmup=$warmup
duration=$guard_duration warmup=$guard_warmup
for i in 1 2 3; do guard_rows cal "cal$i."; done
duration=$full_duration warmup=$full_warmup
stop "$proxy_pid"

echo "bench: resident memory, pinned"
start_proxy rss 0 MAX_CONNECTIONS=$(( max_held + 1000 ))
make_tokens "$proxy_port" rss
pin 1
TOKEN=$unlimited fg_run "${pinned[@]}" wrk -t1 -c"$conns" -d"${warmup}s" -s bench/chat.lua "http://127.0.0.1:$proxy_port/v1/chat/completions" >/dev/null 2>&1 || true
rss_row llm-proxy "llm-proxy (SQLite, IO_THREADS=1, after ${warmup} s of c=$conns load)" "$proxy_port" "$unlimited" "$proxy_pid"
stop "$proxy_pid"
rss_row nginx "nginx proxy_pass, 1 worker: master + worker (after the rows above)" "$floor_port" "" "$floor_pid" $(ps -o pid= --ppid "$floor_pid")
stop "$floor_pid"

echo "bench: IO_THREADS=2 vs nginx worker_processes 2, unpinned"
unpin "$mock_pid"
nginx_floor floor2 2 any
wrk_row io2 io2.nginx "nginx proxy_pass, 2 workers" io2.nginx floor http "$floor2_port" "" "$conns" any
start_proxy io2 any IO_THREADS=2
make_tokens "$proxy_port" io2
wrk_row io2 io2.sqlite.unlimited.warn "llm-proxy SQLite IO_THREADS=2, unlimited token, LOG_LEVEL=warn" io2.nginx unlimited http "$proxy_port" "$unlimited" "$conns" any
wrk_row io2 io2.sqlite.quota.warn "llm-proxy SQLite IO_THREADS=2, quota token, LOG_LEVEL=warn" io2.nginx quota http "$proxy_port" "$quota" "$conns" any
stop "$proxy_pid"
wrk_row io2 io2.nginx.2 "nginx proxy_pass, 2 workers, again after the llm-proxy rows" io2.nginx floor http "$floor2_port" "" "$conns" any
stop "$floor2_pid"

echo "bench: 3 llm-proxy instances on one PostgreSQL, one quota token, unpinned"
multi_url=$(pg_database bench_multi)
multi_pids=()
multi_ports=()
for i in 1 2 3; do
  start_proxy "multi$i" any LOG_LEVEL=warn DB_DRIVER=postgres DATABASE_URL="$multi_url"
  multi_pids+=("$proxy_pid")
  multi_ports+=("$proxy_port")
done
make_tokens "${multi_ports[0]}" multi
per=$(( (conns + 2) / 3 ))
probes_ok=0
for port in "${multi_ports[@]}"; do
  [ "$(probe http "$port" "$quota")" = 200 ] && probes_ok=$(( probes_ok + 1 ))
done
# DRAIN_AFTER: each wrk stops sending after $duration s and falls idle for the last 2 s, so when it exits every
# request it sent has been answered and counted: the database must hold exactly the sum of the 2xx answers.
wrk_pids=()
for i in 0 1 2; do
  TOKEN=$quota DRAIN_AFTER=$duration wrk -t1 -c"$per" -d"$(( duration + 2 ))s" --timeout 5s --latency -s bench/chat.lua \
    "http://127.0.0.1:${multi_ports[i]}/v1/chat/completions" >"$work/wrk-multi$i.txt" 2>&1 &
  wrk_pids+=($!)
  pids+=($!)
done
for p in "${wrk_pids[@]}"; do wait "$p" || true; untrack "$p"; done
sum_req=0 sum_ok=0 sum_err=0 p50=0 p99=0 note=""
for i in 0 1 2; do
  f=$work/wrk-multi$i.txt
  if ! grep -q '^BENCH ' "$f"; then note="wrk $i gave no summary"; sum_err=$(( sum_err + 1 )); continue; fi
  r=$(bench_field requests "$f")
  he=$(bench_field http_errors "$f")
  se=$(( $(bench_field connect "$f") + $(bench_field read "$f") + $(bench_field write "$f") + $(bench_field timeout "$f") ))
  sum_req=$(( sum_req + r ))
  sum_ok=$(( sum_ok + r - he ))
  sum_err=$(( sum_err + he + se ))
  p50=$(( $(bench_field p50_us "$f") > p50 ? $(bench_field p50_us "$f") : p50 ))
  p99=$(( $(bench_field p99_us "$f") > p99 ? $(bench_field p99_us "$f") : p99 ))
done
[ "$probes_ok" = 3 ] || note="${note:+$note; }probes: $probes_ok of 3 answered 200"
printf 'wrk\tmulti\tmulti.postgres.quota\t3 x llm-proxy PostgreSQL, one quota token, 3 x wrk -c%s (summed; p50/p99: worst of 3)\tc32.nginx\tquota\t%s\t%s\t%s\t%s\t%s\t%s\n' \
  "$per" "$(( sum_req / duration ))" "$p50" "$p99" "$sum_req" "$sum_err" "$note" >>"$results"
tail -n 1 "$results" | awk -F'\t' '{printf "  %-58s %8s req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s %s\n", $4, $7, $8/1000, $9/1000, $11, $12}'
counted=$(pg_sql bench_multi "SELECT request_count FROM tokens WHERE id = '$quota_id'")
expected=$(( sum_ok + probes_ok ))
exact=0
[ "$counted" = "$expected" ] && exact=1
printf 'check\tmulti.exact\trequest_count of the quota token in the database = 2xx answers counted by the 3 wrk (+ %s probes)\t%s\tdatabase %s, wrk 2xx + probes %s\n' \
  "$probes_ok" "$exact" "$counted" "$expected" >>"$results"
echo "  exactness: request_count $counted, 2xx answers + probes $expected: $([ $exact = 1 ] && echo exact || echo MISMATCH)"
for p in "${multi_pids[@]}"; do stop "$p"; done

echo
docs=docs/benchmarks.md
[ "${WRITE_DOCS:-1}" = 0 ] && docs=""
python3 bench/report.py full "$results" bench/baseline.tsv "$docs"
