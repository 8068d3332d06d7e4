#!/bin/bash
# Entrypoint of the redis:7 stand-in (see Dockerfile). As the official image: options alone mean redis-server;
# started as root with SETUID and SETGID available, it runs redis-server as `redis`; otherwise as it was started.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi

# The official image is built with protected mode off by default (in a container, clients come from other
# addresses than loopback; the network is the boundary). Debian's binary has it on: turn it off the same way,
# as a default only, i.e. when neither the arguments nor a config file given as the first argument set it.
if [ "$1" = redis-server ] && [[ " $* " != *" --protected-mode "* ]] &&
  { [ $# -lt 2 ] || [ "${2#-}" != "$2" ] || ! grep -qsi '^[[:space:]]*protected-mode' "$2"; }; then
  set -- "$@" --protected-mode no
fi

has_cap() { setpriv --dump | grep -q "Capability bounding set:.*\b$1\b"; }

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ] && has_cap setuid && has_cap setgid; then
  find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi

exec "$@"
