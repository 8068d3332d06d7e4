#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   — build the libFuzzer targets and fuzz each briefly.
# Builds fuzz/ with clang (-fsanitize=fuzzer,address,undefined) in build-fuzz/, then runs every target (or the
# ones named) for SECONDS_PER_TARGET (default 30) on a temporary copy of its seed corpus fuzz/corpus/<target>/,
# so runs never write into the repository. Fails on any crash, leak, timeout or out-of-memory, printing the
# reproducer: build-fuzz/artifacts/<target>/crash-... (re-run it with `build-fuzz/<target> <file>`).
# Env: JOBS (build parallelism, default nproc), CMAKE_ARGS (extra -D options, e.g. a compiler launcher),
#      FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seconds=${1:-30}
[ $# -gt 0 ] && shift
build_dir=${BUILD_DIR:-build-fuzz}

echo "fuzz: building in $build_dir/ (clang, libFuzzer + ASan + UBSan)"
# shellcheck disable=SC2086
cmake -S fuzz -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"${JOBS:-$(nproc)}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets <"$build_dir/targets.txt"
fi

work=$(mktemp -d /tmp/llmproxy-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  [ -n "$t" ] || continue
  if [ ! -d "fuzz/corpus/$t" ] || [ -z "$(ls -A "fuzz/corpus/$t")" ]; then
    echo "fuzz: $t has no seed corpus in fuzz/corpus/$t/" >&2
    failed+=("$t")
    continue
  fi
  mkdir -p "$work/$t" "$build_dir/artifacts/$t"
  cp -r "fuzz/corpus/$t/." "$work/$t/"
  log="$build_dir/logs/$t.log"
  mkdir -p "$(dirname "$log")"
  echo "fuzz: $t for ${seconds}s ($(ls "fuzz/corpus/$t" | wc -l) seeds)"
  # -timeout: one input running longer than 10 s is a hang; -rss_limit_mb: more than 2 GB is a memory bug.
  # shellcheck disable=SC2086
  if "$build_dir/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build_dir/artifacts/$t/" ${FUZZ_ARGS:-} "$work/$t" >"$log" 2>&1; then
    echo "fuzz: $t ok: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
         "corpus $(ls "$work/$t" | wc -l) inputs"
  else
    failed+=("$t")
    tail -n 60 "$log" >&2
    reproducer=$(grep -oE "(Test unit|artifact) written to [^ ]+" "$log" | awk '{print $NF}' | tail -n 1 || true)
    echo "fuzz: $t FAILED (log: $log; reproducer: ${reproducer:-none written}; re-run: $build_dir/$t ${reproducer:-<input>})" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets clean"
