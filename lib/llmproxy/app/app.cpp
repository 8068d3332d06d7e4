#include "llmproxy/app/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/admin/admin.hpp"
#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/config/providers.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/proxy/proxy.hpp"
#include "llmproxy/upstream/circuit_breaker.hpp"
#include "llmproxy/upstream/client.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/migrate/backend.hpp"
#include "llmproxy/ops/ops.hpp"
#include "llmproxy/server/router.hpp"
#include "llmproxy/server/server.hpp"
#include "llmproxy/storage/migrate_command.hpp"
#include "llmproxy/storage/storage.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::app {
namespace {

constexpr const char* kUsage =
    "usage: llm-proxy [COMMAND]\n"
    "\n"
    "commands:\n"
    "  server               run the proxy (default)\n"
    "  migrate SUBCOMMAND   manage the database schema (up, down, status, version; see `llm-proxy migrate --help`)\n"
    "  healthcheck          GET /health on the local listener; exit 0 if healthy (for container health checks)\n"
    "  --version            print the version\n"
    "  --help               print this help\n"
    "\n"
    "Configuration comes from environment variables (docs/configuration.md).\n"
    "Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.\n";

void log_effective_config(const config::Config& cfg) {
  nlohmann::json fields = nlohmann::json::object();
  std::istringstream lines(config::redacted_summary(cfg));
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  log::write(log::Level::info, "effective_config", fields);
}

}  // namespace

namespace {

/// Everything that exists only once the database is up. Built on the boot thread, published through
/// BootState::ready / `published` (release), read by I/O threads (acquire); destroyed after the I/O threads stop.
struct Services {
  std::unique_ptr<db::Driver> driver;
  std::unique_ptr<db::Executor> executor;
  std::unique_ptr<audit::Auditor> auditor;
  std::unique_ptr<auth::TokenService> tokens;
  std::unique_ptr<upstream::Client> client;
  std::unique_ptr<upstream::CircuitBreaker> breaker;
  proxy::Deps proxy_deps;
  admin::Deps admin_deps;
};

server::ServerOptions server_options(const config::Config& cfg) {
  server::ServerOptions opts;
  opts.host = cfg.listen_host;
  opts.port = cfg.listen_port;
  opts.io_threads = cfg.io_threads;
  opts.header_read_timeout = cfg.header_read_timeout;
  opts.body_read_timeout = cfg.request_timeout;
  opts.max_request_size = cfg.max_request_size;
  opts.shutdown_timeout = cfg.shutdown_timeout;
  return opts;
}

server::ServerHooks metric_hooks(metrics::Registry& registry) {
  server::ServerHooks hooks;
  hooks.connection_opened_closed = [&registry](int d) { registry.open_connections.fetch_add(d); };
  hooks.request_in_flight = [&registry](int d) { registry.in_flight.fetch_add(d); };
  hooks.request_done = [&registry](const server::Request&, const server::AccessInfo& access, int status,
                                   double ms, std::uint64_t) {
    registry.count_request(access.route.empty() ? "other" : access.route, status);
    registry.request_seconds.observe(ms / 1000.0);
  };
  return hooks;
}

db::AuditEvent system_event(std::string action, std::string outcome, std::string reason = {}) {
  db::AuditEvent ev;
  ev.action = std::move(action);
  ev.actor = "system";
  ev.outcome = std::move(outcome);
  if (!reason.empty()) ev.reason = std::move(reason);
  return ev;
}

}  // namespace

