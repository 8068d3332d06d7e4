#pragma once
/// The effective configuration, parsed from environment variables (SPEC §3).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "llmproxy/config/database_url.hpp"  // DATABASE_URL rules, used with this config
#include "llmproxy/util/trusted_proxies.hpp"

namespace llmproxy::config {

using Duration = std::chrono::milliseconds;

/// An invalid configuration value. The message names the variable, the value (unless secret) and what is
/// expected. Fatal at boot (exit code 2).
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Looks up one environment variable; nullopt when unset. Injected so tests never touch the process env.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The real process environment.
EnvLookup process_env();

enum class DbDriver { sqlite, postgres };
enum class LogFormat { json, console };

struct DatabaseConfig {
  DbDriver driver = DbDriver::sqlite;
  std::string path = "./data/llm-proxy.db";  // SQLite file or ":memory:"
  std::string url;                            // PostgreSQL URL or key=value conninfo (secret: has password)
  int pool_size = 10;
  int max_idle_conns = 5;
  Duration conn_max_lifetime = std::chrono::hours(1);
  Duration connect_timeout = std::chrono::seconds(5);
  Duration statement_timeout = std::chrono::seconds(5);
  Duration startup_timeout = std::chrono::seconds(30);
  bool auto_migrate = true;
  Duration migration_lock_timeout = std::chrono::seconds(60);
};

/// Where the Redis cache backend lives (REDIS_CACHE_URL, or REDIS_ADDR + REDIS_DB + REDIS_PASSWORD).
struct RedisEndpoint {
  std::string host = "localhost";
  std::uint16_t port = 6379;
  std::string username;  // ACL user, from the URL only; empty: the default user
  std::string password;  // secret
  int db = 0;
};

/// The response cache (SPEC §13).
enum class CacheBackend { memory, redis };
struct CacheConfig {
  bool enabled = true;                                   // HTTP_CACHE_ENABLED
  CacheBackend backend = CacheBackend::memory;           // HTTP_CACHE_BACKEND
  std::uint64_t max_bytes = 64ull << 20;                 // HTTP_CACHE_MAX_BYTES (memory backend)
  std::uint64_t max_object_bytes = 1ull << 20;           // HTTP_CACHE_MAX_OBJECT_BYTES
  Duration default_ttl{0};                               // HTTP_CACHE_DEFAULT_TTL (0: not stored)
  bool stream_responses = false;                         // HTTP_CACHE_STREAM_RESPONSES
  RedisEndpoint redis;
  std::string redis_key_prefix = "llmproxy:cache:";      // REDIS_CACHE_KEY_PREFIX
  Duration redis_timeout = std::chrono::seconds(1);      // REDIS_CACHE_TIMEOUT
};

/// Rate limits (SPEC §14): where the per-minute counters live, and what happens when that store cannot answer.
enum class RateLimitBackend { memory, redis };
enum class FailMode { open, closed };
struct RateLimitConfig {
  RateLimitBackend backend = RateLimitBackend::memory;  // RATE_LIMIT_BACKEND
  FailMode fail_mode = FailMode::open;                  // RATE_LIMIT_FAIL_MODE
  /// RATE_LIMIT_REDIS_URL; nullopt: the cache's Redis server (REDIS_CACHE_URL or REDIS_ADDR + REDIS_DB + ...).
  std::optional<RedisEndpoint> redis;
  std::string redis_key_prefix = "llmproxy:rl:";             // RATE_LIMIT_KEY_PREFIX
  Duration redis_timeout = std::chrono::milliseconds(250);  // RATE_LIMIT_REDIS_TIMEOUT
};

/// The JSON-lines event log of proxied requests (SPEC §14).
struct EventLogConfig {
  std::string file;                         // EVENT_LOG_FILE; empty: off
  bool bodies = false;                      // EVENT_LOG_BODIES
  std::uint64_t max_body_bytes = 64 << 10;  // EVENT_LOG_MAX_BODY_BYTES
  std::uint64_t max_queue = 10000;          // EVENT_LOG_MAX_QUEUE (events waiting for the writer)
};

/// Parses `redis://[[user]:password@]host[:port][/db]` (user and password percent-decoded). nullopt when malformed.
std::optional<RedisEndpoint> parse_redis_url(std::string_view url);

struct Config {
  std::string management_token;  // empty when unset; required by `server` only
  bool allow_weak_management_token = false;  // ALLOW_WEAK_MANAGEMENT_TOKEN: skip the length/placeholder check
  std::string listen_host;       // empty = all interfaces
  std::uint16_t listen_port = 8080;
  int io_threads = 1;
  std::string api_config_path = "./config/api_providers.yaml";
  std::string default_api_provider = "openai";
  std::string openai_api_url = "https://api.openai.com";  // OPENAI_API_URL: base_url of the built-in provider
  Duration request_timeout = std::chrono::seconds(300);
  Duration stream_idle_timeout = std::chrono::seconds(300);
  Duration header_read_timeout = std::chrono::seconds(30);
  std::uint64_t max_request_size = 10485760;
  // Request hygiene limits (SPEC §5.5, docs/security.md).
  int max_connections = 10000;                                   // open client connections; more are refused
  Duration request_body_timeout = std::chrono::seconds(60);      // whole request body must arrive within this
  std::uint64_t max_buffered_response_size = 10485760;           // larger non-streaming upstream bodies stream
  int max_header_count = 100;                                    // request header fields (431 above it)
  DatabaseConfig db;
  std::string encryption_key;  // 32 raw bytes when set, else empty
  bool require_encryption_key = false;
  Duration token_cache_ttl = std::chrono::seconds(30);
  std::uint64_t token_cache_max = 100000;
  Duration negative_cache_ttl = std::chrono::seconds(5);
  Duration project_cache_ttl = std::chrono::seconds(5);
  Duration cache_stale_if_error = std::chrono::hours(1);  // serve expired cache entries while the DB is down
  bool enforce_project_active = true;
  Duration usage_flush_interval = std::chrono::seconds(1);
  int circuit_breaker_threshold = 5;
  Duration circuit_breaker_cooldown = std::chrono::seconds(30);
  std::string log_level = "info";
  LogFormat log_format = LogFormat::json;
  std::string log_file;
  bool audit_enabled = true;
  bool audit_store_in_db = true;
  std::string audit_log_file = "./data/audit.log";
  /// TRUSTED_PROXIES: peers whose X-Forwarded-For names the client address in audit events (default: none).
  util::TrustedProxies trusted_proxies;
  bool enable_metrics = true;
  std::string metrics_path = "/metrics";
  /// ADMIN_UI_ENABLED: serve the admin web UI at /admin/ (SPEC §15).
  bool admin_ui_enabled = true;
  Duration shutdown_timeout = std::chrono::seconds(30);
  CacheConfig cache;
  RateLimitConfig rate_limit;
  EventLogConfig event_log;
};

/// Parses every variable of SPEC §3. Throws ConfigError on the first invalid value.
/// Does not require MANAGEMENT_TOKEN (only `server` does; see require_server_settings).
Config load(const EnvLookup& env);

/// Checks what only the server needs (MANAGEMENT_TOKEN set, at least 32 characters and not a well-known
/// placeholder unless ALLOW_WEAK_MANAGEMENT_TOKEN; REQUIRE_ENCRYPTION_KEY). Throws ConfigError.
void require_server_settings(const Config& config);

/// Every variable name load() reads, in documentation order.
const std::vector<std::string>& known_variables();

/// One line per variable `NAME=value` with secrets redacted (for the boot log).
std::string redacted_summary(const Config& config);


// Value parsers, exposed for tests. Each returns nullopt when the text is invalid.
std::optional<Duration> parse_duration(std::string_view text);  // 500ms, 30s, 5m, 1h, 1h30m, bare seconds
std::optional<bool> parse_bool(std::string_view text);          // true/false/1/0/yes/no, any case
/// A byte size: bare bytes (`10485760`) or a whole number with a unit, case-insensitive, optionally one space
/// before the unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB. Every unit is a power of 1024 (`10MB` =
/// 10485760, the reference's default written its way). Nullopt when invalid or above 2^64-1.
std::optional<std::uint64_t> parse_size(std::string_view text);
struct ListenAddress {
  std::string host;  // empty = all interfaces
  std::uint16_t port = 0;
};
std::optional<ListenAddress> parse_listen_addr(std::string_view text);  // host:port, :port, [v6]:port

}  // namespace llmproxy::config
