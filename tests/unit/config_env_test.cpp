#include <catch2/catch.hpp>

#include "llmproxy/config/config.hpp"
#include "unit/config_env_support.hpp"
#include "llmproxy/util/crypto.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace cfg = llmproxy::config;
using namespace std::chrono_literals;
using Env = llmproxy::test::Env;

namespace {

using llmproxy::test::load;
using llmproxy::test::load_error;
using llmproxy::test::lookup;

std::string server_error(const cfg::Config& c) {
  try {
    cfg::require_server_settings(c);
  } catch (const cfg::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

// A 32-byte key and its base64 form, as `openssl rand -base64 32` would print it.
const std::string kKeyBytes = "0123456789abcdef0123456789ABCDEF";
const std::string kKeyBase64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY=";

struct VariableCase {
  const char* name;
  const char* valid;                          // a non-default value load() accepts
  std::function<bool(const cfg::Config&)> applied;  // true when `valid` landed in the config
  std::optional<const char*> invalid;         // a value load() rejects; nullopt for free-form text
  bool secret = false;                        // the invalid value must not appear in the message
};

/// One row per variable of known_variables(); the test below fails if a variable is missing here.
const std::vector<VariableCase>& variable_cases() {
  static const std::vector<VariableCase> kCases = {
      {"MANAGEMENT_TOKEN", "mgmt-secret-value", [](auto& c) { return c.management_token == "mgmt-secret-value"; },
       std::nullopt},
      {"ALLOW_WEAK_MANAGEMENT_TOKEN", "yes", [](auto& c) { return c.allow_weak_management_token; }, "sometimes"},
      {"LISTEN_ADDR", "127.0.0.1:9090",
       [](auto& c) { return c.listen_host == "127.0.0.1" && c.listen_port == 9090; }, "127.0.0.1"},
      {"IO_THREADS", "37", [](auto& c) { return c.io_threads == 37; }, "abc"},
      {"API_CONFIG_PATH", "/etc/llm-proxy/apis.yaml",
       [](auto& c) { return c.api_config_path == "/etc/llm-proxy/apis.yaml"; }, std::nullopt},
      {"DEFAULT_API_PROVIDER", "azure", [](auto& c) { return c.default_api_provider == "azure"; }, std::nullopt},
      {"OPENAI_API_URL", "http://127.0.0.1:9000/v1",
       [](auto& c) { return c.openai_api_url == "http://127.0.0.1:9000/v1"; }, "ftp://example.com"},
      {"REQUEST_TIMEOUT", "2m", [](auto& c) { return c.request_timeout == 120s; }, "2 minutes"},
      {"STREAM_IDLE_TIMEOUT", "45s", [](auto& c) { return c.stream_idle_timeout == 45s; }, "0"},
      {"HEADER_READ_TIMEOUT", "750ms", [](auto& c) { return c.header_read_timeout == 750ms; }, "-1s"},
      {"MAX_REQUEST_SIZE", "1048576", [](auto& c) { return c.max_request_size == 1048576u; }, "10XB"},
      {"MAX_CONNECTIONS", "512", [](auto& c) { return c.max_connections == 512; }, "0"},
      {"REQUEST_BODY_TIMEOUT", "15s", [](auto& c) { return c.request_body_timeout == 15s; }, "0"},
      {"MAX_BUFFERED_RESPONSE_SIZE", "65536", [](auto& c) { return c.max_buffered_response_size == 65536u; },
       "64kilo"},
      {"MAX_HEADER_COUNT", "50", [](auto& c) { return c.max_header_count == 50; }, "10001"},
      {"DB_DRIVER", "Postgres", [](auto& c) { return c.db.driver == cfg::DbDriver::postgres; }, "mysql"},
      {"DATABASE_PATH", ":memory:", [](auto& c) { return c.db.path == ":memory:"; }, std::nullopt},
      {"DATABASE_URL", "postgres://app:pw@db:5432/llm",
       [](auto& c) { return c.db.url == "postgres://app:pw@db:5432/llm"; }, "mysql://root:hunter2@db/x", true},
      {"DATABASE_POOL_SIZE", "20", [](auto& c) { return c.db.pool_size == 20; }, "0"},
      {"DATABASE_MAX_IDLE_CONNS", "0", [](auto& c) { return c.db.max_idle_conns == 0; }, "-1"},
      {"DATABASE_CONN_MAX_LIFETIME", "1h30m", [](auto& c) { return c.db.conn_max_lifetime == 90min; }, "0s"},
      {"DATABASE_CONNECT_TIMEOUT", "10", [](auto& c) { return c.db.connect_timeout == 10s; }, "10x"},
      {"DATABASE_STATEMENT_TIMEOUT", "250ms", [](auto& c) { return c.db.statement_timeout == 250ms; }, "0ms"},
      {"DATABASE_STARTUP_TIMEOUT", "0", [](auto& c) { return c.db.startup_timeout == 0s; }, "soon"},
      {"DB_AUTO_MIGRATE", "no", [](auto& c) { return !c.db.auto_migrate; }, "maybe"},
      {"MIGRATION_LOCK_TIMEOUT", "5m", [](auto& c) { return c.db.migration_lock_timeout == 5min; }, "0"},
      {"ENCRYPTION_KEY", kKeyBase64.c_str(), [](auto& c) { return c.encryption_key == kKeyBytes; },
       "c2hvcnQta2V5LXNlY3JldA==", true},
      {"REQUIRE_ENCRYPTION_KEY", "TRUE", [](auto& c) { return c.require_encryption_key; }, "2"},
      {"TOKEN_CACHE_TTL", "0s", [](auto& c) { return c.token_cache_ttl == 0s; }, "1d"},
      {"TOKEN_CACHE_MAX", "500", [](auto& c) { return c.token_cache_max == 500u; }, "0"},
      {"NEGATIVE_CACHE_TTL", "1m", [](auto& c) { return c.negative_cache_ttl == 1min; }, "1.5s"},
      {"PROJECT_CACHE_TTL", "15s", [](auto& c) { return c.project_cache_ttl == 15s; }, "15 s"},
      {"CACHE_STALE_IF_ERROR", "10m", [](auto& c) { return c.cache_stale_if_error == 10min; }, "-5m"},
      {"ENFORCE_PROJECT_ACTIVE", "0", [](auto& c) { return !c.enforce_project_active; }, "off"},
      {"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "false", [](auto& c) { return !c.enforce_project_active; }, "nein"},
      {"USAGE_FLUSH_INTERVAL", "200ms", [](auto& c) { return c.usage_flush_interval == 200ms; }, "0"},
      {"CIRCUIT_BREAKER_THRESHOLD", "3", [](auto& c) { return c.circuit_breaker_threshold == 3; }, "0"},
      {"CIRCUIT_BREAKER_COOLDOWN", "1m", [](auto& c) { return c.circuit_breaker_cooldown == 1min; }, "0m"},
      {"LOG_LEVEL", "DEBUG", [](auto& c) { return c.log_level == "debug"; }, "verbose"},
      {"LOG_FORMAT", "Console", [](auto& c) { return c.log_format == cfg::LogFormat::console; }, "xml"},
      {"LOG_FILE", "/var/log/llm-proxy.log", [](auto& c) { return c.log_file == "/var/log/llm-proxy.log"; },
       std::nullopt},
      {"AUDIT_ENABLED", "false", [](auto& c) { return !c.audit_enabled; }, "disabled"},
      {"AUDIT_STORE_IN_DB", "No", [](auto& c) { return !c.audit_store_in_db; }, "nope"},
      {"AUDIT_LOG_FILE", "/tmp/audit.jsonl", [](auto& c) { return c.audit_log_file == "/tmp/audit.jsonl"; },
       std::nullopt},
      {"TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8",
       [](auto& c) { return c.trusted_proxies.to_string() == "10.0.0.0/8,fd00::/8"; }, "10.0.0.0/33"},
      {"ENABLE_METRICS", "NO", [](auto& c) { return !c.enable_metrics; }, "y"},
      {"METRICS_PATH", "/internal/metrics", [](auto& c) { return c.metrics_path == "/internal/metrics"; },
       "metrics"},
      {"ADMIN_UI_ENABLED", "No", [](auto& c) { return !c.admin_ui_enabled; }, "maybe"},
      {"SHUTDOWN_TIMEOUT", "0", [](auto& c) { return c.shutdown_timeout == 0s; }, "forever"},
      {"HTTP_CACHE_ENABLED", "false", [](auto& c) { return !c.cache.enabled; }, "sometimes"},
      {"HTTP_CACHE_BACKEND", "Redis", [](auto& c) { return c.cache.backend == cfg::CacheBackend::redis; }, "memcached"},
      {"HTTP_CACHE_MAX_BYTES", "128MiB", [](auto& c) { return c.cache.max_bytes == (128ull << 20); }, "0"},
      {"HTTP_CACHE_MAX_OBJECT_BYTES", "256KB", [](auto& c) { return c.cache.max_object_bytes == (256ull << 10); },
       "1 megabyte"},
      {"HTTP_CACHE_DEFAULT_TTL", "5m", [](auto& c) { return c.cache.default_ttl == 5min; }, "-1s"},
      {"HTTP_CACHE_STREAM_RESPONSES", "yes", [](auto& c) { return c.cache.stream_responses; }, "streams"},
      {"REDIS_CACHE_URL", "redis://cache-user:p%40ss@redis.internal:6380/2",
       [](auto& c) {
         const auto& r = c.cache.redis;
         return r.host == "redis.internal" && r.port == 6380 && r.db == 2 && r.username == "cache-user" &&
                r.password == "p@ss";
       },
       "redis://:hunter2@", true},
      {"REDIS_ADDR", "10.1.2.3:6390",
       [](auto& c) { return c.cache.redis.host == "10.1.2.3" && c.cache.redis.port == 6390; }, "10.1.2.3"},
      {"REDIS_DB", "7", [](auto& c) { return c.cache.redis.db == 7; }, "seven"},
      {"REDIS_PASSWORD", "redis-secret", [](auto& c) { return c.cache.redis.password == "redis-secret"; },
       std::nullopt},
      {"REDIS_CACHE_KEY_PREFIX", "tenant-a:cache:", [](auto& c) { return c.cache.redis_key_prefix == "tenant-a:cache:"; },
       "cache:*"},
      {"REDIS_CACHE_TIMEOUT", "250ms", [](auto& c) { return c.cache.redis_timeout == 250ms; }, "0"},
      {"RATE_LIMIT_BACKEND", "REDIS", [](auto& c) { return c.rate_limit.backend == cfg::RateLimitBackend::redis; },
       "etcd"},
      {"RATE_LIMIT_FAIL_MODE", "closed", [](auto& c) { return c.rate_limit.fail_mode == cfg::FailMode::closed; },
       "shut"},
      {"RATE_LIMIT_REDIS_URL", "redis://:limits%3Apw@10.0.0.9/3",
       [](auto& c) {
         const auto& r = c.rate_limit.redis;
         return r && r->host == "10.0.0.9" && r->port == 6379 && r->db == 3 && r->password == "limits:pw";
       },
       "redis://:hunter2@:1", true},
      {"RATE_LIMIT_KEY_PREFIX", "tenant-a:rl:", [](auto& c) { return c.rate_limit.redis_key_prefix == "tenant-a:rl:"; },
       "rl [a]"},
      {"RATE_LIMIT_REDIS_TIMEOUT", "1s", [](auto& c) { return c.rate_limit.redis_timeout == 1s; }, "0ms"},
      {"EVENT_LOG_FILE", "/var/log/llm-proxy/events.jsonl",
       [](auto& c) { return c.event_log.file == "/var/log/llm-proxy/events.jsonl"; }, std::nullopt},
      {"EVENT_LOG_BODIES", "true", [](auto& c) { return c.event_log.bodies; }, "some"},
      {"EVENT_LOG_MAX_BODY_BYTES", "1MiB", [](auto& c) { return c.event_log.max_body_bytes == (1u << 20); }, "1 mb!"},
      {"EVENT_LOG_MAX_QUEUE", "500", [](auto& c) { return c.event_log.max_queue == 500u; }, "0"},
  };
  return kCases;
}

}  // namespace

TEST_CASE("every known variable has a test row in documentation order", "[config]") {
  std::vector<std::string> tested;
  for (const auto& row : variable_cases()) tested.emplace_back(row.name);
  CHECK(tested == cfg::known_variables());
  CHECK(cfg::known_variables().size() == 70);
  const std::set<std::string> unique(cfg::known_variables().begin(), cfg::known_variables().end());
  CHECK(unique.size() == cfg::known_variables().size());
}

TEST_CASE("defaults match SPEC section 3", "[config]") {
  const auto c = load({});
  CHECK(c.management_token.empty());
  CHECK(c.listen_host.empty());
  CHECK(c.listen_port == 8080);
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  CHECK(c.io_threads == std::clamp(cpus, 1, 256));
  CHECK(c.api_config_path == "./config/api_providers.yaml");
  CHECK(c.default_api_provider == "openai");
  CHECK(c.request_timeout == 300s);
  CHECK(c.stream_idle_timeout == 300s);
  CHECK(c.header_read_timeout == 30s);
  CHECK(c.max_request_size == 10485760u);
  CHECK(c.db.driver == cfg::DbDriver::sqlite);
  CHECK(c.db.path == "./data/llm-proxy.db");
  CHECK(c.db.url.empty());
  CHECK(c.db.pool_size == 10);
  CHECK(c.db.max_idle_conns == 5);
  CHECK(c.db.conn_max_lifetime == 1h);
  CHECK(c.db.connect_timeout == 5s);
  CHECK(c.db.statement_timeout == 5s);
  CHECK(c.db.startup_timeout == 30s);
  CHECK(c.db.auto_migrate);
  CHECK(c.db.migration_lock_timeout == 60s);
  CHECK(c.encryption_key.empty());
  CHECK_FALSE(c.require_encryption_key);
  CHECK(c.token_cache_ttl == 30s);
  CHECK(c.token_cache_max == 100000u);
  CHECK(c.negative_cache_ttl == 5s);
  CHECK(c.project_cache_ttl == 5s);
  CHECK(c.enforce_project_active);
  CHECK(c.usage_flush_interval == 1s);
  CHECK(c.circuit_breaker_threshold == 5);
  CHECK(c.circuit_breaker_cooldown == 30s);
  CHECK(c.log_level == "info");
  CHECK(c.log_format == cfg::LogFormat::json);
  CHECK(c.log_file.empty());
  CHECK(c.audit_enabled);
  CHECK(c.audit_store_in_db);
  CHECK(c.audit_log_file == "./data/audit.log");
  CHECK(c.enable_metrics);
  CHECK(c.metrics_path == "/metrics");
  CHECK(c.admin_ui_enabled);
  CHECK(c.shutdown_timeout == 30s);
  CHECK(c.rate_limit.backend == cfg::RateLimitBackend::memory);
  CHECK(c.rate_limit.fail_mode == cfg::FailMode::open);
  CHECK_FALSE(c.rate_limit.redis.has_value());
  CHECK(c.rate_limit.redis_key_prefix == "llmproxy:rl:");
  CHECK(c.rate_limit.redis_timeout == 250ms);
  CHECK(c.event_log.file.empty());
  CHECK_FALSE(c.event_log.bodies);
  CHECK(c.event_log.max_body_bytes == 65536u);
  CHECK(c.event_log.max_queue == 10000u);
}

TEST_CASE("each variable accepts a valid value", "[config]") {
  for (const auto& row : variable_cases()) {
    INFO(row.name << "=" << row.valid);
    // A URL is always present so that DB_DRIVER=postgres is loadable; it does not affect the other rows.
    Env env{{"DATABASE_URL", "postgres://other-host/db"}};
    env[row.name] = row.valid;
    const auto c = load(env);
    CHECK(row.applied(c));
    // ... and the default config does not already satisfy the check, so the row proves something.
    CHECK_FALSE(row.applied(load({})));
  }
}

TEST_CASE("each variable rejects an invalid value with a message naming it", "[config]") {
  for (const auto& row : variable_cases()) {
    if (!row.invalid) continue;
    const std::string value = *row.invalid;
    INFO(row.name << "=" << value);
    const auto message = load_error({{row.name, value}});
    CHECK(message.rfind(std::string("invalid ") + row.name, 0) == 0);
    CHECK(message.find("expected") != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
    if (row.secret) {
      CHECK(message.find(value) == std::string::npos);
    } else {
      CHECK(message.find("=\"" + value + "\"") != std::string::npos);
    }
  }
}

TEST_CASE("free-form variables are exactly the ones without an invalid value", "[config]") {
  std::set<std::string> free_form;
  for (const auto& row : variable_cases()) {
    if (!row.invalid) free_form.insert(row.name);
  }
  CHECK(free_form == std::set<std::string>{"MANAGEMENT_TOKEN", "API_CONFIG_PATH", "DEFAULT_API_PROVIDER",
                                           "DATABASE_PATH", "LOG_FILE", "AUDIT_LOG_FILE", "REDIS_PASSWORD",
                                           "EVENT_LOG_FILE"});
}

TEST_CASE("error messages use the documented one-line format", "[config]") {
  CHECK(load_error({{"IO_THREADS", "abc"}}) == "invalid IO_THREADS=\"abc\": expected an integer from 1 to 256");
  CHECK(load_error({{"IO_THREADS", "0"}}) == "invalid IO_THREADS=\"0\": expected an integer from 1 to 256");
  CHECK(load_error({{"IO_THREADS", "257"}}) == "invalid IO_THREADS=\"257\": expected an integer from 1 to 256");
  CHECK(load_error({{"DB_DRIVER", "mysql"}}) == "invalid DB_DRIVER=\"mysql\": expected sqlite or postgres");
  CHECK(load_error({{"MAX_REQUEST_SIZE", "0"}}) ==
        "invalid MAX_REQUEST_SIZE=\"0\": expected a size of at least 1 byte, in bytes or with a unit such as 512KB, "
        "10MB or 1GiB (B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB; every unit is a power of 1024)");
  // Control characters are escaped so the message stays on one line.
  CHECK(load_error({{"LOG_LEVEL", "info\nwarn"}}) ==
        "invalid LOG_LEVEL=\"info\\x0awarn\": expected trace, debug, info, warn or error");
}

TEST_CASE("integers are strict", "[config]") {
  for (const char* bad : {"4 ", " 4", "+4", "-4", "4.0", "0x10", "4k", "99999999999999999999999"}) {
    INFO(bad);
    CHECK(load_error({{"IO_THREADS", bad}}).rfind("invalid IO_THREADS=", 0) == 0);
  }
  CHECK(load({{"IO_THREADS", "1"}}).io_threads == 1);
  CHECK(load({{"IO_THREADS", "256"}}).io_threads == 256);
  CHECK(load({{"IO_THREADS", "008"}}).io_threads == 8);
  CHECK(load({{"DATABASE_POOL_SIZE", "1"}}).db.pool_size == 1);
  CHECK(load_error({{"DATABASE_POOL_SIZE", "-3"}}).rfind("invalid DATABASE_POOL_SIZE=", 0) == 0);
  CHECK(load_error({{"TOKEN_CACHE_MAX", "18446744073709551616"}}).rfind("invalid TOKEN_CACHE_MAX=", 0) == 0);
  CHECK(load({{"TOKEN_CACHE_MAX", "18446744073709551615"}}).token_cache_max == 18446744073709551615u);
  CHECK(load({{"CIRCUIT_BREAKER_THRESHOLD", "1"}}).circuit_breaker_threshold == 1);
}

TEST_CASE("idle connections are capped at the pool size", "[config]") {
  CHECK(load({{"DATABASE_POOL_SIZE", "2"}}).db.max_idle_conns == 2);
  CHECK(load({{"DATABASE_POOL_SIZE", "2"}, {"DATABASE_MAX_IDLE_CONNS", "8"}}).db.max_idle_conns == 2);
  CHECK(load({{"DATABASE_POOL_SIZE", "20"}, {"DATABASE_MAX_IDLE_CONNS", "8"}}).db.max_idle_conns == 8);
}

TEST_CASE("an empty variable is treated as unset", "[config]") {
  Env env;
  for (const auto& name : cfg::known_variables()) env[name] = "";
  const auto c = load(env);
  CHECK(c.io_threads >= 1);
  CHECK(c.request_timeout == 300s);
  CHECK(c.db.driver == cfg::DbDriver::sqlite);
  CHECK(c.db.path == "./data/llm-proxy.db");
  CHECK(c.audit_log_file == "./data/audit.log");
  CHECK(c.metrics_path == "/metrics");
  CHECK(c.admin_ui_enabled);
  CHECK(c.management_token.empty());
  CHECK(c.encryption_key.empty());
}

TEST_CASE("parse_duration accepts the documented forms", "[config][duration]") {
  const std::pair<const char*, cfg::Duration> good[] = {
      {"500ms", 500ms}, {"30s", 30s},       {"5m", 5min},           {"1h", 1h},         {"1h30m", 90min},
      {"30", 30s},      {"0", 0s},          {"0s", 0s},             {"1h1m1s1ms", 3661001ms},
      {"2h15s", 2h + 15s}, {"1s500ms", 1500ms}, {"90m", 90min},     {"007s", 7s},       {"8760h", 8760h},
  };
  for (const auto& [text, expected] : good) {
    INFO(text);
    const auto parsed = cfg::parse_duration(text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == expected);
  }
}

TEST_CASE("parse_duration rejects everything else", "[config][duration]") {
  for (const char* text : {"", "s", "ms", "-1s", "+1s", "1.5s", "1d", "1us", "1 s", " 1s", "1s ", "1H", "1S",
                           "30m1h", "5s5s", "1ms5s", "1h30", "h1", "1hm", "1sms", "abc",
                           "99999999999999999999s", "9999999999999999h"}) {
    INFO(text);
    CHECK_FALSE(cfg::parse_duration(text).has_value());
  }
}

TEST_CASE("durations have zero and upper-bound rules", "[config][duration]") {
  // Zero would mean "wait forever" or a spinning timer for these.
  for (const char* name : {"REQUEST_TIMEOUT", "STREAM_IDLE_TIMEOUT", "HEADER_READ_TIMEOUT",
                           "DATABASE_CONN_MAX_LIFETIME", "DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT",
                           "MIGRATION_LOCK_TIMEOUT", "USAGE_FLUSH_INTERVAL", "CIRCUIT_BREAKER_COOLDOWN"}) {
    INFO(name);
    const auto message = load_error({{name, "0s"}});
    CHECK(message.rfind(std::string("invalid ") + name + "=\"0s\": expected a duration greater than 0", 0) == 0);
  }
  // Zero has a meaning for these (cache off, try once, do not wait).
  const auto c = load({{"TOKEN_CACHE_TTL", "0"},
                       {"NEGATIVE_CACHE_TTL", "0"},
                       {"PROJECT_CACHE_TTL", "0ms"},
                       {"DATABASE_STARTUP_TIMEOUT", "0"},
                       {"SHUTDOWN_TIMEOUT", "0s"}});
  CHECK(c.token_cache_ttl == 0s);
  CHECK(c.negative_cache_ttl == 0s);
  CHECK(c.project_cache_ttl == 0s);
  CHECK(c.db.startup_timeout == 0s);
  CHECK(c.shutdown_timeout == 0s);
  CHECK(load({{"REQUEST_TIMEOUT", "8760h"}}).request_timeout == 8760h);
  CHECK(load_error({{"REQUEST_TIMEOUT", "8761h"}}).rfind("invalid REQUEST_TIMEOUT=\"8761h\"", 0) == 0);
}

TEST_CASE("parse_bool accepts the documented spellings in any case", "[config][bool]") {
  for (const char* text : {"true", "TRUE", "True", "1", "yes", "YES", "Yes"}) {
    INFO(text);
    CHECK(cfg::parse_bool(text) == std::optional<bool>(true));
  }
  for (const char* text : {"false", "FALSE", "False", "0", "no", "NO", "nO"}) {
    INFO(text);
    CHECK(cfg::parse_bool(text) == std::optional<bool>(false));
  }
  for (const char* text : {"", "on", "off", "y", "n", "t", "f", "2", "true ", " yes", "enabled"}) {
    INFO(text);
    CHECK_FALSE(cfg::parse_bool(text).has_value());
  }
}

TEST_CASE("parse_listen_addr accepts host:port and :port and bracketed IPv6", "[config][listen]") {
  struct Good {
    const char* text;
    const char* host;
    std::uint16_t port;
  };
  const Good good[] = {
      {":8080", "", 8080},          {"0.0.0.0:80", "0.0.0.0", 80},  {"localhost:65535", "localhost", 65535},
      {"[::1]:9000", "::1", 9000},  {"[::]:1", "::", 1},            {":0", "", 0},
      {"my-host.internal:443", "my-host.internal", 443},           {"[fe80::1%eth0]:8080", "fe80::1%eth0", 8080},
  };
  for (const auto& g : good) {
    INFO(g.text);
    const auto parsed = cfg::parse_listen_addr(g.text);
    REQUIRE(parsed.has_value());
    CHECK(parsed->host == g.host);
    CHECK(parsed->port == g.port);
  }
  for (const char* text : {"", "8080", "localhost", "localhost:", ":65536", ":99999", ":-1", ":+80", ": 80",
                           "::1:8080", "[::1]8080", "[::1]:", "[]:80", "[::1", "host name:80", "host:80x",
                           "http://host:80", ":000080"}) {
    INFO(text);
    CHECK_FALSE(cfg::parse_listen_addr(text).has_value());
  }
}

TEST_CASE("LISTEN_ADDR sets host and port and allows port 0", "[config][listen]") {
  const auto c = load({{"LISTEN_ADDR", "[::1]:0"}});
  CHECK(c.listen_host == "::1");
  CHECK(c.listen_port == 0);
  const auto all = load({{"LISTEN_ADDR", ":9999"}});
  CHECK(all.listen_host.empty());
  CHECK(all.listen_port == 9999);
  CHECK(load_error({{"LISTEN_ADDR", ":70000"}}).rfind("invalid LISTEN_ADDR=\":70000\": expected host:port", 0) == 0);
}

TEST_CASE("DB_DRIVER is case-insensitive and postgres needs DATABASE_URL", "[config][database]") {
  CHECK(load({{"DB_DRIVER", "POSTGRES"}, {"DATABASE_URL", "postgres://db/x"}}).db.driver ==
        cfg::DbDriver::postgres);
  CHECK(load({{"DB_DRIVER", "Sqlite"}}).db.driver == cfg::DbDriver::sqlite);
  const auto message = load_error({{"DB_DRIVER", "postgres"}});
  CHECK(message.find("DATABASE_URL") != std::string::npos);
  CHECK(message.find("DB_DRIVER=postgres") != std::string::npos);
  CHECK(load_error({{"DB_DRIVER", "postgres"}, {"DATABASE_URL", ""}}).find("DATABASE_URL is required") !=
        std::string::npos);
  CHECK(load_error({{"DB_DRIVER", "postgresql"}}).rfind("invalid DB_DRIVER=\"postgresql\"", 0) == 0);
}

TEST_CASE("DATABASE_URL accepts URIs and key=value conninfo", "[config][database]") {
  for (const char* url : {"postgres://u:p@h:5432/db?sslmode=require", "postgresql://h/db", "postgres://",
                          "host=db user=app password=secret dbname=x", "host = db password = 'a b'"}) {
    INFO(url);
    CHECK(load({{"DB_DRIVER", "postgres"}, {"DATABASE_URL", url}}).db.url == url);
  }
  for (const char* url : {"user:hunter2@db/x", "POSTGRES://u:hunter2@h/db", "host=db password='hunter2",
                          "hunter2"}) {
    INFO(url);
    const auto message = load_error({{"DATABASE_URL", url}});
    CHECK(message.rfind("invalid DATABASE_URL", 0) == 0);
    CHECK(message.find("hunter2") == std::string::npos);
  }
}

TEST_CASE("ENCRYPTION_KEY must be base64 of exactly 32 bytes and is never echoed", "[config][secrets]") {
  CHECK(load({{"ENCRYPTION_KEY", kKeyBase64}}).encryption_key == kKeyBytes);
  const std::string short_key = llmproxy::util::base64_encode(std::string(31, 'k'));
  const std::string long_key = llmproxy::util::base64_encode(std::string(33, 'k'));
  const std::string url_key = llmproxy::util::base64url_encode(std::string(32, '\xff'));
  for (const std::string& key : {short_key, long_key, url_key, std::string("not base64 at all!"),
                                 kKeyBase64.substr(0, kKeyBase64.size() - 1)}) {
    INFO(key);
    const auto message = load_error({{"ENCRYPTION_KEY", key}});
    CHECK(message.rfind("invalid ENCRYPTION_KEY", 0) == 0);
    CHECK(message.find("32 bytes") != std::string::npos);
    CHECK(message.find(key) == std::string::npos);
  }
}

TEST_CASE("require_server_settings needs MANAGEMENT_TOKEN and the key when required", "[config][secrets]") {
  CHECK(server_error(load({})) ==
        "MANAGEMENT_TOKEN is required for `llm-proxy server`; set it in the environment, e.g. export "
        "MANAGEMENT_TOKEN=$(openssl rand -hex 32)");
  const std::string strong = "0123456789abcdef0123456789abcdef";
  CHECK(server_error(load({{"MANAGEMENT_TOKEN", strong.c_str()}})) == "<no error>");

  const auto required = load({{"MANAGEMENT_TOKEN", strong.c_str()}, {"REQUIRE_ENCRYPTION_KEY", "true"}});
  const auto message = server_error(required);
  CHECK(message.find("REQUIRE_ENCRYPTION_KEY") != std::string::npos);
  CHECK(message.find("ENCRYPTION_KEY is not set") != std::string::npos);
  CHECK(server_error(load({{"MANAGEMENT_TOKEN", strong.c_str()},
                           {"REQUIRE_ENCRYPTION_KEY", "true"},
                           {"ENCRYPTION_KEY", kKeyBase64}})) == "<no error>");
}

TEST_CASE("a short or placeholder MANAGEMENT_TOKEN is refused unless explicitly allowed", "[config][secrets]") {
  const std::string short_token(31, 'k');
  const auto short_error = server_error(load({{"MANAGEMENT_TOKEN", short_token.c_str()}}));
  CHECK(short_error.find("MANAGEMENT_TOKEN is shorter than 32 characters") == 0);
  CHECK(short_error.find(short_token) == std::string::npos);  // the value is a secret, even a weak one
  CHECK(short_error.find("openssl rand -hex 32") != std::string::npos);
  CHECK(server_error(load({{"MANAGEMENT_TOKEN", std::string(32, 'k').c_str()}})) == "<no error>");
  for (const char* placeholder : {"change-me", "CHANGEME", "your-management-token", "Secret"}) {
    INFO(placeholder);
    CHECK(server_error(load({{"MANAGEMENT_TOKEN", placeholder}})).find("a well-known placeholder") !=
          std::string::npos);
    CHECK(server_error(load({{"MANAGEMENT_TOKEN", placeholder}, {"ALLOW_WEAK_MANAGEMENT_TOKEN", "true"}})) ==
          "<no error>");
  }
}

TEST_CASE("redact_database_url removes passwords from every form", "[config][secrets]") {
  const std::pair<const char*, const char*> cases[] = {
      {"postgres://user:hunter2@host:5432/db?sslmode=require", "postgres://user:***@host:5432/db?sslmode=require"},
      {"postgresql://user:hunter2@host/db", "postgresql://user:***@host/db"},
      {"postgres://user@host/db", "postgres://user@host/db"},
      {"postgres://host:5432/db", "postgres://host:5432/db"},
      {"postgres://user:hun@ter/2@host/db", "postgres://user:***@host/db"},
      {"postgres://user:@host/db", "postgres://user:***@host/db"},
      {"postgres://u:hunter2@[::1]:5432/db", "postgres://u:***@[::1]:5432/db"},
      {"postgres://u@h/db?sslmode=disable&password=hunter2&application_name=x",
       "postgres://u@h/db?sslmode=disable&password=***&application_name=x"},
      {"host=db user=app password=hunter2 dbname=x", "host=db user=app password=*** dbname=x"},
      {"host=db password='hun ter2' dbname=x", "host=db password=*** dbname=x"},
      {"password = 'it\\'s hunter2' host=db", "password = *** host=db"},
      {"host=db dbname=x", "host=db dbname=x"},
      {"user:hunter2@db", "<redacted>"},
      {"host=db password='hunter2", "<redacted>"},
  };
  for (const auto& [url, expected] : cases) {
    INFO(url);
    const auto redacted = cfg::redact_database_url(url);
    CHECK(redacted == expected);
    CHECK(redacted.find("hunter2") == std::string::npos);
    CHECK(redacted.find("ter2") == std::string::npos);
  }
}

TEST_CASE("redacted_summary lists every variable and no secret", "[config][secrets]") {
  const auto c = load({{"MANAGEMENT_TOKEN", "mgmt-hunter2"},
                       {"ENCRYPTION_KEY", kKeyBase64},
                       {"DB_DRIVER", "postgres"},
                       {"DATABASE_URL", "postgres://app:hunter2@db:5432/llm?sslmode=require"},
                       {"LISTEN_ADDR", "[::1]:8443"},
                       {"DATABASE_CONN_MAX_LIFETIME", "1h30m"},
                       {"HEADER_READ_TIMEOUT", "1500ms"}});
  const auto summary = cfg::redacted_summary(c);
  for (const auto& name : cfg::known_variables()) {
    INFO(name);
    CHECK(("\n" + summary).find("\n" + name + "=") != std::string::npos);
  }
  CHECK(summary.find("hunter2") == std::string::npos);
  CHECK(summary.find(kKeyBase64) == std::string::npos);
  CHECK(summary.find(kKeyBytes) == std::string::npos);
  CHECK(summary.find("MANAGEMENT_TOKEN=<redacted>\n") != std::string::npos);
  CHECK(summary.find("ENCRYPTION_KEY=<redacted>\n") != std::string::npos);
  CHECK(summary.find("DATABASE_URL=postgres://app:***@db:5432/llm?sslmode=require\n") != std::string::npos);
  CHECK(summary.find("LISTEN_ADDR=[::1]:8443\n") != std::string::npos);
  CHECK(summary.find("DATABASE_CONN_MAX_LIFETIME=1h30m\n") != std::string::npos);
  CHECK(summary.find("HEADER_READ_TIMEOUT=1s500ms\n") != std::string::npos);
  CHECK(summary.find("REQUEST_TIMEOUT=5m\n") != std::string::npos);
  CHECK(summary.find("DB_DRIVER=postgres\n") != std::string::npos);

  const auto defaults = cfg::redacted_summary(load({}));
  CHECK(defaults.find("MANAGEMENT_TOKEN=<unset>\n") != std::string::npos);
  CHECK(defaults.find("ENCRYPTION_KEY=<unset>\n") != std::string::npos);
  CHECK(defaults.find("LISTEN_ADDR=:8080\n") != std::string::npos);
  CHECK(defaults.find("LOG_FORMAT=json\n") != std::string::npos);
  CHECK(defaults.find("TRUSTED_PROXIES=<unset>\n") != std::string::npos);
  CHECK(defaults.find("REDIS_CACHE_URL=redis://localhost:6379/0\n") != std::string::npos);

  // The Redis password, from the URL or REDIS_PASSWORD, is never shown.
  for (const auto& env : {Env{{"REDIS_CACHE_URL", "redis://u:hunter2@r:6379/1"}},
                          Env{{"REDIS_ADDR", "r:6379"}, {"REDIS_PASSWORD", "hunter2"}}}) {
    const auto redis = cfg::redacted_summary(load(env));
    CHECK(redis.find("hunter2") == std::string::npos);
    CHECK(redis.find("REDIS_PASSWORD=<redacted>\n") != std::string::npos);
  }
  // The rate limits' own Redis: shown redacted; unset, it names the cache's.
  CHECK(defaults.find("RATE_LIMIT_REDIS_URL=<REDIS_CACHE_URL>\n") != std::string::npos);
  const auto limits = cfg::redacted_summary(load({{"RATE_LIMIT_REDIS_URL", "redis://rl:hunter2@limits:6380/2"}}));
  CHECK(limits.find("hunter2") == std::string::npos);
  CHECK(limits.find("RATE_LIMIT_REDIS_URL=redis://rl:<redacted>@limits:6380/2\n") != std::string::npos);
}

TEST_CASE("REDIS_CACHE_URL forms", "[config]") {
  const auto url = [](const std::string& v) { return cfg::parse_redis_url(v); };
  auto plain = url("redis://redis");
  REQUIRE(plain);
  CHECK(plain->host == "redis");
  CHECK(plain->port == 6379);
  CHECK(plain->db == 0);
  CHECK(plain->password.empty());
  auto v6 = url("redis://:pw@[::1]:6390/3");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 6390);
  CHECK(v6->db == 3);
  CHECK(v6->username.empty());
  CHECK(v6->password == "pw");
  CHECK(url("redis://h:1/")->db == 0);
  for (const char* bad : {"", "redis://", "rediss://h:6379", "http://h:6379", "redis://h:0", "redis://h:70000",
                          "redis://h/x", "redis://h/-1", "redis://::1", "redis://[::1", "redis://u:%zz@h",
                          "redis://h:6379/1000001"}) {
    INFO(bad);
    CHECK_FALSE(url(bad).has_value());
  }
  // A REDIS_CACHE_URL wins over the reference's REDIS_ADDR and REDIS_DB.
  const auto c = load({{"REDIS_ADDR", "a:1"}, {"REDIS_DB", "4"}, {"REDIS_CACHE_URL", "redis://b:2/5"}});
  CHECK(c.cache.redis.host == "b");
  CHECK(c.cache.redis.port == 2);
  CHECK(c.cache.redis.db == 5);
}

TEST_CASE("durations in the summary parse back to the same value", "[config][duration]") {
  const auto c = load({{"REQUEST_TIMEOUT", "3723004ms"}});
  const auto summary = cfg::redacted_summary(c);
  const std::string key = "REQUEST_TIMEOUT=";
  const auto start = summary.find(key) + key.size();
  const auto shown = summary.substr(start, summary.find('\n', start) - start);
  CHECK(shown == "1h2m3s4ms");
  CHECK(cfg::parse_duration(shown) == std::optional<cfg::Duration>(3723004ms));
}

TEST_CASE("process_env reads the real environment", "[config]") {
  ::setenv("LLMPROXY_CONFIG_TEST_VAR", "value-1", 1);
  const auto env = cfg::process_env();
  CHECK(env("LLMPROXY_CONFIG_TEST_VAR") == std::optional<std::string>("value-1"));
  ::unsetenv("LLMPROXY_CONFIG_TEST_VAR");
  CHECK_FALSE(env("LLMPROXY_CONFIG_TEST_VAR").has_value());
}
