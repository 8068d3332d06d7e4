#pragma once
/// Operational endpoints (SPEC §8): /live, /ready, /health.
#include <atomic>
#include <chrono>
#include <string>

#include "llmproxy/server/router.hpp"

namespace llmproxy::db {
class Database;
class Executor;
}  // namespace llmproxy::db

namespace llmproxy::metrics {
class Registry;
}

namespace llmproxy::ops {

/// Boot state shared by the boot thread (writer) and the I/O threads (readers). `database` and `executor` are
/// written once before `ready` is released and never change afterwards.
struct BootState {
  std::atomic<bool> ready{false};
  db::Database* database = nullptr;
  db::Executor* executor = nullptr;
  std::string driver;  // "sqlite" / "postgres", known before boot completes
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

/// The answer for any request that needs the database before boot finished: 503 service_unavailable.
server::Response not_ready_response();

/// Registers /live, /ready and /health on `router`. `state` must outlive the router.
void register_routes(server::Router& router, BootState& state);

/// Registers the Prometheus endpoint at `path` (METRICS_PATH). `registry` must outlive the router.
void register_metrics(server::Router& router, const std::string& path, const metrics::Registry& registry);

}  // namespace llmproxy::ops
