#!/usr/bin/env bash
# Usage: scripts/coverage.sh   — line coverage of lib/ over the full suite (SQLite and PostgreSQL).
# Builds an instrumented tree (Debug, gcov) in build-coverage, runs every test inside a throwaway PostgreSQL
# cluster and a throwaway redis-server, prints the gcovr summary, writes <build>/coverage.txt, and fails below COVERAGE_MIN percent (default
# 90) or when a test fails.
# Env: BUILD_DIR, COVERAGE_MIN, JOBS, and SANITIZE=1 to add ASan + UBSan to the same build, so one instrumented
# run is both the sanitizer check and the coverage measurement (what .ci/run does; ASAN_OPTIONS, LSAN_OPTIONS and
# UBSAN_OPTIONS are passed through to the tests and to the llm-proxy children they start).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-sdk.sh   # the OpenAI Node SDK for the SDK compatibility test
build_dir=${BUILD_DIR:-build-coverage}
min=${COVERAGE_MIN:-90}
options="-DLLMPROXY_COVERAGE=ON"
if [ "${SANITIZE:-0}" = 1 ]; then options="$options -DLLMPROXY_SANITIZE=ON"; fi
BUILD_TYPE=Debug CMAKE_ARGS="${CMAKE_ARGS:-} $options" scripts/build.sh "$build_dir"
find "$build_dir" -name '*.gcda' -delete
# The whole suite runs to the end so the coverage is measured even when a test fails; the failure still fails
# the script afterwards.
status=0
scripts/with-redis.sh scripts/with-postgres.sh ctest --test-dir "$build_dir" --output-on-failure -j"${JOBS:-$(nproc)}" || status=$?
gcovr --root . --object-directory "$build_dir" --filter 'lib/' \
  --exclude-unreachable-branches --exclude-throw-branches \
  --print-summary --txt "$build_dir/coverage.txt" --fail-under-line "$min"
if [ "$status" -ne 0 ]; then
  echo "coverage: tests failed (see above); coverage was measured over the failing run" >&2
  exit "$status"
fi
