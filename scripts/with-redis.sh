#!/usr/bin/env bash
# Usage: scripts/with-redis.sh CMD [ARGS...]
# Starts a throwaway redis-server on a free loopback port (no persistence, its own temp dir), exports its URL as
# REDIS_TEST_URL, runs CMD, then stops the server and deletes the dir even when CMD fails or is interrupted.
# Never touches a system Redis (6379 is never used). Exit status: CMD's. Composes with with-postgres.sh:
#   scripts/with-redis.sh scripts/with-postgres.sh ctest ...
#
# Also exported, for tests that stop/start a server of their own (outage, restart, password cases):
#   REDIS_SERVER_BIN (the redis-server path), REDIS_TEST_PORT, REDIS_TEST_DIR (a temp dir they may use)
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

server_bin=$(command -v redis-server || true)
if [ -z "$server_bin" ]; then
  echo "with-redis: redis-server not found; run scripts/setup.sh" >&2
  exit 1
fi

work=$(mktemp -d /tmp/llmproxy-redis.XXXXXX)
pid=""

cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ping() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 line <&3 && [[ $line == +PONG* ]]) 2>/dev/null; }

started=""
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 40000 ))
  port_in_use "$port" && continue
  mkdir -p "$work/data"
  "$server_bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/data" \
    --daemonize no --protected-mode yes --logfile "$work/server.log" &
  pid=$!
  for _ in $(seq 1 100); do
    if ping "$port"; then started=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$started" ] && break
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if [ -z "$started" ]; then
  echo "with-redis: could not start a throwaway redis-server; server log:" >&2
  cat "$work/server.log" >&2 || true
  exit 1
fi

export REDIS_TEST_URL="redis://127.0.0.1:$port/0"
export REDIS_SERVER_BIN="$server_bin" REDIS_TEST_PORT="$port" REDIS_TEST_DIR="$work"
echo "with-redis: throwaway redis-server on 127.0.0.1:$port ($work)"

set +e
"$@"
rc=$?
set -e
exit $rc
