#!/usr/bin/env bash
# Usage: scripts/test.sh   — the one command that sets up and runs every test.
# Installs dependencies (scripts/setup.sh; the OpenAI Node SDK, puppeteer-core and Chromium through
# scripts/setup-sdk.sh), builds, then runs the whole ctest suite (unit, contract, integration, the admin UI in
# headless Chromium) inside a throwaway PostgreSQL cluster (scripts/with-postgres.sh) and a throwaway redis-server
# (scripts/with-redis.sh), so SQLite, PostgreSQL and Redis cases run together.
# Env: BUILD_DIR (default build), BUILD_TYPE, CMAKE_ARGS, JOBS, CTEST_ARGS (e.g. "-L unit").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-sdk.sh   # the OpenAI Node SDK (SDK test), puppeteer-core and Chromium (admin UI browser test)
build_dir=${BUILD_DIR:-build}
scripts/build.sh "$build_dir"
# shellcheck disable=SC2086
scripts/with-redis.sh scripts/with-postgres.sh ctest --test-dir "$build_dir" --output-on-failure -j"${JOBS:-$(nproc)}" ${CTEST_ARGS:-}
