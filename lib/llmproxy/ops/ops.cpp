#include "llmproxy/ops/ops.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/cache/cache.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/db/single_flight.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::ops {

namespace net = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

/// How long a database check answers /ready and /health.
constexpr std::chrono::milliseconds kHealthLifetime{1000};

/// The fixed category /health shows for a failed check: the driver's message names the host, port, user and
/// database, which a public probe must not reveal.
std::string error_category(const std::string& message) {
  std::string m = message;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto has = [&m](const char* s) { return m.find(s) != std::string::npos; };
  if (has("pool exhausted") || has("queue is full")) return "pool_exhausted";
  if (has("timeout") || has("timed out") || has("canceling statement")) return "timeout";
  if (has("connect") || has("connection") || has("refused") || has("unreachable") || has("no route")) {
    return "unreachable";
  }
  return "error";
}

/// The database state behind /ready and /health: one check at a time (db::SingleFlight), its result reused for
/// kHealthLifetime.
class HealthCache {
 public:
  /// The state at most kHealthLifetime old. Runs the check (on the DB pool: it is a blocking round trip) if no
  /// fresh result exists and no other caller is running one; else waits for that caller's result.
  net::awaitable<db::HealthReport> get(const Deps& deps) {
    {
      std::lock_guard lock(mutex_);
      if (report_ && Clock::now() - checked_at_ < kHealthLifetime) co_return *report_;
    }
    auto joined = flights_.join(kFlightKey, 0);
    if (!joined.leader) co_return co_await flights_.wait(std::move(joined.flight));
    // If this frame is destroyed mid-check (shutdown), the waiters read "down" rather than wait forever.
    db::FlightLead<db::HealthReport> lead(flights_, std::string(kFlightKey), std::move(joined.flight),
                                         db::HealthReport{});
    db::HealthReport report = co_await refresh(deps);
    lead.finish(report);
    co_return report;
  }

  std::uint64_t checks() const { return checks_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::string_view kFlightKey = "health";

  net::awaitable<db::HealthReport> refresh(const Deps& deps) {
    db::Database* database = deps.database;
    // A named lambda: GCC 12 double-destroys lambda temporaries inside co_await expressions (see executor.hpp).
    auto work = [database] { return database->health(); };
    db::HealthReport report;
    checks_.fetch_add(1, std::memory_order_relaxed);
    try {
      report = co_await deps.executor->run(std::move(work));
    } catch (const std::exception& e) {
      // Not even queued (the DB task queue is full) or the check itself threw: the database is not answering.
      report = db::HealthReport{};
      report.up = false;
      report.error = e.what();
    }
    bool was_up = true;
    {
      std::lock_guard lock(mutex_);
      was_up = !report_ || report_->up;
      report_ = report;
      checked_at_ = Clock::now();
    }
    if (was_up && !report.up) {
      const std::string detail = deps.scrub ? deps.scrub(report.error) : report.error;
      log::write(log::Level::warn, "health_check_failed",
                 {{"category", error_category(report.error)}, {"error", detail}});
    } else if (!was_up && report.up) {
      log::write(log::Level::info, "health_check_recovered");
    }
    co_return report;
  }

  std::mutex mutex_;
  std::optional<db::HealthReport> report_;  // guarded by mutex_
  Clock::time_point checked_at_;            // guarded by mutex_
  db::SingleFlight<db::HealthReport> flights_;
  std::atomic<std::uint64_t> checks_{0};
};

/// The database state: down ("starting") before boot.
net::awaitable<db::HealthReport> check(const std::shared_ptr<HealthCache>& cache, const Deps* deps) {
  if (deps == nullptr) co_return db::HealthReport{};
  co_return co_await cache->get(*deps);
}

nlohmann::json pool_json(const db::PoolStats& p) {
  return {{"size", p.size}, {"open", p.open}, {"in_use", p.in_use}, {"idle", p.idle}, {"waiting", p.waiting}};
}

}  // namespace

void register_routes(server::Router& router, lifecycle::Published<const Deps> deps, std::string driver,
                     metrics::Registry& registry) {
  auto cache = std::make_shared<HealthCache>();
  registry.add_counter("llm_proxy_health_checks_total",
                       "Database round trips made for /ready and /health (at most about one per second).",
                       [cache] { return static_cast<double>(cache->checks()); });

  router.add_exact("/live", [](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response response = server::Response::json(200, R"({"status":"alive"})");
    co_await ex.respond(std::move(response));
  });

  router.add_exact("/ready", [deps, cache](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    const Deps* booted = deps.get();
    if (booted == nullptr) {
      server::Response response = server::Response::json(503, R"({"status":"starting"})");
      co_await ex.respond(std::move(response));
      co_return;
    }
    auto report = co_await check(cache, booted);
    // Built before the co_await: GCC 12 mishandles conditional temporaries inside co_await expressions.
    server::Response response = server::Response::json(200, R"({"status":"ready"})");
    if (!report.up) response = server::Response::json(503, R"({"status":"database_unavailable"})");
    co_await ex.respond(std::move(response));
  });

  const auto started = std::chrono::steady_clock::now();
  router.add_exact("/health", [deps, cache, driver = std::move(driver), started](server::Exchange& ex)
                                  -> net::awaitable<void> {
    ex.access.route = "ops";
    const Deps* booted = deps.get();
    auto report = co_await check(cache, booted);
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json db = {{"driver", driver}, {"status", report.up ? "up" : "down"}};
    if (booted != nullptr) {
      db["latency_ms"] = report.latency_ms;
      db["pool"] = pool_json(report.pool);
    }
    if (!report.up) db["error"] = booted != nullptr ? error_category(report.error) : std::string("starting");
    nlohmann::json cache = {{"status", booted != nullptr ? "disabled" : "starting"}};
    bool cache_up = true;
    if (booted != nullptr && booted->cache != nullptr) {
      cache_up = booted->cache->healthy();
      cache = {{"backend", std::string(booted->cache->name())}, {"status", cache_up ? "up" : "down"}};
    }
    nlohmann::json body = {{"status", report.up && cache_up ? "ok" : "degraded"},
                           {"version", LLMPROXY_VERSION},
                           {"uptime_seconds", static_cast<std::int64_t>(uptime)},
                           {"database", db},
                           {"cache", cache}};
    server::Response response = server::Response::json(report.up ? 200 : 503, body.dump());
    co_await ex.respond(std::move(response));
  });
}

void register_metrics_endpoint(server::Router& router, const std::string& path, const metrics::Registry& registry) {
  const auto serve = [&registry](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "ops";
    server::Response r;
    r.status = 200;
    r.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = registry.render();
    co_await ex.respond(std::move(r));
  };
  router.add_exact(path, serve);
  // The reference serves Prometheus text at METRICS_PATH + "/prometheus" (its METRICS_PATH is JSON): the same
  // text here, so its scrape configs keep working.
  const std::string base = path.ends_with('/') ? path.substr(0, path.size() - 1) : path;
  router.add_exact(base + "/prometheus", serve);
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
