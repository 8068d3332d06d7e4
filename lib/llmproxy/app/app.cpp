#include "llmproxy/app/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/admin/admin.hpp"
#include "llmproxy/admin_ui/admin_ui.hpp"
#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/cache/backends.hpp"
#include "llmproxy/config/dotenv.hpp"
#include "llmproxy/config/providers.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/events/event_log.hpp"
#include "llmproxy/lifecycle/readiness.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/ops/ops.hpp"
#include "llmproxy/proxy/proxy.hpp"
#include "llmproxy/proxy/target.hpp"
#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/server/router.hpp"
#include "llmproxy/server/server.hpp"
#include "llmproxy/storage/migrate_command.hpp"
#include "llmproxy/storage/storage.hpp"
#include "llmproxy/upstream/circuit_breaker.hpp"
#include "llmproxy/upstream/client.hpp"
#include "llmproxy/util/crypto.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::app {
namespace {

constexpr const char* kUsage =
    "usage: llm-proxy [COMMAND]\n"
    "\n"
    "commands:\n"
    "  server [FLAGS]       run the proxy (default); flags (the reference's; they override the environment):\n"
    "      --addr HOST:PORT      LISTEN_ADDR\n"
    "      --db PATH             DATABASE_PATH (SQLite file)\n"
    "      -c, --config FILE     API_CONFIG_PATH (provider YAML)\n"
    "      --log-level LEVEL     LOG_LEVEL\n"
    "      --log-file FILE       LOG_FILE (logs appended to FILE)\n"
    "      --file-event-log FILE EVENT_LOG_FILE (one JSON line per proxied request)\n"
    "      -v, --debug           LOG_LEVEL=debug\n"
    "      --env FILE            read KEY=VALUE lines from FILE; the real environment wins over it\n"
    "  migrate SUBCOMMAND   manage the database schema (up, down, status, version; see `llm-proxy migrate --help`)\n"
    "  healthcheck          GET /health on the local listener; exit 0 if healthy (for container health checks)\n"
    "  --version            print the version\n"
    "  --help               print this help\n"
    "\n"
    "Configuration comes from environment variables (docs/configuration.md).\n"
    "Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.\n";

// The options of each module, read from the configuration.

server::ServerOptions server_options(const config::Config& cfg) {
  server::ServerOptions opts;
  opts.host = cfg.listen_host;
  opts.port = cfg.listen_port;
  opts.io_threads = cfg.io_threads;
  opts.header_read_timeout = cfg.header_read_timeout;
  opts.body_read_timeout = cfg.request_body_timeout;
  opts.write_timeout = cfg.request_timeout;
  opts.max_request_size = cfg.max_request_size;
  opts.max_header_count = static_cast<std::size_t>(cfg.max_header_count);
  opts.max_connections = cfg.max_connections;
  opts.shutdown_timeout = cfg.shutdown_timeout;
  return opts;
}

proxy::Options proxy_options(const config::Config& cfg, const config::Provider& provider) {
  proxy::Options opts;
  opts.provider = provider;
  opts.request_timeout = cfg.request_timeout;
  opts.stream_idle_timeout = cfg.stream_idle_timeout;
  opts.max_buffered_response_size = cfg.max_buffered_response_size;
  opts.cache.max_object_bytes = static_cast<std::size_t>(
      std::min<std::uint64_t>(cfg.cache.max_object_bytes, std::numeric_limits<std::size_t>::max()));
  opts.cache.default_ttl = std::chrono::duration_cast<std::chrono::seconds>(cfg.cache.default_ttl);
  opts.cache.stream_responses = cfg.cache.stream_responses;
  if (!cfg.event_log.file.empty() && cfg.event_log.bodies) {
    opts.event_body_bytes = static_cast<std::size_t>(
        std::min<std::uint64_t>(cfg.event_log.max_body_bytes, std::numeric_limits<std::size_t>::max()));
  }
  return opts;
}

/// The EVENT_LOG_FILE writer (SPEC §14), or null when it is off. A file that cannot be opened is a
/// configuration error (exit 2) naming the variable.
std::unique_ptr<events::EventLog> open_event_log(const config::EventLogConfig& c) {
  if (c.file.empty()) return nullptr;
  events::Options opts;
  opts.path = c.file;
  opts.max_queue_events = static_cast<std::size_t>(c.max_queue);
  opts.bodies = c.bodies;
  opts.max_body_bytes = static_cast<std::size_t>(
      std::min<std::uint64_t>(c.max_body_bytes, std::numeric_limits<std::size_t>::max()));
  try {
    return std::make_unique<events::EventLog>(std::move(opts));
  } catch (const std::exception& e) {
    throw config::ConfigError("invalid EVENT_LOG_FILE=\"" + c.file + "\": " + e.what());
  }
}

/// The store of the per-minute request limits (SPEC §14): this process, or the Redis of RATE_LIMIT_REDIS_URL (by
/// default the cache's).
std::shared_ptr<ratelimit::Limiter> make_limiter(const config::Config& cfg, boost::asio::io_context& io) {
  const config::RateLimitConfig& c = cfg.rate_limit;
  if (c.backend == config::RateLimitBackend::memory) return ratelimit::make_memory_limiter();
  const config::RedisEndpoint& e = c.redis ? *c.redis : cfg.cache.redis;
  redis::ConnectionOptions opts;
  opts.host = e.host;
  opts.port = e.port;
  opts.username = e.username;
  opts.password = e.password;
  opts.db = e.db;
  opts.timeout = c.redis_timeout;
  opts.purpose = "ratelimit";
  const auto mode = c.fail_mode == config::FailMode::closed ? ratelimit::FailMode::closed : ratelimit::FailMode::open;
  return ratelimit::make_redis_limiter(io, std::move(opts), c.redis_key_prefix, mode);
}

/// The response cache's backend (SPEC §13), or null when HTTP_CACHE_ENABLED=false.
std::unique_ptr<cache::Backend> make_cache(const config::CacheConfig& c, boost::asio::io_context& io) {
  if (!c.enabled) return nullptr;
  if (c.backend == config::CacheBackend::memory) {
    return cache::make_memory_backend({c.max_bytes, c.max_object_bytes});
  }
  cache::RedisOptions opts;
  opts.host = c.redis.host;
  opts.port = c.redis.port;
  opts.username = c.redis.username;
  opts.password = c.redis.password;
  opts.db = c.redis.db;
  opts.key_prefix = c.redis_key_prefix;
  opts.timeout = c.redis_timeout;
  opts.max_object_bytes = c.max_object_bytes;
  return cache::make_redis_backend(io, std::move(opts));
}

audit::Options audit_options(const config::Config& cfg, db::AuditRepository* repository) {
  audit::Options opts;
  opts.enabled = cfg.audit_enabled;
  opts.repository = cfg.audit_store_in_db ? repository : nullptr;
  opts.file_path = cfg.audit_log_file;
  return opts;
}

auth::Options auth_options(const config::Config& cfg) {
  auth::Options opts;
  opts.token_cache_ttl = cfg.token_cache_ttl;
  opts.token_cache_max = cfg.token_cache_max;
  opts.negative_cache_ttl = cfg.negative_cache_ttl;
  opts.project_cache_ttl = cfg.project_cache_ttl;
  opts.cache_stale_if_error = cfg.cache_stale_if_error;
  opts.enforce_project_active = cfg.enforce_project_active;
  opts.usage_flush_interval = cfg.usage_flush_interval;
  return opts;
}

upstream::ClientOptions client_options(const config::Provider& provider) {
  upstream::ClientOptions opts;
  opts.io_threads = 1;  // each of the server's io_contexts is run by one thread
  opts.idle_timeout = provider.timeouts.idle_connection;
  opts.max_idle_connections = std::max(1, provider.max_idle_conns_per_host);
  return opts;
}

std::string driver_name(const config::Config& cfg) {
  return cfg.db.driver == config::DbDriver::postgres ? "postgres" : "sqlite";
}

db::AuditEvent system_event(std::string action, std::string outcome) {
  db::AuditEvent ev;
  ev.action = std::move(action);
  ev.actor = "system";
  ev.outcome = std::move(outcome);
  return ev;
}

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

/// The provider whose allow-lists the proxy enforces (API_CONFIG_PATH, DEFAULT_API_PROVIDER). Logs the effective
/// configuration first, then a warning when the file is missing. Throws config::ConfigError.
config::Provider load_provider(const config::Config& cfg) {
  bool builtin_providers = false;
  const auto providers = config::load_providers(cfg.api_config_path, builtin_providers, cfg.openai_api_url);
  config::Provider provider = config::select_provider(providers, cfg.default_api_provider);
  log_effective_config(cfg);
  if (builtin_providers) {
    log::write(log::Level::warn, "api_config_missing",
               {{"path", cfg.api_config_path},
                {"message", "API_CONFIG_PATH not found: using built-in OpenAI defaults at OPENAI_API_URL"},
                {"base_url", provider.base_url}});
  }
  if (!provider.base_path.empty()) {
    // Like the reference: only scheme, host and port of base_url are used; request paths go upstream as received.
    log::write(log::Level::info, "base_url_path_ignored",
               {{"provider", provider.name},
                {"base_path", provider.base_path},
                {"message", "the path of base_url is not prepended: /v1/... is forwarded as /v1/..."}});
  }
  return provider;
}

/// Everything that exists only once the database is up. Built by the boot thread, published through the
/// Readiness, read by I/O threads through lifecycle::Published views (null until then), torn down by
/// flush_and_close() after the I/O threads have stopped.
struct Services {
  std::unique_ptr<db::Driver> driver;
  std::unique_ptr<db::Executor> executor;
  std::unique_ptr<audit::Auditor> auditor;
  std::unique_ptr<auth::TokenService> tokens;
  std::unique_ptr<upstream::Client> client;
  std::unique_ptr<upstream::CircuitBreaker> breaker;
  std::unique_ptr<cache::Backend> cache;  // null when HTTP_CACHE_ENABLED=false
  std::shared_ptr<ratelimit::Limiter> limiter;
  // What each group of routes sees of the above.
  ops::Deps ops;
  proxy::Deps proxy;
  admin::Deps admin;
};

/// `llm-proxy server`, as the steps run_server() takes in order. Threads: the main thread constructs it and runs
/// every public step; boot_in_background() starts the boot thread, the only writer of `services_` until
/// flush_and_close() joins it; I/O threads read the services through `readiness_` only. Members are destroyed
/// in reverse order: the server (and its io_context) first, then the services, the readiness object and the
/// registry that the handlers and gauges read.
class ServerProcess {
 public:
  ServerProcess(const config::Config& cfg, config::Provider provider);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// Binds LISTEN_ADDR. False (logged and printed) if it cannot.
  bool listen();
  /// Starts the boot thread: connect with retry, migrate, build the services, publish them. Meanwhile /live
  /// answers 200 and everything that needs the database 503.
  void boot_in_background();
  /// Runs the I/O threads until SIGTERM/SIGINT or a failed boot has stopped the server and it has drained.
  void serve_until_stopped();
  /// After the I/O threads: writes buffered usage and audit events, closes the pools, and destroys what is bound
  /// to the io_context while it still exists.
  void flush_and_close();

