#include "llmproxy/ops/ops.hpp"

#include <nlohmann/json.hpp>

#include "llmproxy/db/database.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/metrics/metrics.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::ops {

namespace net = boost::asio;

server::Response not_ready_response() {
  return server::Response::error(503, "service_unavailable", "the server is starting: the database is not ready yet");
}

namespace {

/// Runs the database health check on the DB pool (it is a blocking round trip).
net::awaitable<db::HealthReport> check(BootState& state) {
  if (!state.ready.load(std::memory_order_acquire)) co_return db::HealthReport{};
  db::Database* database = state.database;
  // A named lambda: GCC 12 double-destroys lambda temporaries inside co_await expressions (see executor.hpp).
  auto work = [database] { return database->health(); };
  co_return co_await state.executor->run(std::move(work));
}

nlohmann::json pool_json(const db::PoolStats& p) {
  return {{"size", p.size}, {"open", p.open}, {"in_use", p.in_use}, {"idle", p.idle}, {"waiting", p.waiting}};
}

}  // namespace

void register_routes(server::Router& router, BootState& state) {
  router.add_exact("/live", [](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response response = server::Response::json(200, R"({"status":"alive"})");
    co_await ex.respond(std::move(response));
  });

  router.add_exact("/ready", [&state](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    if (!state.ready.load(std::memory_order_acquire)) {
      server::Response response = server::Response::json(503, R"({"status":"starting"})");
      co_await ex.respond(std::move(response));
      co_return;
    }
    auto report = co_await check(state);
    // Built before the co_await: GCC 12 mishandles conditional temporaries inside co_await expressions.
    server::Response response = server::Response::json(200, R"({"status":"ready"})");
    if (!report.up) response = server::Response::json(503, R"({"status":"database_unavailable"})");
    co_await ex.respond(std::move(response));
  });

  router.add_exact("/health", [&state](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    const bool booted = state.ready.load(std::memory_order_acquire);
    auto report = co_await check(state);
    const auto uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state.started).count();
    nlohmann::json db = {{"driver", state.driver}, {"status", report.up ? "up" : "down"}};
    if (booted) {
      db["latency_ms"] = report.latency_ms;
      db["pool"] = pool_json(report.pool);
    }
    if (!report.up) db["error"] = booted ? report.error : std::string("starting");
    nlohmann::json body = {{"status", report.up ? "ok" : "degraded"},
                           {"version", LLMPROXY_VERSION},
                           {"uptime_seconds", static_cast<std::int64_t>(uptime)},
                           {"database", db}};
    server::Response response = server::Response::json(report.up ? 200 : 503, body.dump());
    co_await ex.respond(std::move(response));
  });
}

void register_metrics(server::Router& router, const std::string& path, const metrics::Registry& registry) {
  router.add_exact(path, [&registry](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response r;
    r.status = 200;
    r.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = registry.render();
    co_await ex.respond(std::move(r));
  });
}

}  // namespace llmproxy::ops
