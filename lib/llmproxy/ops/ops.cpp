#include "llmproxy/ops/ops.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmproxy/db/database.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/metrics/metrics.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::ops {

namespace net = boost::asio;

namespace {

/// Runs the database health check on the DB pool (it is a blocking round trip). Down ("starting") before boot.
net::awaitable<db::HealthReport> check(const Deps* deps) {
  if (deps == nullptr) co_return db::HealthReport{};
  db::Database* database = deps->database;
  // A named lambda: GCC 12 double-destroys lambda temporaries inside co_await expressions (see executor.hpp).
  auto work = [database] { return database->health(); };
  co_return co_await deps->executor->run(std::move(work));
}

nlohmann::json pool_json(const db::PoolStats& p) {
  return {{"size", p.size}, {"open", p.open}, {"in_use", p.in_use}, {"idle", p.idle}, {"waiting", p.waiting}};
}

}  // namespace

void register_routes(server::Router& router, lifecycle::Published<const Deps> deps, std::string driver) {
  router.add_exact("/live", [](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response response = server::Response::json(200, R"({"status":"alive"})");
    co_await ex.respond(std::move(response));
  });

  router.add_exact("/ready", [deps](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    const Deps* booted = deps.get();
    if (booted == nullptr) {
      server::Response response = server::Response::json(503, R"({"status":"starting"})");
      co_await ex.respond(std::move(response));
      co_return;
    }
    auto report = co_await check(booted);
    // Built before the co_await: GCC 12 mishandles conditional temporaries inside co_await expressions.
    server::Response response = server::Response::json(200, R"({"status":"ready"})");
    if (!report.up) response = server::Response::json(503, R"({"status":"database_unavailable"})");
    co_await ex.respond(std::move(response));
  });

  const auto started = std::chrono::steady_clock::now();
  router.add_exact("/health", [deps, driver = std::move(driver), started](server::Exchange& ex)
                                  -> net::awaitable<void> {
    ex.access.route = "ops";
    const Deps* booted = deps.get();
    auto report = co_await check(booted);
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json db = {{"driver", driver}, {"status", report.up ? "up" : "down"}};
    if (booted != nullptr) {
      db["latency_ms"] = report.latency_ms;
      db["pool"] = pool_json(report.pool);
    }
    if (!report.up) db["error"] = booted != nullptr ? report.error : std::string("starting");
    nlohmann::json body = {{"status", report.up ? "ok" : "degraded"},
                           {"version", LLMPROXY_VERSION},
                           {"uptime_seconds", static_cast<std::int64_t>(uptime)},
                           {"database", db}};
    server::Response response = server::Response::json(report.up ? 200 : 503, body.dump());
    co_await ex.respond(std::move(response));
  });
}

void register_metrics_endpoint(server::Router& router, const std::string& path, const metrics::Registry& registry) {
  router.add_exact(path, [&registry](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response r;
    r.status = 200;
    r.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = registry.render();
    co_await ex.respond(std::move(r));
  });
}

void register_pool_metrics(metrics::Registry& registry, lifecycle::Published<const Deps> deps) {
  const auto gauge = [&registry, deps](const char* name, const char* help, auto field) {
    registry.add_gauge(name, help, [deps, field] {
      const Deps* booted = deps.get();
      return booted != nullptr ? static_cast<double>(booted->database->pool_stats().*field) : 0.0;
    });
  };
  gauge("llm_proxy_db_pool_size", "Configured maximum of database connections.", &db::PoolStats::size);
  gauge("llm_proxy_db_pool_open", "Open database connections.", &db::PoolStats::open);
  gauge("llm_proxy_db_pool_in_use", "Database connections checked out now.", &db::PoolStats::in_use);
  gauge("llm_proxy_db_pool_idle", "Idle database connections.", &db::PoolStats::idle);
  gauge("llm_proxy_db_pool_waiting", "Callers waiting for a database connection.", &db::PoolStats::waiting);
  gauge("llm_proxy_db_pool_failures_total", "Failed connection attempts and checkout timeouts.",
        &db::PoolStats::failures_total);
}

server::ServerHooks request_metrics_hooks(metrics::Registry& registry) {
  server::ServerHooks hooks;
  hooks.connection_opened_closed = [&registry](int d) { registry.open_connections.fetch_add(d); };
  // Atomic: bumped on the acceptor's strand, read by whoever renders /metrics.
  auto rejected = std::make_shared<std::atomic<std::uint64_t>>(0);
  registry.add_counter("llm_proxy_connections_rejected_total",
                       "Client connections closed at once because MAX_CONNECTIONS were open.",
                       [rejected] { return static_cast<double>(rejected->load(std::memory_order_relaxed)); });
  hooks.connection_rejected = [rejected] { rejected->fetch_add(1, std::memory_order_relaxed); };
  hooks.request_in_flight = [&registry](int d) { registry.in_flight.fetch_add(d); };
  hooks.request_done = [&registry](const server::Request&, const server::AccessInfo& access, int status, double ms,
                                   std::uint64_t) {
    registry.count_request(access.route.empty() ? "other" : access.route, status);
    registry.request_seconds.observe(ms / 1000.0);
  };
  return hooks;
}

}  // namespace llmproxy::ops