  int exit_code() const { return exit_code_.load(); }

 private:
  server::Router make_router();
  void register_module_metrics();
  void boot();
  void connect_and_migrate();
  void build_services();
  void publish();
  server::ServerHooks server_hooks();
  void fail_boot(const std::exception& error);
  void stop_on_signal(int signo);

  const config::Config& cfg_;
  const config::Provider provider_;
  const util::Cipher cipher_;
  const std::unique_ptr<events::EventLog> events_;  // null when EVENT_LOG_FILE is unset; outlives the server
  metrics::Registry registry_;
  lifecycle::Readiness readiness_;
  Services services_;
  server::Router router_;
  server::Server server_;
  // Caught from construction, before "listening" is logged: a SIGTERM sent as soon as the port is announced
  // (a supervisor, a test) is queued for serve_until_stopped() instead of killing the process by default.
  boost::asio::signal_set hangups_{server_.io(), SIGHUP};
  boost::asio::signal_set signals_{server_.io(), SIGINT, SIGTERM};
  std::thread boot_thread_;
  std::atomic<int> exit_code_{kExitOk};
};

ServerProcess::ServerProcess(const config::Config& cfg, config::Provider provider)
    : cfg_(cfg),
      provider_(std::move(provider)),
      cipher_(cfg.encryption_key),
      events_(open_event_log(cfg.event_log)),
      router_(make_router()),
      server_(server_options(cfg), router_.as_handler(), server_hooks()) {
  if (!cipher_.enabled()) {
    log::write(log::Level::warn, "encryption_disabled",
               {{"message", "ENCRYPTION_KEY is not set: project API keys are stored in plaintext"}});
  }
  register_module_metrics();
}

ServerProcess::~ServerProcess() {
  // Only when a step threw after boot_in_background(): let the boot thread see the stop and end.
  if (boot_thread_.joinable()) {
    readiness_.begin_stopping();
    boot_thread_.join();
  }
}

server::ServerHooks ServerProcess::server_hooks() {
  server::ServerHooks hooks = ops::request_metrics_hooks(registry_);
  hooks.shape_error = [proxy = proxy::session_error_shaper(provider_), admin_ui = cfg_.admin_ui_enabled](
                          std::string_view target, std::string_view origin, int status, std::string_view code,
                          std::string_view message) -> std::optional<server::Response> {
    if (admin_ui) {
      if (auto shaped = admin_ui::shape_session_error(target, status, code, message)) return shaped;
    }
    return proxy(target, origin, status, code, message);
  };
  return hooks;
}

server::Router ServerProcess::make_router() {
  server::Router router;
  ops::register_routes(router, {readiness_, services_.ops}, driver_name(cfg_), registry_);
  if (cfg_.enable_metrics) ops::register_metrics_endpoint(router, cfg_.metrics_path, registry_);
  proxy::register_routes(router, proxy_options(cfg_, provider_), {readiness_, services_.proxy});
  admin::register_routes(router, {readiness_, services_.admin}, registry_);
  if (cfg_.admin_ui_enabled) admin_ui::register_routes(router);
  return router;
}

void ServerProcess::register_module_metrics() {
  // Each module names and samples its own metrics; they read 0 until boot has published the services.
  // /metrics lists them in this order.
  upstream::register_metrics(registry_, {readiness_, services_.breaker});
  ops::register_pool_metrics(registry_, {readiness_, services_.ops});
  auth::register_metrics(registry_, {readiness_, services_.tokens});
  // The DB task queue (db/executor.hpp, header-only, no metrics dependency) is sampled here.
  const lifecycle::Published<const db::Executor> executor{readiness_, services_.executor};
  registry_.add_gauge("llm_proxy_db_queue_pending", "Database tasks queued or running on the DB thread pool.",
                      [executor] {
                        const db::Executor* e = executor.get();
                        return e != nullptr ? static_cast<double>(e->pending()) : 0.0;
                      });
  registry_.add_counter("llm_proxy_db_queue_rejected_total",
                        "Database calls refused at once (503) because the DB task queue was full.", [executor] {
                          const db::Executor* e = executor.get();
                          return e != nullptr ? static_cast<double>(e->rejected()) : 0.0;
                        });
  audit::register_metrics(registry_, {readiness_, services_.auditor});
  // The response cache's own figures (the hit/miss/bypass/store counters are the proxy's, in the registry).
  const lifecycle::Published<const cache::Backend> cache{readiness_, services_.cache};
  const auto cache_stat = [cache](auto field) {
    return [cache, field] {
      const cache::Backend* b = cache.get();
      return b != nullptr ? static_cast<double>(b->stats().*field) : 0.0;
    };
  };
  registry_.add_counter("llm_proxy_cache_evictions_total",
                        "Response cache entries dropped to make room (memory backend; Redis evicts on its own).",
                        cache_stat(&cache::BackendStats::evictions));
  registry_.add_counter("llm_proxy_cache_failures_total",
                        "Response cache operations that failed (Redis unreachable, timeout); the request went on "
                        "without the cache.",
                        cache_stat(&cache::BackendStats::failures));
  registry_.add_gauge("llm_proxy_cache_bytes", "Bytes held by the response cache (memory backend).",
                      cache_stat(&cache::BackendStats::bytes));
  registry_.add_gauge("llm_proxy_cache_entries", "Entries held by the response cache (memory backend).",
                      cache_stat(&cache::BackendStats::entries));
  // Rate limits (SPEC §14).
  // (The limiter is shared with the token service, so it is held by a shared_ptr, which Published does not take.)
  const lifecycle::Readiness* readiness = &readiness_;
  const std::shared_ptr<ratelimit::Limiter>* limiter = &services_.limiter;
  const auto limit_stat = [readiness, limiter](auto field) {
    return [readiness, limiter, field] {
      const ratelimit::Limiter* l = readiness->published() ? limiter->get() : nullptr;
      return l != nullptr ? static_cast<double>(l->stats().*field) : 0.0;
    };
  };
  registry_.add_counter("llm_proxy_rate_limit_allowed_total", "Requests a rate limit counted and let through.",
                        limit_stat(&ratelimit::Limiter::Stats::allowed));
  registry_.add_counter("llm_proxy_rate_limit_refused_total", "Requests refused with 429 by a rate limit.",
                        limit_stat(&ratelimit::Limiter::Stats::refused));
  registry_.add_counter("llm_proxy_rate_limit_unavailable_total",
                        "Rate limit checks the store could not answer (Redis down or slow): let through when "
                        "RATE_LIMIT_FAIL_MODE=open, refused with 503 when closed.",
                        limit_stat(&ratelimit::Limiter::Stats::unavailable));
  // The event log (SPEC §14); 0 when EVENT_LOG_FILE is unset.
  const events::EventLog* events = events_.get();
  const auto event_stat = [events](auto field) {
    return [events, field] { return events != nullptr ? static_cast<double>(events->stats().*field) : 0.0; };
  };
  registry_.add_counter("llm_proxy_event_log_written_total", "Events written to EVENT_LOG_FILE.",
                        event_stat(&events::EventLog::Stats::written));
  registry_.add_counter("llm_proxy_event_log_dropped_total",
                        "Events dropped because the event log's queue was full (the disk is slower than the traffic).",
                        event_stat(&events::EventLog::Stats::dropped));
  registry_.add_counter("llm_proxy_event_log_write_errors_total", "Events lost to failed writes of EVENT_LOG_FILE.",
                        event_stat(&events::EventLog::Stats::write_errors));
}

bool ServerProcess::listen() {
  std::uint16_t port = 0;
  try {
    port = server_.listen();
  } catch (const std::exception& e) {
    log::write(log::Level::error, "listen_failed", {{"error", e.what()}});
    std::cerr << "llm-proxy: " << e.what() << "\n";
    return false;
  }
  log::write(log::Level::info, "listening",
             {{"address", cfg_.listen_host.empty() ? std::string("*") : cfg_.listen_host}, {"port", port},
              {"io_threads", cfg_.io_threads}, {"provider", provider_.name}, {"upstream", provider_.base_url},
              {"version", LLMPROXY_VERSION}});
  return true;
}

void ServerProcess::boot_in_background() {
  boot_thread_ = std::thread([this] { boot(); });
}

/// The boot thread.
void ServerProcess::boot() {
  try {
    connect_and_migrate();
    build_services();
    publish();
  } catch (const std::exception& e) {
    fail_boot(e);
  }
}

void ServerProcess::connect_and_migrate() {
  services_.driver = storage::open_with_retry(cfg_.db, [this] { return readiness_.stopping(); });
  readiness_.begin_migrating();
  storage::prepare_schema(*services_.driver, cfg_.db);
}

void ServerProcess::build_services() {
  Services& s = services_;
  s.executor = std::make_unique<db::Executor>(static_cast<std::size_t>(std::clamp(cfg_.db.pool_size, 2, 64)));
  s.auditor = std::make_unique<audit::Auditor>(audit_options(cfg_, s.driver.get()));
  s.auditor->start();
  s.limiter = make_limiter(cfg_, server_.io());
  auth::Options token_options = auth_options(cfg_);
  token_options.limiter = s.limiter;
  s.tokens = std::make_unique<auth::TokenService>(*s.driver, *s.executor, cipher_, s.auditor.get(), token_options);
  s.tokens->start(server_.io());
  const upstream::Endpoint endpoint{provider_.scheme, provider_.host, provider_.port};
  s.client = std::make_unique<upstream::Client>(server_.io(), endpoint, client_options(provider_));
  s.breaker = std::make_unique<upstream::CircuitBreaker>(cfg_.circuit_breaker_threshold, cfg_.circuit_breaker_cooldown);
  s.cache = make_cache(cfg_.cache, server_.io());
  s.ops = {s.driver.get(), s.executor.get(),
           [url = cfg_.db.url](std::string message) {
             return config::scrub_database_url_passwords(std::move(message), url);
           },
           s.cache.get()};
  s.proxy = {s.tokens.get(), s.client.get(), s.breaker.get(), &registry_, s.cache.get(), events_.get()};
  s.admin = {s.driver.get(), s.executor.get(), s.tokens.get(), s.auditor.get(), &cipher_, cfg_.management_token,
             &cfg_.trusted_proxies, s.cache.get(), [](std::string_view raw) -> std::optional<std::string> {
               proxy::NormalisedTarget t = proxy::normalise_target(raw);
               if (!t.ok()) return std::nullopt;
               return t.target();
             }};
}

void ServerProcess::publish() {
  readiness_.publish();
  services_.auditor->record(system_event("server.start", "success"));
  log::write(log::Level::info, "ready", {{"driver", driver_name(cfg_)}});
}

void ServerProcess::fail_boot(const std::exception& error) {
  const lifecycle::Phase phase = readiness_.phase();
  // A stop that began first (a signal during boot) is why the boot gave up: not a failure of its own.
  if (!readiness_.begin_stopping()) return;
  log::write(log::Level::error, "boot_failed", {{"error", error.what()}, {"phase", lifecycle::to_string(phase)}});
  std::cerr << "llm-proxy: " << error.what() << "\n";
  exit_code_ = kExitRuntime;
  server_.stop();
}

void ServerProcess::serve_until_stopped() {
  // SIGHUP: the event log is reopened at its path (after logrotate renamed it).
  std::function<void(const boost::system::error_code&, int)> on_hangup = [&](const boost::system::error_code& ec,
                                                                               int) {
    if (ec) return;
    if (events_) events_->reopen();
    log::write(log::Level::info, "reopen_requested", {{"event_log", events_ != nullptr}});
    hangups_.async_wait(on_hangup);
  };
  hangups_.async_wait(on_hangup);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        stop_on_signal(signo);
        signals_.async_wait(on_signal);
      };
  signals_.async_wait(on_signal);
  server_.run();
  // Exchanges still waiting when the grace ended record their usage now, before the final flush.
  server_.discard_pending();
}