int run_server(const config::Config& cfg) {
  config::require_server_settings(cfg);
  bool builtin_providers = false;
  const auto providers = config::load_providers(cfg.api_config_path, builtin_providers);
  const auto& provider = config::select_provider(providers, cfg.default_api_provider);
  const util::Cipher cipher(cfg.encryption_key);

  log_effective_config(cfg);
  if (builtin_providers) {
    log::write(log::Level::warn, "api_config_missing",
               {{"path", cfg.api_config_path}, {"message", "API_CONFIG_PATH not found: using built-in OpenAI defaults"}});
  }
  if (!cipher.enabled()) {
    log::write(log::Level::warn, "encryption_disabled",
               {{"message", "ENCRYPTION_KEY is not set: project API keys are stored in plaintext"}});
  }

  metrics::Registry registry;
  ops::BootState boot;
  boot.driver = cfg.db.driver == config::DbDriver::postgres ? "postgres" : "sqlite";
  Services services;
  std::atomic<const Services*> published{nullptr};

  server::Router router;
  ops::register_routes(router, boot);
  if (cfg.enable_metrics) ops::register_metrics(router, cfg.metrics_path, registry);
  proxy::Options proxy_options;
  proxy_options.provider = provider;
  proxy_options.request_timeout = cfg.request_timeout;
  proxy_options.stream_idle_timeout = cfg.stream_idle_timeout;
  proxy::register_routes(router, proxy_options, [&published]() -> const proxy::Deps* {
    const Services* s = published.load(std::memory_order_acquire);
    return s ? &s->proxy_deps : nullptr;
  });
  admin::register_routes(router, [&published]() -> const admin::Deps* {
    const Services* s = published.load(std::memory_order_acquire);
    return s ? &s->admin_deps : nullptr;
  });

  server::Server srv(server_options(cfg), router.as_handler(), metric_hooks(registry));
  std::uint16_t port = 0;
  try {
    port = srv.listen();
  } catch (const std::exception& e) {
    log::write(log::Level::error, "listen_failed", {{"error", e.what()}});
    std::cerr << "llm-proxy: " << e.what() << "\n";
    return kExitRuntime;
  }
  log::write(log::Level::info, "listening",
             {{"address", cfg.listen_host.empty() ? std::string("*") : cfg.listen_host}, {"port", port},
              {"io_threads", cfg.io_threads}, {"provider", provider.name}, {"upstream", provider.base_url},
              {"version", LLMPROXY_VERSION}});

  registry.add_gauge("llm_proxy_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
                     [&published] {
                       const Services* s = published.load(std::memory_order_acquire);
                       return s ? static_cast<double>(s->breaker->state()) : 0.0;
                     });
  auto pool_gauge = [&published](auto field) {
    return [&published, field] {
      const Services* s = published.load(std::memory_order_acquire);
      return s ? static_cast<double>(s->driver->pool_stats().*field) : 0.0;
    };
  };
  registry.add_gauge("llm_proxy_db_pool_size", "Configured maximum of database connections.", pool_gauge(&db::PoolStats::size));
  registry.add_gauge("llm_proxy_db_pool_open", "Open database connections.", pool_gauge(&db::PoolStats::open));
  registry.add_gauge("llm_proxy_db_pool_in_use", "Database connections checked out now.", pool_gauge(&db::PoolStats::in_use));
  registry.add_gauge("llm_proxy_db_pool_idle", "Idle database connections.", pool_gauge(&db::PoolStats::idle));
  registry.add_gauge("llm_proxy_db_pool_waiting", "Callers waiting for a database connection.", pool_gauge(&db::PoolStats::waiting));
  registry.add_gauge("llm_proxy_db_pool_failures_total", "Failed connection attempts and checkout timeouts.",
                     pool_gauge(&db::PoolStats::failures_total));
  auto token_stat = [&published](auto pick) {
    return [&published, pick] {
      const Services* s = published.load(std::memory_order_acquire);
      return s ? static_cast<double>(pick(s->tokens->stats())) : 0.0;
    };
  };
  registry.add_counter("llm_proxy_token_cache_hits_total", "Token validations answered from the cache.",
                       token_stat([](const auth::Stats& st) { return st.cache_hits; }));
  registry.add_counter("llm_proxy_token_cache_misses_total", "Token validations that needed the database.",
                       token_stat([](const auth::Stats& st) { return st.cache_misses; }));
  registry.add_gauge("llm_proxy_token_cache_entries", "Tokens in the cache.",
                     token_stat([](const auth::Stats& st) { return st.cached_tokens; }));
  registry.add_gauge("llm_proxy_usage_pending_deltas", "Tokens with usage not yet written to the database.",
                     token_stat([](const auth::Stats& st) { return st.pending_usage_tokens; }));
  registry.add_gauge("llm_proxy_usage_flush_lag_seconds", "Seconds since usage was last written successfully.",
                     token_stat([](const auth::Stats& st) { return st.seconds_since_last_flush; }));
  registry.add_gauge("llm_proxy_audit_queue", "Audit events waiting to be written.", [&published] {
    const Services* s = published.load(std::memory_order_acquire);
    return s ? static_cast<double>(s->auditor->pending()) : 0.0;
  });
  registry.add_counter("llm_proxy_audit_dropped_total", "Audit events dropped (queue overflow or refused rows).",
                       [&published] {
                         const Services* s = published.load(std::memory_order_acquire);
                         return s ? static_cast<double>(s->auditor->dropped()) : 0.0;
                       });

  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{kExitOk};

  // Boot runs beside the listener so /live answers and /ready says 503 while the database comes up.
  std::thread boot_thread([&] {
    try {
      services.driver = storage::open_with_retry(cfg.db, [&] { return stopping.load(); });
      storage::prepare_schema(*services.driver, cfg.db);
      services.executor =
          std::make_unique<db::Executor>(static_cast<std::size_t>(std::clamp(cfg.db.pool_size, 2, 64)));
      audit::Options audit_options;
      audit_options.enabled = cfg.audit_enabled;
      audit_options.repository = cfg.audit_store_in_db ? services.driver.get() : nullptr;
      audit_options.file_path = cfg.audit_log_file;
      services.auditor = std::make_unique<audit::Auditor>(audit_options);
      services.auditor->start();
      auth::Options auth_options;
      auth_options.token_cache_ttl = cfg.token_cache_ttl;
      auth_options.token_cache_max = cfg.token_cache_max;
      auth_options.negative_cache_ttl = cfg.negative_cache_ttl;
      auth_options.project_cache_ttl = cfg.project_cache_ttl;
      auth_options.enforce_project_active = cfg.enforce_project_active;
      auth_options.usage_flush_interval = cfg.usage_flush_interval;
      services.tokens = std::make_unique<auth::TokenService>(*services.driver, *services.executor, cipher,
                                                             services.auditor.get(), auth_options);
      services.tokens->start(srv.io());
      upstream::ClientOptions client_options;
      client_options.idle_timeout = provider.timeouts.idle_connection;
      client_options.max_idle_connections = std::max(1, provider.max_idle_conns_per_host);
      services.client = std::make_unique<upstream::Client>(
          srv.io(), upstream::Endpoint{provider.scheme, provider.host, provider.port}, client_options);
      services.breaker =
          std::make_unique<upstream::CircuitBreaker>(cfg.circuit_breaker_threshold, cfg.circuit_breaker_cooldown);
      services.proxy_deps = {services.tokens.get(), services.client.get(), services.breaker.get(), &registry};
      services.admin_deps = {services.driver.get(), services.executor.get(), services.tokens.get(),
                             services.auditor.get(), &cipher, cfg.management_token};
      boot.database = services.driver.get();
      boot.executor = services.executor.get();
      published.store(&services, std::memory_order_release);
      boot.ready.store(true, std::memory_order_release);
      services.auditor->record(system_event("server.start", "success"));
      log::write(log::Level::info, "ready", {{"driver", boot.driver}});
    } catch (const std::exception& e) {
      if (!stopping) {
        log::write(log::Level::error, "boot_failed", {{"error", e.what()}});
        std::cerr << "llm-proxy: " << e.what() << "\n";
        exit_code = kExitRuntime;
        stopping = true;
        srv.stop();
      }
    }
  });

  boost::asio::signal_set signals(srv.io(), SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (stopping.exchange(true)) {
          log::write(log::Level::warn, "shutdown_forced", {{"signal", signo}});
          log::flush();
          std::_Exit(kExitRuntime);
        }
        log::write(log::Level::info, "shutdown_requested",
                   {{"signal", signo}, {"grace_seconds", static_cast<double>(cfg.shutdown_timeout.count()) / 1000.0}});
        srv.stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  srv.run();
  boot_thread.join();
  // The I/O threads are gone: flush what is buffered in memory, then close the pools.
  if (services.tokens) services.tokens->stop_and_flush();
  if (services.auditor) {
    services.auditor->record(system_event("server.shutdown", "success"));
    services.auditor->stop();
  }
  if (services.executor) services.executor->join();
  // Objects bound to srv's io_context (timers, strands, sockets) must go before it: srv is destroyed first.
  published.store(nullptr, std::memory_order_release);
  services.tokens.reset();
  services.client.reset();
  log::write(log::Level::info, "shutdown_complete", {{"exit_code", exit_code.load()}});
  log::flush();
  return exit_code;
}

int main(int argc, char** argv, const config::EnvLookup& env) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = args.empty() ? "server" : args[0];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (command == "--version" || command == "version") {
    std::cout << "llm-proxy " << LLMPROXY_VERSION << "\n";
    return kExitOk;
  }
  if (command != "server" && command != "migrate" && command != "healthcheck") {
    std::cerr << "llm-proxy: unknown command \"" << command << "\"\n\n" << kUsage;
    return kExitUsage;
  }
  if (command == "server" && args.size() > 1) {
    std::cerr << "llm-proxy: `server` takes no arguments\n\n" << kUsage;
    return kExitUsage;
  }

  config::Config cfg;
  try {
    cfg = config::load(env);
    log::setup(cfg.log_level, cfg.log_format == config::LogFormat::json ? log::Format::json : log::Format::console,
               cfg.log_file);
  } catch (const std::exception& e) {
    std::cerr << "llm-proxy: configuration error: " << e.what() << "\n";
    return kExitUsage;
  }

  if (command == "healthcheck") return healthcheck(cfg);
  if (command == "migrate") {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    return storage::migrate_command(rest, cfg, std::cout, std::cerr);
  }
  try {
    return run_server(cfg);
  } catch (const config::ConfigError& e) {
    std::cerr << "llm-proxy: configuration error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    log::write(log::Level::error, "fatal", {{"error", e.what()}});
    std::cerr << "llm-proxy: " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace llmproxy::app
