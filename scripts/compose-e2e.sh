#!/usr/bin/env bash
# Usage: scripts/compose-e2e.sh   (as root, Debian bookworm host; no image registry needed)
#
# deploy/docker-compose.yml tested end to end in a real Docker engine, as a user runs it:
#   1. installs what it needs (apt-get: docker.io docker-compose debootstrap curl openssl python3);
#   2. starts its own dockerd (`--iptables=false --bridge=none`, under `nice -n 15`) unless one answers, and stops
#      only the one it started;
#   3. builds the base images debian:bookworm and debian:bookworm-slim with debootstrap from the host's Debian
#      mirror (skipped when they exist), the stand-ins for postgres:15 and redis:7 (tests/support/compose/, skipped
#      when a real image of that name exists), and the project image llm-proxy:latest (deploy/Dockerfile; Docker's
#      layer cache makes an unchanged tree a no-op);
#   4. in a temp copy of deploy/: `cp .env.example .env`, sets the secrets, `docker-compose up -d`, and checks
#      health, /ready, a project + token + /v1 call through the repository's mock-upstream, data surviving
#      `down` + `up`, the hardening (read-only, uid 10001), the sqlite profile, the redis profile (response cache
#      stored then hit), and that `down -v` leaves nothing behind.
# Any failed check prints the reason and the containers' logs and exits 1. Timings per phase are printed.
#
# Env: COMPOSE_E2E_DIR   work/cache directory (default /var/tmp/llmproxy-compose-e2e)
#      DEBIAN_MIRROR     mirror for debootstrap (default: the one in /etc/apt/sources.list*)
#      MOCK_UPSTREAM     mock-upstream binary (default: build/tests/support/mock-upstream, built when missing)
#      KEEP=1            leave the compose project running after a failure, for inspection
#      SKIP_SETUP=1      do not run apt-get
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${COMPOSE_E2E_DIR:-/var/tmp/llmproxy-compose-e2e}
project=llmproxye2e
mkdir -p "$work"

t_start=$(date +%s)
t_phase=$t_start
phase() {
  local now
  now=$(date +%s)
  echo "== [$((now - t_phase))s, total $((now - t_start))s] done; next: $*"
  t_phase=$now
}
say() { echo "-- $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- 1. setup -----------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and may start dockerd)"
if [ -z "${SKIP_SETUP:-}" ]; then
  need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker-compose >/dev/null || need+=(docker-compose)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v curl >/dev/null || need+=(curl)
  command -v openssl >/dev/null || need+=(openssl)
  command -v python3 >/dev/null || need+=(python3)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
fi

# ---- 2. the Docker engine -----------------------------------------------------------------------------------
own_dockerd_pid=
cleanup_dockerd() {
  if [ -n "$own_dockerd_pid" ]; then
    say "stopping the dockerd this script started (pid $own_dockerd_pid)"
    kill "$own_dockerd_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$own_dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
}
if ! docker info >/dev/null 2>&1; then
  phase "starting dockerd"
  nice -n 15 dockerd --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
  own_dockerd_pid=$!
  trap cleanup_dockerd EXIT
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; fail "dockerd did not come up"; }
fi

# The legacy builder: no buildx plugin needed. Builds use the host network (the daemon may run without a bridge).
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
build() {  # docker build arguments...; the output goes to $work/build.log, shown on failure
  nice -n 15 docker build --network host "$@" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "docker build $* failed"; }
}

# ---- 3. images ----------------------------------------------------------------------------------------------
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -Eo '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^[:space:]]+' | grep -Eo '[a-z]+://[^[:space:]]+' |
    grep -v -- '-security' | grep -E '/debian/?$' | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