void ServerProcess::stop_on_signal(int signo) {
  if (!readiness_.begin_stopping()) {
    log::write(log::Level::warn, "shutdown_forced", {{"signal", signo}});
    log::flush();
    std::_Exit(kExitRuntime);
  }
  log::write(log::Level::info, "shutdown_requested",
             {{"signal", signo}, {"grace_seconds", static_cast<double>(cfg_.shutdown_timeout.count()) / 1000.0}});
  server_.stop();
}

void ServerProcess::flush_and_close() {
  if (boot_thread_.joinable()) boot_thread_.join();
  Services& s = services_;
  // The I/O threads are gone: write what is buffered in memory, then close the pools.
  if (s.tokens) s.tokens->stop_and_flush();
  if (s.auditor) {
    s.auditor->record(system_event("server.shutdown", "success"));
    s.auditor->stop();
  }
  if (s.executor) s.executor->join();
  // Objects bound to the server's io_context (timers, strands, sockets) must go before it, and the server is
  // destroyed before the services: these two go now.
  s.tokens.reset();
  s.client.reset();
  s.cache.reset();
  s.limiter.reset();
  // Every request has ended: the events they pushed are written before the process exits.
  if (events_) events_->stop();
  log::write(log::Level::info, "shutdown_complete", {{"exit_code", exit_code()}});
  log::flush();
}

}  // namespace

