#!/usr/bin/env bash
# Usage: scripts/build.sh [BUILD_DIR]  — configure (once) and build with the host's cores.
# Env: BUILD_TYPE (default RelWithDebInfo), CMAKE_ARGS (extra -D options), JOBS (default nproc),
#      TARGET (build only this target, e.g. llm-proxy; default: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"${JOBS:-$(nproc)}" ${TARGET:+--target "$TARGET"}