phase "base images debian:bookworm, debian:bookworm-slim"
if ! docker image inspect debian:bookworm >/dev/null 2>&1 || ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  mirror=$(debian_mirror)
  say "debootstrap --variant=minbase bookworm from $mirror"
  rootfs="$work/rootfs"
  rm -rf "$rootfs" "$rootfs-slim"
  nice -n 15 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    echo "deb ${mirror%/debian}/debian-security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  # Like the official images: no apt caches kept, no recommends.
  printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm >/dev/null
  # slim: the same system without documentation, manuals and translations, and dpkg told not to install them.
  cp -a "$rootfs" "$rootfs-slim"
  rm -rf "$rootfs-slim"/usr/share/doc/* "$rootfs-slim"/usr/share/man/* "$rootfs-slim"/usr/share/info/* \
    "$rootfs-slim"/usr/share/locale/* "$rootfs-slim"/usr/share/lintian "$rootfs-slim"/usr/share/linda
  cat >"$rootfs-slim/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  tar -C "$rootfs-slim" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs" "$rootfs-slim"
else
  say "cached"
fi

# A stand-in is built and tagged only when no real image of that name exists (one carrying our label is ours).
stand_in() {
  local tag=$1 dir=$2 label
  if docker image inspect "$tag" >/dev/null 2>&1; then
    label=$(docker image inspect -f '{{index .Config.Labels "org.llm-proxy.stand-in"}}' "$tag")
    if [ -z "$label" ]; then say "$tag exists and is not a stand-in: used as is"; return; fi
  fi
  build -t "$tag" "$dir"
}
phase "stand-ins postgres:15, redis:7"
stand_in postgres:15 tests/support/compose/postgres
stand_in redis:7 tests/support/compose/redis

phase "project image llm-proxy:latest (deploy/Dockerfile)"
# The context is the tracked and untracked-but-not-ignored files: never build directories.
git ls-files -co --exclude-standard -z | tar --null -T - -c >"$work/context.tar"
build -f deploy/Dockerfile -t llm-proxy:latest - <"$work/context.tar"
rm -f "$work/context.tar"
size=$(docker image inspect --format '{{.Size}}' llm-proxy:latest)
say "llm-proxy:latest: $size bytes ($((size / 1000000)) MB)"

# ---- mock upstream ------------------------------------------------------------------------------------------
mock=${MOCK_UPSTREAM:-$repo/build/tests/support/mock-upstream}
if [ ! -x "$mock" ]; then
  phase "building mock-upstream"
  mock=$repo/build-compose-e2e/tests/support/mock-upstream
  BUILD_TYPE=Release TARGET=mock-upstream nice -n 15 scripts/build.sh build-compose-e2e >/dev/null
fi
mock_port=18999

# ---- 4. the compose file, as a user runs it -----------------------------------------------------------------
phase "compose: postgres + llm-proxy"
tmp=$(mktemp -d "$work/run.XXXXXX")
cp -a deploy "$tmp/deploy"
cd "$tmp/deploy"
export COMPOSE_PROJECT_NAME=$project
dc() { docker-compose --profile sqlite --profile redis "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
sqlite_port=$(free_port)
mgmt=$(openssl rand -hex 32)
cp .env.example .env
sed -i -e "s|^MANAGEMENT_TOKEN=.*|MANAGEMENT_TOKEN=$mgmt|" \
  -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(openssl rand -hex 16)|" \
  -e "s|^ENCRYPTION_KEY=.*|ENCRYPTION_KEY=$(openssl rand -base64 32)|" .env
cat >>.env <<EOF
LLM_PROXY_PORT=$port
LLM_PROXY_SQLITE_PORT=$sqlite_port
# the upstream: no provider file, so OPENAI_API_URL (the mock, in the proxy container's network namespace)
API_CONFIG_PATH=/app/config/absent.yaml
OPENAI_API_URL=http://127.0.0.1:$mock_port
EOF

on_exit() {
  local rc=$?
  set +e
  if [ $rc -ne 0 ]; then
    echo "==== compose-e2e FAILED (exit $rc); state and logs follow" >&2
    dc ps >&2
    dc logs --no-color --tail=80 >&2
    docker logs "$project-mock" 2>&1 | tail -20 >&2
  fi
  if [ $rc -ne 0 ] && [ -n "${KEEP:-}" ]; then
    echo "KEEP=1: left running; clean up with: cd $tmp/deploy && COMPOSE_PROJECT_NAME=$project docker-compose --profile sqlite --profile redis down -v" >&2
  else
    docker rm -f "$project-mock" >/dev/null 2>&1
    [ -d "$tmp/deploy" ] && (cd "$tmp/deploy" && dc down -v --remove-orphans >/dev/null 2>&1)
    rm -rf "$tmp"
    cleanup_dockerd
  fi
  exit $rc
}
trap on_exit EXIT

cid() { dc ps -q "$1"; }
wait_healthy() {  # service...
  local s c st
  for s in "$@"; do
    st=
    for _ in $(seq 120); do
      c=$(cid "$s")
      [ -n "$c" ] && st=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$c")
      [ "$st" = healthy ] && break
      sleep 1
    done
    [ "$st" = healthy ] || fail "service $s is not healthy after 120s (status: ${st:-no container})"
    say "$s healthy"
  done
}
# http METHOD URL [curl args...]: prints the body, sets $code and $headers (file).
headers=$tmp/headers
http() {
  local method=$1 url=$2
  shift 2
  code=$(curl -sS -o "$tmp/body" -D "$headers" -w '%{http_code}' -X "$method" "$url" "$@") || code=000
  cat "$tmp/body"
}
expect() {  # expect CODE what
  [ "$code" = "$1" ] || fail "$2: HTTP $code, expected $1; body: $(head -c 500 "$tmp/body")"
}
json() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }
mgmt_auth=(-H "Authorization: Bearer $mgmt" -H 'Content-Type: application/json')
start_mock() {  # in the network namespace of the proxy container: it is 127.0.0.1:$mock_port there
  docker rm -f "$project-mock" >/dev/null 2>&1 || true
  docker run -d --name "$project-mock" --network "container:$(cid "$1")" --read-only \
    -v "$mock:/usr/local/bin/mock-upstream:ro" debian:bookworm mock-upstream --port "$mock_port" >/dev/null
  for _ in $(seq 50); do docker logs "$project-mock" 2>/dev/null | grep -q '^PORT ' && return; sleep 0.2; done
  fail "mock-upstream did not start: $(docker logs "$project-mock" 2>&1 | tail -5)"
}
chat() {  # chat BASE TOKEN [curl args]
  local base=$1 tok=$2
  shift 2
  http POST "$base/v1/chat/completions" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello from compose-e2e"}]}' "$@"
}

dc config -q || fail "docker-compose config rejects the file"
volumes_before=$(docker volume ls -q | sort)
docker-compose up -d
wait_healthy postgres llm-proxy
base=http://127.0.0.1:$port
http GET "$base/ready" >/dev/null
expect 200 "/ready"
say "/ready 200"

c_proxy=$(cid llm-proxy)
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c_proxy")" = true ] || fail "llm-proxy root filesystem is not read-only"
uid=$(docker exec "$c_proxy" id -u)
[ "$uid" = 10001 ] || fail "llm-proxy runs as uid $uid, expected 10001"
grep -q '^Uid:[[:space:]]*10001' <(docker exec "$c_proxy" cat /proc/1/status) || fail "llm-proxy pid 1 is not uid 10001"
if docker exec "$c_proxy" sh -c 'touch /usr/local/bin/x' 2>/dev/null; then fail "llm-proxy could write to /usr/local/bin"; fi
say "llm-proxy: read-only root filesystem, uid 10001"

http POST "$base/manage/projects" "${mgmt_auth[@]}" -d '{"name":"compose-e2e","api_key":"sk-compose-e2e-0123456789abcdef"}' >/dev/null
expect 201 "create project"
project_id=$(json id <"$tmp/body")
http POST "$base/manage/tokens" "${mgmt_auth[@]}" -d "{\"project_id\":\"$project_id\",\"duration_minutes\":60}" >/dev/null
expect 200 "create token"
token=$(json token <"$tmp/body")
start_mock llm-proxy
chat "$base" "$token" >/dev/null
expect 200 "/v1/chat/completions through the mock"
[ "$(json id <"$tmp/body")" = chatcmpl-mock ] || fail "the answer is not the mock's: $(head -c 500 "$tmp/body")"
say "project, token, /v1/chat/completions through mock-upstream: 200"

phase "compose: down + up keeps the data"
docker rm -f "$project-mock" >/dev/null
docker-compose down
docker-compose up -d
wait_healthy postgres llm-proxy
http GET "$base/manage/projects/$project_id" "${mgmt_auth[@]}" >/dev/null
expect 200 "the project after down + up"
name=$(json name <"$tmp/body")
[ "$name" = compose-e2e ] || fail "project name after down + up: $name"
start_mock llm-proxy
chat "$base" "$token" >/dev/null
expect 200 "the token after down + up"
say "project and token survived down + up"

phase "compose: sqlite profile"
docker-compose --profile sqlite up -d llm-proxy-sqlite
wait_healthy llm-proxy-sqlite
sbase=http://127.0.0.1:$sqlite_port
http GET "$sbase/ready" >/dev/null
expect 200 "sqlite /ready"
[ "$(docker exec "$(cid llm-proxy-sqlite)" id -u)" = 10001 ] || fail "llm-proxy-sqlite does not run as uid 10001"
http POST "$sbase/manage/projects" "${mgmt_auth[@]}" -d '{"name":"compose-e2e-sqlite","api_key":"sk-compose-e2e-0123456789abcdef"}' >/dev/null
expect 201 "sqlite: create project"
http GET "$sbase/health" >/dev/null
grep -q '"sqlite"' "$tmp/body" || say "note: /health does not name the driver: $(head -c 300 "$tmp/body")"
say "sqlite profile: healthy, /ready 200, project created"

phase "compose: redis profile (shared response cache)"
printf 'HTTP_CACHE_BACKEND=redis\nREDIS_CACHE_URL=redis://redis:6379/0\n' >>.env
docker-compose --profile redis up -d
wait_healthy redis llm-proxy
c_redis=$(cid redis)
grep -q '^Uid:[[:space:]]*0[[:space:]]' <(docker exec "$c_redis" cat /proc/1/status) && fail "redis runs as root"
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c_redis")" = true ] || fail "redis root filesystem is not read-only"
http GET "$base/health" >/dev/null
expect 200 "/health with the redis backend"
python3 - "$tmp/body" <<'EOF' || fail "/health cache: $(head -c 500 "$tmp/body")"
import json, sys
c = json.load(open(sys.argv[1]))["cache"]
sys.exit(0 if c.get("backend") == "redis" and c.get("status") == "up" else 1)
EOF
start_mock llm-proxy
for want in stored hit; do
  chat "$base" "$token" -H 'Cache-Control: public, max-age=60' >/dev/null
  expect 200 "cached POST ($want)"
  got=$(tr -d '\r' <"$headers" | awk -F': ' 'tolower($1)=="x-proxy-cache"{print $2}')
  [ "$got" = "$want" ] || fail "X-PROXY-CACHE is '$got', expected '$want'"
done
keys=$(docker exec "$c_redis" redis-cli --scan --pattern 'llmproxy:cache:*' | wc -l)
[ "$keys" -ge 1 ] || fail "no llmproxy:cache:* key in redis"
say "redis profile: /health cache redis up, X-PROXY-CACHE stored then hit, $keys key(s) in redis"

phase "compose: down -v"
docker rm -f "$project-mock" >/dev/null
dc down -v
left_c=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
left_v=$(comm -13 <(echo "$volumes_before") <(docker volume ls -q | sort) | tr '\n' ' ')
left_n=$(docker network ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left_c$left_v$left_n" ] || fail "left behind: containers [$left_c] volumes [$left_v] networks [$left_n]"
say "nothing left behind"

phase "finished"
echo "compose-e2e: PASS in $(($(date +%s) - t_start))s; llm-proxy:latest is $size bytes"