int run_server(const config::Config& cfg) {
  config::require_server_settings(cfg);
  ServerProcess process(cfg, load_provider(cfg));
  if (!process.listen()) return kExitRuntime;
  process.boot_in_background();
  process.serve_until_stopped();
  process.flush_and_close();
  return process.exit_code();
}

namespace {

/// The reference's `server` flags (cmd/proxy/server.go), as the variables they set.
struct ServerFlags {
  std::map<std::string, std::string> overrides;  // variable -> value; wins over the environment
  std::string env_file;                          // --env: dotenv file, loses to the environment
  bool help = false;
};

/// Parses `server`'s arguments. Throws config::ConfigError with a message for the user (exit 2).
ServerFlags parse_server_flags(const std::vector<std::string>& args) {
  struct Flag {
    std::string_view long_name;
    std::string_view short_name;
    std::string_view variable;  // empty: handled below
  };
  static constexpr Flag kFlags[] = {
      {"--addr", "", "LISTEN_ADDR"},         {"--db", "", "DATABASE_PATH"},
      {"--config", "-c", "API_CONFIG_PATH"}, {"--log-level", "", "LOG_LEVEL"},
      {"--log-file", "", "LOG_FILE"},        {"--env", "", ""},
      {"--file-event-log", "", "EVENT_LOG_FILE"},
  };
  // Flags of the reference that this server does not have, with what to do instead.
  static const std::map<std::string_view, std::string_view> kUnsupported = {
      {"--daemon", "run it under systemd, Docker or another supervisor"},
      {"-d", "run it under systemd, Docker or another supervisor"},
      {"--pid-file", "run it under systemd, Docker or another supervisor"},
  };
  ServerFlags out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg == "--debug" || arg == "-v") {
      out.overrides["LOG_LEVEL"] = "debug";
      continue;
    }
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (const auto it = kUnsupported.find(name); it != kUnsupported.end()) {
      throw config::ConfigError("`server " + name + "` is not supported: " + std::string(it->second));
    }
    const Flag* flag = nullptr;
    for (const auto& f : kFlags) {
      if (name == f.long_name || (!f.short_name.empty() && name == f.short_name)) flag = &f;
    }
    if (flag == nullptr && !arg.starts_with('-')) {
      throw config::ConfigError("unexpected argument \"" + arg + "\" for `server` (it takes only flags; see "
                                "llm-proxy --help)");
    }
    if (flag == nullptr) {
      throw config::ConfigError("unknown flag \"" + arg + "\" for `server` (see llm-proxy --help)");
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw config::ConfigError("flag " + name + " needs a value");
    }
    if (value.empty()) throw config::ConfigError("flag " + name + " needs a non-empty value");
    if (flag->long_name == "--env") {
      out.env_file = value;
    } else if (flag->long_name == "--db" && value.find("://") != std::string::npos) {
      throw config::ConfigError(
          "--db takes a SQLite file path (DATABASE_PATH), like the reference; for PostgreSQL set "
          "DB_DRIVER=postgres and DATABASE_URL in the environment");
    } else {
      out.overrides[std::string(flag->variable)] = value;
    }
  }
  return out;
}

