#!/usr/bin/env bash
# Installs the official OpenAI Node SDK into a cache directory for the SDK compatibility test
# (tests/integration/sdk_openai_node_test.cpp). Idempotent: an install of the pinned version is kept.
# Node.js comes from the machine, or from Debian (nodejs + npm) when it has none.
#   LLMPROXY_NPM_PREFIX  where node_modules goes (default: ~/.cache/llm-proxy/npm)
set -euo pipefail

version=4.104.0   # the last 4.x: runs on Debian's Node.js 18 as well as on newer ones
prefix=${LLMPROXY_NPM_PREFIX:-${HOME}/.cache/llm-proxy/npm}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-sdk: installing nodejs and npm from Debian"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

installed=$(node -p "require('$prefix/node_modules/openai/package.json').version" 2>/dev/null || true)
if [ "$installed" = "$version" ]; then
  echo "setup-sdk: openai $version present in $prefix"
  exit 0
fi
mkdir -p "$prefix"
echo "setup-sdk: installing openai@$version into $prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "openai@$version" >/dev/null
echo "setup-sdk: done"
