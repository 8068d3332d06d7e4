#!/usr/bin/env bash
# Usage: scripts/run.sh   — the one command that sets up and runs the server (SQLite by default).
# Installs dependencies, builds the server alone in Release mode (no tests) in build-release/, and starts
# `llm-proxy server` in the foreground with the environment you give it. The build is quiet; if it fails, its
# output is printed and nothing starts. Without MANAGEMENT_TOKEN it generates one, stores it in
# ./data/management_token (mode 0600) and reuses it on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=build-release
mkdir -p "$build_dir"
echo "run: building llm-proxy (Release) in $build_dir/ ..."
if ! BUILD_TYPE=Release TARGET=llm-proxy CMAKE_ARGS="${CMAKE_ARGS:-} -DLLMPROXY_BUILD_TESTS=OFF" \
    scripts/build.sh "$build_dir" >"$build_dir/build.log" 2>&1; then
  cat "$build_dir/build.log" >&2
  echo "run: the build failed (output above, also in $build_dir/build.log)" >&2
  exit 1
fi
mkdir -p data
if [ -z "${MANAGEMENT_TOKEN:-}" ]; then
  token_file=data/management_token
  if [ ! -s "$token_file" ]; then
    (umask 077 && openssl rand -hex 32 >"$token_file")
    echo "run: generated a management token in $token_file"
  fi
  chmod 600 "$token_file"
  MANAGEMENT_TOKEN=$(cat "$token_file")
  export MANAGEMENT_TOKEN
fi
port=${LISTEN_ADDR:-:8080}
port=${port##*:}
cat <<EOT
run: starting llm-proxy on ${LISTEN_ADDR:-:8080} (DB_DRIVER=${DB_DRIVER:-sqlite})
run: management token: $MANAGEMENT_TOKEN
run: next steps:
  open http://localhost:$port/admin/ and sign in with the management token (the admin web UI), or:
  curl -s localhost:$port/live
  curl -s -H "Authorization: Bearer \$MANAGEMENT_TOKEN" -d '{"name":"demo","api_key":"sk-your-openai-key"}' localhost:$port/manage/projects
EOT
exec "$build_dir/apps/llm-proxy/llm-proxy" server