/// Flags first, then the real environment, then the --env file.
config::EnvLookup layered_env(std::map<std::string, std::string> overrides, config::EnvLookup real,
                              const std::vector<std::pair<std::string, std::string>>& file) {
  std::map<std::string, std::string, std::less<>> from_file;
  for (const auto& [key, value] : file) from_file[key] = value;  // a later line wins
  return [overrides = std::map<std::string, std::string, std::less<>>(overrides.begin(), overrides.end()),
          real = std::move(real),
          from_file = std::move(from_file)](std::string_view name) -> std::optional<std::string> {
    if (const auto it = overrides.find(name); it != overrides.end()) return it->second;
    if (auto value = real(name)) return value;
    if (const auto it = from_file.find(name); it != from_file.end()) return it->second;
    return std::nullopt;
  };
}

}  // namespace

int main(int argc, char** argv, const config::EnvLookup& process_env) {
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

  // `llm-proxy` alone is `llm-proxy server` without flags.
  const std::vector<std::string> command_args(args.empty() ? args.end() : args.begin() + 1, args.end());
  config::EnvLookup env = process_env;
  config::Config cfg;
  std::string env_file;
  std::size_t env_file_lines = 0;
  try {
    if (command == "server") {
      ServerFlags flags = parse_server_flags(command_args);
      if (flags.help) {
        std::cout << kUsage;
        return kExitOk;
      }
      std::vector<std::pair<std::string, std::string>> file;
      if (!flags.env_file.empty()) file = config::load_dotenv(flags.env_file);
      env_file = flags.env_file;
      env_file_lines = file.size();
      env = layered_env(std::move(flags.overrides), process_env, file);
    }
    cfg = config::load(env);
    log::setup(cfg.log_level, cfg.log_format == config::LogFormat::json ? log::Format::json : log::Format::console,
               cfg.log_file);
    if (!env_file.empty()) {
      // Names and values stay out of the log (values may be secrets): the effective configuration follows.
      log::write(log::Level::info, "env_file_loaded", {{"path", env_file}, {"variables", env_file_lines}});
    }
  } catch (const std::exception& e) {
    std::cerr << "llm-proxy: configuration error: " << e.what() << "\n";
    return kExitUsage;
  }

  if (command == "healthcheck") return healthcheck(cfg);
  if (command == "migrate") return storage::migrate_command(command_args, cfg, std::cout, std::cerr);
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
