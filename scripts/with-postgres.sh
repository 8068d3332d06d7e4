#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
# Creates a throwaway PostgreSQL cluster (initdb in a temp dir, as the `postgres` user when run as root, on a
# free loopback port, unix socket in the temp dir), exports its URL as TEST_DATABASE_URL, runs CMD, then stops
# and deletes the cluster even when CMD fails. Never touches a system cluster. Exit status: CMD's.
#
# Also exported, for tests that stop/start the server (outage and recovery tests):
#   TEST_PG_BIN, TEST_PG_DATA, TEST_PG_PORT, TEST_PG_SOCKET_DIR, TEST_PG_LOG, TEST_PG_RUNAS (user or empty)
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "with-postgres: PostgreSQL server binaries not found; run scripts/setup.sh" >&2
  exit 1
fi

runas=""
if [ "$(id -u)" -eq 0 ]; then runas=postgres; fi
as_pg() {
  if [ -n "$runas" ]; then runuser -u "$runas" -- "$@"; else "$@"; fi
}

work=$(mktemp -d /tmp/llmproxy-pg.XXXXXX)
[ -n "$runas" ] && chown "$runas" "$work"
chmod 0755 "$work"

cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_pg "$pg_bin/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 || {
  cat "$work/initdb.log" >&2; exit 1; }

started=""
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 40000 ))
  port_in_use "$port" && continue
  if as_pg "$pg_bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 30 \
      -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  echo "with-postgres: could not start a throwaway cluster; server log:" >&2
  cat "$work/server.log" >&2 || true
  exit 1
fi

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
export TEST_PG_BIN="$pg_bin" TEST_PG_DATA="$work/data" TEST_PG_PORT="$port" TEST_PG_SOCKET_DIR="$work"
export TEST_PG_LOG="$work/server.log" TEST_PG_RUNAS="$runas"
echo "with-postgres: throwaway cluster on 127.0.0.1:$port ($work)"

set +e
"$@"
rc=$?
set -e
exit $rc
