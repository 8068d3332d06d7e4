#!/usr/bin/env bash
# Installs every build, test and runtime dependency of llm-proxy from Debian 12 packages.
# Idempotent: packages already present are skipped, so re-running costs one dpkg query.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates curl procps
  libboost1.81-dev            # Asio + Beast (header-only in 1.81)
  libssl-dev                  # TLS, SHA-256, AES-256-GCM, RAND_bytes
  libpqxx-dev libpq-dev       # PostgreSQL driver (libpqxx 6.4)
  libsqlitecpp-dev libsqlite3-dev sqlite3   # sqlite3 CLI: tests inspect rows
  nlohmann-json3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libmimalloc-dev             # the server's allocator (not in sanitizer builds): ~14% fewer instructions per request
  catch2                      # Catch2 v2.13
  postgresql-15 postgresql-client-15   # throwaway test clusters (scripts/with-postgres.sh)
  libhiredis-dev              # the Redis cache backend's client (hiredis 0.14, driven from Asio)
  redis-server                # throwaway Redis for tests (scripts/with-redis.sh)
  gcovr                       # coverage gate
  clang libclang-rt-14-dev    # libFuzzer targets (scripts/fuzz.sh); the runtime is only a Recommends of clang
  llvm                        # llvm-symbolizer: symbolized sanitizer stacks (fuzz reproducers)
  docker-compose              # `docker-compose config` validation of deploy/ (no engine needed)
  nginx-light wrk             # bench/ harness (bench/run.sh)
  iproute2 openssl python3    # bench/run.sh: ss (ports, open connections), the per-run certificate, its clients
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# --no-install-recommends keeps the PostgreSQL package from pulling in extras we never use.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian postgresql package starts a system cluster; tests never use it, and it would hold port 5432.
# Likewise redis-server starts a system Redis on 6379: tests start their own (scripts/with-redis.sh), so stop it.
if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "setup: done"
