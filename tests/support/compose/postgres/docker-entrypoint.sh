#!/bin/bash
# Entrypoint of the postgres:15 stand-in (see Dockerfile): on a first start (empty PGDATA) it initialises the
# cluster like the official image does, then runs the server as `postgres`.
#   POSTGRES_PASSWORD  required (the superuser's password)
#   POSTGRES_USER      superuser name (default postgres)
#   POSTGRES_DB        database created on the first start (default: POSTGRES_USER)
#   PGDATA             data directory (default /var/lib/postgresql/data)
#   POSTGRES_INITDB_ARGS  extra initdb arguments
# Scripts in /docker-entrypoint-initdb.d (*.sql, *.sh) run once, after the database is created.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  # As root: own the data and socket directories, then start again as postgres.
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  chmod 700 "$PGDATA"
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

  # A temporary server on a private socket only, so that pg_isready (the health check) stays false until
  # the real server below is up.
  sockdir=$(mktemp -d)
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$sockdir" start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h "$sockdir" -U "$user" -d postgres --set db="$db" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -h "$sockdir" -U "$user" -d "$db" -f "$f" ;;
      *.sh) echo "running $f"; PGHOST=$sockdir PGUSER=$user PGDATABASE=$db bash "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  rmdir "$sockdir"
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
