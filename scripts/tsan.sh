#!/usr/bin/env bash
# Usage: scripts/tsan.sh   — ThreadSanitizer run of the server, proxy, auth and database tests (SPEC §10).
# Builds llm-proxy, mock-upstream and the three test executables with -DLLMPROXY_TSAN=ON (GCC, -O1 -g) in
# build-tsan/, then runs the selected ctest cases inside a throwaway PostgreSQL cluster and a throwaway redis-server
# (the contract executable holds the Redis cache backend's cases), so both drivers and Redis are
# covered. The integration cases start the TSan-built llm-proxy with IO_THREADS=2 (tests/integration/
# binary_fixture.hpp), and the child inherits TSAN_OPTIONS (tests/support/process.cpp).
# A data race (or any TSan report) fails the run: halt_on_error=1 aborts the process that saw it, every report is
# written to build-tsan/tsan-reports/ and printed at the end, and any report there fails the script even when the
# test around it passed. Known false positives of uninstrumented libraries live in tests/tsan.supp.
# Env: BUILD_DIR (default build-tsan), JOBS (default nproc), CMAKE_ARGS (extra -D options),
#      TSAN_FILES (override the selection: "<executable label>:<test file>" words, e.g. "unit:auth_token_service_test";
#      "contract:*" selects the whole contract executable), CTEST_ARGS (extra ctest arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build-tsan}
jobs=${JOBS:-$(nproc)}

# What runs: the server (HTTP front end, its hygiene rules, connection cap and shutdown), the proxy and its
# upstream client, auth (token service, single-flight lookups, stale-if-error, usage accumulator, caches), the
# DB task queue, audit (coalescing), readiness and health probes, the management API over the token service,
# every database contract case on SQLite and PostgreSQL, the cache backends (contract:*; the memory backend's own
# cases), the response cache through the binary on both backends, and the rate limiters (the memory one's own
# cases; the Redis one's are contract:*).
default_files="
  unit:auth_token_service_test unit:auth_floods_test unit:auth_stale_if_error_test unit:db_executor_test
  unit:auth_quota_coalescer_test unit:audit_auditor_test unit:audit_coalescing_test unit:lifecycle_readiness_test unit:upstream_circuit_breaker_test
  contract:*
  integration:server_http_test integration:server_hygiene_test integration:proxy_pipeline_test
  integration:proxy_hygiene_test integration:proxy_token_floods_test integration:proxy_database_outage_test
  integration:upstream_client_test integration:admin_api_test integration:admin_audit_floods_test
  integration:ops_endpoints_test integration:ops_probes_test integration:proxy_quota_coalescing_test
  unit:cache_memory_backend_test integration:proxy_response_cache_test integration:proxy_response_cache_redis_test
  unit:ratelimit_window_test unit:events_event_log_test integration:proxy_usage_test"
files=${TSAN_FILES:-$default_files}

echo "tsan: building in $build_dir/ (ThreadSanitizer, -O1)"
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DLLMPROXY_TSAN=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$jobs" --target llm-proxy mock-upstream \
  llmproxy_unit_tests llmproxy_contract_tests llmproxy_integration_tests

# Cases tagged [memory] assert resident-set bounds; TSan's shadow memory multiplies RSS, so they run in the other
# stages (README test command, ASan) and not here.
# ctest names are "<label>:<TEST_CASE name>"; Catch knows which file a case is in (`-#` adds a [#file] tag).
# Resolve the selection to ctest test numbers (-I), which needs no regex escaping of the case names.
declare -A wanted=()
declare -A exe_of=([unit]=llmproxy_unit_tests [contract]=llmproxy_contract_tests [integration]=llmproxy_integration_tests)
for label in unit contract integration; do
  tags=()
  all=""
  for f in $files; do
    [ "${f%%:*}" = "$label" ] || continue
    if [ "${f#*:}" = "*" ]; then all=1; else tags+=("[#${f#*:}]~[memory]"); fi
  done
  [ -n "$all" ] || [ ${#tags[@]} -gt 0 ] || continue
  spec=("~[memory]")
  if [ -z "$all" ]; then spec=(-# "$(IFS=,; echo "${tags[*]}")"); fi
  while IFS= read -r name; do
    [ -n "$name" ] && wanted["$label:$name"]=1
  done < <("$build_dir/tests/${exe_of[$label]}" --list-test-names-only "${spec[@]}" | tr -d '\r')
done
numbers=()
while IFS= read -r line; do
  if [[ $line =~ ^[[:space:]]*Test[[:space:]]+#([0-9]+):[[:space:]](.*)$ ]] && [ -n "${wanted[${BASH_REMATCH[2]}]:-}" ]; then
    numbers+=("${BASH_REMATCH[1]}")
  fi
done < <(ctest --test-dir "$build_dir" -N)
if [ ${#numbers[@]} -eq 0 ]; then
  echo "tsan: the selection matches no test (TSAN_FILES=$files)" >&2
  exit 1
fi
echo "tsan: running ${#numbers[@]} test cases"

reports="$PWD/$build_dir/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
# halt_on_error: the first race aborts the process; exitcode: a report at exit fails it too; log_path: reports go
# to files (also from the llm-proxy children, whose output a test may not show).
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 log_path=$reports/tsan suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
status=0
# shellcheck disable=SC2086
scripts/with-redis.sh scripts/with-postgres.sh ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" \
  -I "0,0,0,$(IFS=,; echo "${numbers[*]}")" ${CTEST_ARGS:-} || status=$?

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  for r in $found; do
    echo "=== tsan report: $r"
    cat "$r"
  done
  echo "tsan: $(echo "$found" | wc -l) ThreadSanitizer report(s), above" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "tsan: tests failed (no ThreadSanitizer report was written)" >&2
  exit "$status"
fi
echo "tsan: ${#numbers[@]} test cases clean under ThreadSanitizer"
