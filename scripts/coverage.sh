#!/usr/bin/env bash
# Usage: scripts/coverage.sh   — line coverage of lib/ over the full suite (SQLite and PostgreSQL).
# Builds an instrumented tree in build-coverage, runs every test inside a throwaway PostgreSQL cluster, prints the
# gcovr summary, writes build-coverage/coverage.txt, and fails below COVERAGE_MIN percent (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build-coverage}
min=${COVERAGE_MIN:-90}
BUILD_TYPE=Debug CMAKE_ARGS="-DLLMPROXY_COVERAGE=ON" scripts/build.sh "$build_dir"
find "$build_dir" -name '*.gcda' -delete
# Test failures are reported by the test command; here we only measure, so run the suite to the end.
scripts/with-postgres.sh ctest --test-dir "$build_dir" --output-on-failure -j"${JOBS:-$(nproc)}" || true
gcovr --root . --object-directory "$build_dir" --filter 'lib/' \
  --exclude-unreachable-branches --exclude-throw-branches \
  --print-summary --txt "$build_dir/coverage.txt" --fail-under-line "$min"
