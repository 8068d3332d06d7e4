#pragma once
/// Operational endpoints (SPEC §8): /live, /ready, /health and the Prometheus endpoint, the database pool gauges,
/// and the server hooks that count requests.
#include <functional>
#include <string>

#include "llmproxy/lifecycle/readiness.hpp"
#include "llmproxy/server/router.hpp"
#include "llmproxy/server/server.hpp"

namespace llmproxy::db {
class Database;
class Executor;
}  // namespace llmproxy::db

namespace llmproxy::metrics {
class Registry;
}
namespace llmproxy::cache {
class Backend;
}

namespace llmproxy::ops {

/// What /ready, /health and the pool gauges probe; published once boot completed, both non-null then.
struct Deps {
  db::Database* database = nullptr;
  db::Executor* executor = nullptr;
  /// Removes secrets (the DATABASE_URL password) from a driver message before it is logged; may be empty.
  std::function<std::string(std::string)> scrub;
  /// The response cache, shown by /health (null: disabled). A failing cache makes the status "degraded" but
  /// keeps 200: requests are still served, without it.
  const cache::Backend* cache = nullptr;
};

/// Registers /live, /ready and /health on `router`. Until `deps` is published, /live answers 200, /ready 503
/// `{"status":"starting"}` and /health 503 with the database "down" ("starting"). `driver` ("sqlite" or
/// "postgres") is shown by /health from the start. What `deps` refers to must outlive the router.
///
/// /ready and /health share one database check cached for one second and run by one caller at a time
/// (the others wait for its result), so probes cost at most about one database round trip per second whatever
/// their rate; the round trips are counted in llm_proxy_health_checks_total (registered in `registry`). A
/// failed check is shown by /health as a fixed category ("unreachable", "timeout", "pool_exhausted", "error"),
/// never the driver's message (it names hosts, users, databases); the message is logged, scrubbed, when the
/// state changes.
void register_routes(server::Router& router, lifecycle::Published<const Deps> deps, std::string driver,
                     metrics::Registry& registry);

/// Registers the Prometheus endpoint at `path` (METRICS_PATH) and, with the same text, at `path` + "/prometheus"
/// (the reference's Prometheus path). `registry` must outlive the router.
void register_metrics_endpoint(server::Router& router, const std::string& path, const metrics::Registry& registry);

/// Registers the llm_proxy_db_pool_* gauges; they read 0 until `deps` is published.
void register_pool_metrics(metrics::Registry& registry, lifecycle::Published<const Deps> deps);

/// Server hooks that count open connections, in-flight requests and finished requests (by route and status, with
/// their duration) in `registry`, which must outlive the server.
server::ServerHooks request_metrics_hooks(metrics::Registry& registry);

}  // namespace llmproxy::ops
