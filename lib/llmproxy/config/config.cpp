#include "llmproxy/config/config.hpp"

#include "llmproxy/config/providers.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <thread>
#include <type_traits>

namespace llmproxy::config {

// Decisions (also in docs/configuration.md):
// - An empty variable is treated as unset (so `FOO=` in an env file means "use the default"). Compose and
//   systemd env files make accidental empty values common, and no variable has a meaningful empty value.
// - Values are taken verbatim: surrounding whitespace is an error, not trimmed.
// - Durations must be > 0 for timeouts and periods, where 0 would mean "wait forever" to a driver or a
//   spinning timer. Zero is allowed where it has a clear meaning: the three cache TTLs (0 = cache disabled),
//   CACHE_STALE_IF_ERROR (0 = never stale), DATABASE_STARTUP_TIMEOUT (0 = try once) and SHUTDOWN_TIMEOUT (0 = do not wait for in-flight requests).
//   Every duration is at most 8760h so that adding it to a clock can never overflow.
// - DATABASE_MAX_IDLE_CONNS above DATABASE_POOL_SIZE is capped to the pool size (a pool cannot keep more idle
//   connections than it may open), like Go's database/sql that the reference uses.

namespace {

using namespace std::string_view_literals;

constexpr std::int64_t kMsPerSecond = 1000;
constexpr std::int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr std::int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr Duration kMaxDuration{8760 * kMsPerHour};

constexpr int kMaxIoThreads = 256;
constexpr int kMaxPoolSize = 1000;
constexpr int kMaxBreakerThreshold = 1000000;
constexpr int kMaxConnections = 1000000;
constexpr int kMaxHeaderCount = 10000;
constexpr std::size_t kMinManagementTokenLength = 32;

/// Values people paste from examples; never accepted as a management token (compared case-insensitively).
constexpr std::string_view kPlaceholderTokens[] = {
    "change-me", "changeme", "change_me", "your-management-token", "your_management_token",
    "management-token", "secret", "password", "token", "replace-me", "xxx"};

constexpr std::string_view kRedacted = "<redacted>";
constexpr std::string_view kUnset = "<unset>";

constexpr std::string_view kManagementTokenHelp =
    "MANAGEMENT_TOKEN is required for `llm-proxy server`; set it in the environment, e.g. export "
    "MANAGEMENT_TOKEN=$(openssl rand -hex 32)";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

/// Unsigned decimal, digits only (no sign, no spaces); nullopt on overflow.
std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

/// The value as it appears in an error message: quoted, on one line (control characters escaped) and
/// shortened, because a pasted blob should not flood the boot log.
std::string quoted(std::string_view value) {
  constexpr std::size_t kMaxShown = 120;
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

[[noreturn]] void fail(std::string_view name, std::string_view value, std::string_view expected) {
  throw ConfigError("invalid " + std::string{name} + "=" + quoted(value) + ": expected " + std::string{expected});
}

/// For secrets: the message says which variable and what is expected, never what was given.
[[noreturn]] void fail_secret(std::string_view name, std::string_view expected) {
  throw ConfigError("invalid " + std::string{name} + " (value not shown): expected " + std::string{expected});
}

std::string format_listen(const std::string& host, std::uint16_t port) {
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return shown + ":" + std::to_string(port);
}

// --- Reading variables --------------------------------------------------------------------------------------

/// Reads variables through the injected lookup and applies the shared rules (empty = unset, error format).
class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  std::optional<std::string> get(std::string_view name) const {
    auto value = env_(name);
    if (value && value->empty()) return std::nullopt;
    return value;
  }

  std::string string(std::string_view name, std::string fallback) const {
    auto value = get(name);
    return value ? std::move(*value) : std::move(fallback);
  }

  bool boolean(std::string_view name, bool fallback) const {
    const auto value = get(name);
    if (!value) return fallback;
    const auto parsed = parse_bool(*value);
    if (!parsed) fail(name, *value, "true, false, 1, 0, yes or no");
    return *parsed;
  }

  /// `allow_zero`: whether 0 is accepted (see the decisions at the top of this file).
  Duration duration(std::string_view name, Duration fallback, bool allow_zero) const {
    const auto value = get(name);
    if (!value) return fallback;
    const auto parsed = parse_duration(*value);
    if (!parsed || *parsed > kMaxDuration || (!allow_zero && parsed->count() == 0)) {
      fail(name, *value,
           std::string{allow_zero ? "a duration from 0 to 8760h" : "a duration greater than 0 and at most 8760h"} +
               ", such as 500ms, 30s, 5m, 1h30m, or a whole number of seconds");
    }
    return *parsed;
  }

  /// A byte size (parse_size) from `min` up.
  std::uint64_t size(std::string_view name, std::uint64_t fallback, std::uint64_t min) const {
    const auto value = get(name);
    if (!value) return fallback;
    const auto parsed = parse_size(*value);
    if (!parsed || *parsed < min) {
      fail(name, *value,
           "a size of at least " + std::to_string(min) +
               " byte, in bytes or with a unit such as 512KB, 10MB or 1GiB (B, K/KB/KiB, M/MB/MiB, G/GB/GiB, "
               "T/TB/TiB; every unit is a power of 1024)");
    }
    return *parsed;
  }

  template <typename T>
  T integer(std::string_view name, T fallback, T min, T max) const {
    static_assert(std::is_integral_v<T>);
    const auto value = get(name);
    if (!value) return fallback;
    const auto parsed = parse_unsigned(*value);
    const bool in_range = parsed && *parsed <= static_cast<std::uint64_t>(std::numeric_limits<T>::max()) &&
                          static_cast<T>(*parsed) >= min && static_cast<T>(*parsed) <= max;
    if (!in_range) {
      if (max == std::numeric_limits<T>::max()) {
        fail(name, *value, "an integer of at least " + std::to_string(min));
      }
      fail(name, *value, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return static_cast<T>(*parsed);
  }

  /// One of `choices` (case-insensitive); returns it in lower case.
  std::string choice(std::string_view name, std::string fallback, const std::vector<std::string_view>& choices,
                     std::string_view expected) const {
    const auto value = get(name);
    if (!value) return fallback;
    std::string low = lower(*value);
    if (std::find(choices.begin(), choices.end(), low) == choices.end()) fail(name, *value, expected);
    return low;
  }

 private:
  const EnvLookup& env_;
};

int default_io_threads() {
  const unsigned cpus = std::thread::hardware_concurrency();  // 0 when unknown
  return static_cast<int>(std::clamp<unsigned>(cpus, 1, kMaxIoThreads));
}

bool valid_metrics_path(std::string_view path) {
  if (!path.starts_with('/')) return false;
  // A request target path: visible ASCII only, and no query or fragment (the router matches the path).
  return std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '?' && c != '#'; });
}

constexpr int kMaxRedisDb = 1000000;

/// `%XX` sequences decoded; nullopt on a malformed one.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int value = 0;
    for (std::size_t k = 1; k <= 2; ++k) {
      const char c = s[i + k];
      const char l = static_cast<char>(c | 0x20);
      const int d = is_digit(c) ? c - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      value = value * 16 + d;
    }
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

/// A `redis://` URL variable, if set. The value is never echoed when it may hold a password.
std::optional<RedisEndpoint> redis_url(const Reader& r, std::string_view name) {
  const auto url = r.get(name);
  if (!url) return std::nullopt;
  auto parsed = parse_redis_url(*url);
  constexpr std::string_view kExpected =
      "redis://[[user]:password@]host[:port][/db], such as redis://redis:6379/0 (TLS, rediss://, is not supported: "
      "keep Redis on a private network)";
  if (!parsed) {
    if (url->find('@') != std::string::npos) fail_secret(name, kExpected);
    fail(name, *url, kExpected);
  }
  return parsed;
}

/// A Redis key prefix variable, if set. SCAN MATCH patterns are built from prefixes: no glob characters, nothing
/// invisible.
std::optional<std::string> redis_key_prefix(const Reader& r, std::string_view name) {
  auto prefix = r.get(name);
  if (!prefix) return std::nullopt;
  const bool ok = prefix->size() <= 200 && std::all_of(prefix->begin(), prefix->end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '*' && c != '?' && c != '[' && c != ']' && c != '\\';
  });
  if (!ok) fail(name, *prefix, "up to 200 visible ASCII characters other than * ? [ ] \\");
  return std::string{*prefix};
}

void load_cache(const Reader& r, CacheConfig& cache) {
  cache.enabled = r.boolean("HTTP_CACHE_ENABLED", cache.enabled);
  const std::string backend = r.choice("HTTP_CACHE_BACKEND", "memory", {"memory", "redis"}, "memory or redis");
  cache.backend = backend == "redis" ? CacheBackend::redis : CacheBackend::memory;
  cache.max_bytes = r.size("HTTP_CACHE_MAX_BYTES", cache.max_bytes, 1);
  cache.max_object_bytes = r.size("HTTP_CACHE_MAX_OBJECT_BYTES", cache.max_object_bytes, 1);
  cache.default_ttl = r.duration("HTTP_CACHE_DEFAULT_TTL", cache.default_ttl, true);
  cache.stream_responses = r.boolean("HTTP_CACHE_STREAM_RESPONSES", cache.stream_responses);
  // REDIS_CACHE_URL wins over REDIS_ADDR/REDIS_DB/REDIS_PASSWORD (the reference's names); every one set is validated.
  if (const auto addr = r.get("REDIS_ADDR")) {
    const auto parsed = parse_listen_addr(*addr);
    if (!parsed || parsed->host.empty() || parsed->port == 0) {
      fail("REDIS_ADDR", *addr, "host:port such as localhost:6379 or [::1]:6379");
    }
    cache.redis.host = parsed->host;
    cache.redis.port = parsed->port;
  }
  cache.redis.db = r.integer<int>("REDIS_DB", cache.redis.db, 0, kMaxRedisDb);
  cache.redis.password = r.string("REDIS_PASSWORD", "");
  if (auto url = redis_url(r, "REDIS_CACHE_URL")) cache.redis = std::move(*url);
  if (auto prefix = redis_key_prefix(r, "REDIS_CACHE_KEY_PREFIX")) cache.redis_key_prefix = std::move(*prefix);
  cache.redis_timeout = r.duration("REDIS_CACHE_TIMEOUT", cache.redis_timeout, false);
}

void load_rate_limit(const Reader& r, RateLimitConfig& limits) {
  const std::string backend = r.choice("RATE_LIMIT_BACKEND", "memory", {"memory", "redis"}, "memory or redis");
  limits.backend = backend == "redis" ? RateLimitBackend::redis : RateLimitBackend::memory;
  const std::string mode = r.choice("RATE_LIMIT_FAIL_MODE", "open", {"open", "closed"}, "open or closed");
  limits.fail_mode = mode == "closed" ? FailMode::closed : FailMode::open;
  limits.redis = redis_url(r, "RATE_LIMIT_REDIS_URL");
  if (auto prefix = redis_key_prefix(r, "RATE_LIMIT_KEY_PREFIX")) limits.redis_key_prefix = std::move(*prefix);
  limits.redis_timeout = r.duration("RATE_LIMIT_REDIS_TIMEOUT", limits.redis_timeout, false);
}

void load_event_log(const Reader& r, EventLogConfig& events) {
  events.file = r.string("EVENT_LOG_FILE", "");
  events.bodies = r.boolean("EVENT_LOG_BODIES", events.bodies);
  events.max_body_bytes = r.size("EVENT_LOG_MAX_BODY_BYTES", events.max_body_bytes, 0);
  events.max_queue = r.integer<std::uint64_t>("EVENT_LOG_MAX_QUEUE", events.max_queue, 1, 10000000);
}

}  // namespace

std::optional<RedisEndpoint> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  std::string_view rest = url.substr(kScheme.size());
  RedisEndpoint out;
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto n = all_digits(db) ? parse_unsigned(db) : std::nullopt;
      if (!n || *n > static_cast<std::uint64_t>(kMaxRedisDb)) return std::nullopt;
      out.db = static_cast<int>(*n);
    }
  }
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view info = authority.substr(0, at);
    const std::size_t colon = info.find(':');
    const auto user = percent_decode(info.substr(0, colon));
    if (!user) return std::nullopt;
    out.username = *user;
    if (colon != std::string_view::npos) {
      const auto password = percent_decode(info.substr(colon + 1));
      if (!password) return std::nullopt;
      out.password = *password;
    }
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return std::nullopt;
  // host, host:port, [v6] or [v6]:port
  const bool bracketed = authority.starts_with('[');
  const std::size_t close = bracketed ? authority.find(']') : std::string_view::npos;
  if (bracketed && close == std::string_view::npos) return std::nullopt;
  const std::size_t colon = bracketed ? (close + 1 < authority.size() ? close + 1 : std::string_view::npos)
                                      : authority.rfind(':');
  std::string hostport{authority};
  if (colon == std::string_view::npos) hostport += ":6379";
  const auto parsed = parse_listen_addr(hostport);
  if (!parsed || parsed->host.empty() || parsed->port == 0) return std::nullopt;
  out.host = parsed->host;
  out.port = parsed->port;
  return out;
}

// --- Public parsers -----------------------------------------------------------------------------------------

std::optional<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (all_digits(text)) {
    const auto seconds = parse_unsigned(text);
    if (!seconds || *seconds > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / kMsPerSecond)) {
      return std::nullopt;
    }
    return Duration{static_cast<std::int64_t>(*seconds) * kMsPerSecond};
  }
  // Components <number><unit> with units strictly decreasing (h, m, s, ms), each at most once: "1h30m" and
  // "1s500ms" are accepted, "30m1h" and "5s5s" are rejected as likely typos.
  struct Unit {
    std::string_view suffix;
    std::int64_t ms;
  };
  constexpr Unit kUnits[] = {{"h", kMsPerHour}, {"m", kMsPerMinute}, {"s", kMsPerSecond}, {"ms", 1}};
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index of the largest unit still allowed
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    const auto number = parse_unsigned(text.substr(start, i - start));
    if (!number) return std::nullopt;
    // "ms" must be matched before "m".
    std::size_t unit = std::size(kUnits);
    if (text.substr(i).starts_with("ms")) {
      unit = 3;
    } else if (i < text.size()) {
      for (std::size_t u = 0; u < 3; ++u) {
        if (text[i] == kUnits[u].suffix[0]) unit = u;
      }
    }
    if (unit == std::size(kUnits) || unit < next_unit) return std::nullopt;
    i += kUnits[unit].suffix.size();
    next_unit = unit + 1;
    const std::int64_t limit = std::numeric_limits<std::int64_t>::max();
    if (*number > static_cast<std::uint64_t>(limit / kUnits[unit].ms)) return std::nullopt;
    const std::int64_t part = static_cast<std::int64_t>(*number) * kUnits[unit].ms;
    if (total > limit - part) return std::nullopt;
    total += part;
  }
  return Duration{total};
}

std::optional<bool> parse_bool(std::string_view text) {
  const std::string low = lower(text);
  if (low == "true" || low == "1" || low == "yes") return true;
  if (low == "false" || low == "0" || low == "no") return false;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) ++digits;
  const auto number = parse_unsigned(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(digits);
  if (unit.empty()) return number;
  if (unit.front() == ' ') unit.remove_prefix(1);
  // The reference documents `10MB` as its default of 10*1024*1024 bytes: every unit is binary, with or
  // without the `i`.
  const std::string low = lower(unit);
  struct Unit {
    std::string_view name;
    unsigned shift;
  };
  constexpr Unit kUnits[] = {{"b", 0},   {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20},
                             {"mib", 20}, {"g", 30},  {"gb", 30}, {"gib", 30}, {"t", 40},  {"tb", 40},
                             {"tib", 40}};
  for (const auto& u : kUnits) {
    if (low != u.name) continue;
    if (*number > (std::numeric_limits<std::uint64_t>::max() >> u.shift)) return std::nullopt;
    return *number << u.shift;
  }
  return std::nullopt;
}

std::optional<ListenAddress> parse_listen_addr(std::string_view text) {
  ListenAddress out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    const std::string_view host = text.substr(1, close - 1);
    // An IPv6 literal, optionally with a zone (`fe80::1%eth0`).
    const bool ok = host.find(':') != std::string_view::npos &&
                    std::all_of(host.begin(), host.end(), [](char c) {
                      return is_alnum(c) || c == ':' || c == '.' || c == '%' || c == '-' || c == '_';
                    });
    if (!ok) return std::nullopt;
    out.host = std::string{host};
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view host = text.substr(0, colon);
    // A host name or IPv4 address; a bare IPv6 address must be bracketed or its last group reads as the port.
    const bool ok = std::all_of(host.begin(), host.end(),
                                [](char c) { return is_alnum(c) || c == '.' || c == '-' || c == '_'; });
    if (!ok) return std::nullopt;
    out.host = std::string{host};
    port_text = text.substr(colon + 1);
  }
  if (port_text.size() > 5) return std::nullopt;
  const auto port = parse_unsigned(port_text);
  if (!port || *port > 65535) return std::nullopt;
  out.port = static_cast<std::uint16_t>(*port);
  return out;
}

// --- Loading ------------------------------------------------------------------------------------------------

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key{name};
    // getenv is safe here: the environment is read once at boot, before any thread could call setenv.
    const char* value = std::getenv(key.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string{value};
  };
}

const std::vector<std::string>& known_variables() {
  static const std::vector<std::string> kNames = {
      "MANAGEMENT_TOKEN",
      "ALLOW_WEAK_MANAGEMENT_TOKEN",
      "LISTEN_ADDR",
      "IO_THREADS",
      "API_CONFIG_PATH",
      "DEFAULT_API_PROVIDER",
      "OPENAI_API_URL",
      "REQUEST_TIMEOUT",
      "STREAM_IDLE_TIMEOUT",
      "HEADER_READ_TIMEOUT",
      "MAX_REQUEST_SIZE",
      "MAX_CONNECTIONS",
      "REQUEST_BODY_TIMEOUT",
      "MAX_BUFFERED_RESPONSE_SIZE",
      "MAX_HEADER_COUNT",
      "DB_DRIVER",
      "DATABASE_PATH",
      "DATABASE_URL",
      "DATABASE_POOL_SIZE",
      "DATABASE_MAX_IDLE_CONNS",
      "DATABASE_CONN_MAX_LIFETIME",
      "DATABASE_CONNECT_TIMEOUT",
      "DATABASE_STATEMENT_TIMEOUT",
      "DATABASE_STARTUP_TIMEOUT",
      "DB_AUTO_MIGRATE",
      "MIGRATION_LOCK_TIMEOUT",
      "ENCRYPTION_KEY",
      "REQUIRE_ENCRYPTION_KEY",
      "TOKEN_CACHE_TTL",
      "TOKEN_CACHE_MAX",
      "NEGATIVE_CACHE_TTL",
      "PROJECT_CACHE_TTL",
      "CACHE_STALE_IF_ERROR",
      "ENFORCE_PROJECT_ACTIVE",
      "LLM_PROXY_ENFORCE_PROJECT_ACTIVE",
      "USAGE_FLUSH_INTERVAL",
      "CIRCUIT_BREAKER_THRESHOLD",
      "CIRCUIT_BREAKER_COOLDOWN",
      "LOG_LEVEL",
      "LOG_FORMAT",
      "LOG_FILE",
      "AUDIT_ENABLED",
      "AUDIT_STORE_IN_DB",
      "AUDIT_LOG_FILE",
      "TRUSTED_PROXIES",
      "ENABLE_METRICS",
      "METRICS_PATH",
      "ADMIN_UI_ENABLED",
      "SHUTDOWN_TIMEOUT",
      "HTTP_CACHE_ENABLED",
      "HTTP_CACHE_BACKEND",
      "HTTP_CACHE_MAX_BYTES",
      "HTTP_CACHE_MAX_OBJECT_BYTES",
      "HTTP_CACHE_DEFAULT_TTL",
      "HTTP_CACHE_STREAM_RESPONSES",
      "REDIS_CACHE_URL",
      "REDIS_ADDR",
      "REDIS_DB",
      "REDIS_PASSWORD",
      "REDIS_CACHE_KEY_PREFIX",
      "REDIS_CACHE_TIMEOUT",
      "RATE_LIMIT_BACKEND",
      "RATE_LIMIT_FAIL_MODE",
      "RATE_LIMIT_REDIS_URL",
      "RATE_LIMIT_KEY_PREFIX",
      "RATE_LIMIT_REDIS_TIMEOUT",
      "EVENT_LOG_FILE",
      "EVENT_LOG_BODIES",
      "EVENT_LOG_MAX_BODY_BYTES",
      "EVENT_LOG_MAX_QUEUE",
  };
  return kNames;
}

Config load(const EnvLookup& env) {
  const Reader r{env};
  Config c;

  c.management_token = r.string("MANAGEMENT_TOKEN", "");
  c.allow_weak_management_token = r.boolean("ALLOW_WEAK_MANAGEMENT_TOKEN", c.allow_weak_management_token);

  if (const auto addr = r.get("LISTEN_ADDR")) {
    const auto parsed = parse_listen_addr(*addr);
    if (!parsed) {
      fail("LISTEN_ADDR", *addr, "host:port, :port or [ipv6]:port with a port from 0 to 65535 (0 = any free port)");
    }
    c.listen_host = parsed->host;
    c.listen_port = parsed->port;
  }

  c.io_threads = r.integer<int>("IO_THREADS", default_io_threads(), 1, kMaxIoThreads);
  c.api_config_path = r.string("API_CONFIG_PATH", c.api_config_path);
  c.default_api_provider = r.string("DEFAULT_API_PROVIDER", c.default_api_provider);
  // The reference's OPENAI_API_URL: base_url of the built-in provider (used when API_CONFIG_PATH does not
  // exist). Validated whenever set, like every other variable.
  if (const auto url = r.get("OPENAI_API_URL")) {
    try {
      (void)builtin_providers(*url);
    } catch (const ConfigError&) {
      constexpr std::string_view kExpected = "an http:// or https:// URL with a host, such as https://api.openai.com";
      // A value with user info may carry a password: not echoed.
      if (url->find('@') != std::string::npos) fail_secret("OPENAI_API_URL", kExpected);
      fail("OPENAI_API_URL", *url, kExpected);
    }
    c.openai_api_url = *url;
  }
  c.request_timeout = r.duration("REQUEST_TIMEOUT", c.request_timeout, false);
  c.stream_idle_timeout = r.duration("STREAM_IDLE_TIMEOUT", c.stream_idle_timeout, false);
  c.header_read_timeout = r.duration("HEADER_READ_TIMEOUT", c.header_read_timeout, false);
  c.max_request_size = r.size("MAX_REQUEST_SIZE", c.max_request_size, 1);
  c.max_connections = r.integer<int>("MAX_CONNECTIONS", c.max_connections, 1, kMaxConnections);
  c.request_body_timeout = r.duration("REQUEST_BODY_TIMEOUT", c.request_body_timeout, false);
  c.max_buffered_response_size = r.size("MAX_BUFFERED_RESPONSE_SIZE", c.max_buffered_response_size, 1);
  c.max_header_count = r.integer<int>("MAX_HEADER_COUNT", c.max_header_count, 1, kMaxHeaderCount);

  DatabaseConfig& db = c.db;
  const std::string driver = r.choice("DB_DRIVER", "sqlite", {"sqlite", "postgres"}, "sqlite or postgres");
  db.driver = driver == "postgres" ? DbDriver::postgres : DbDriver::sqlite;
  db.path = r.string("DATABASE_PATH", db.path);
  db.url = r.string("DATABASE_URL", "");
  if (!db.url.empty()) {
    // Validated whenever set, whatever the driver, so a broken value is found before the day it is needed.
    // The value is never echoed: a malformed one may still hold a password.
    // One rule for the form, shared with every other reader of the URL (config/database_url.hpp).
    if (database_url_form(db.url) == DatabaseUrlForm::invalid) {
      fail_secret("DATABASE_URL",
                  "postgres://user:password@host:5432/dbname?sslmode=require or libpq key=value form such as "
                  "host=db user=app password=... dbname=llmproxy");
    }
  }
  if (db.driver == DbDriver::postgres && db.url.empty()) {
    throw ConfigError(
        "DATABASE_URL is required when DB_DRIVER=postgres; set it to e.g. "
        "postgres://user:password@host:5432/llmproxy?sslmode=require");
  }
  db.pool_size = r.integer<int>("DATABASE_POOL_SIZE", db.pool_size, 1, kMaxPoolSize);
  db.max_idle_conns = std::min(r.integer<int>("DATABASE_MAX_IDLE_CONNS", db.max_idle_conns, 0, kMaxPoolSize),
                               db.pool_size);
  db.conn_max_lifetime = r.duration("DATABASE_CONN_MAX_LIFETIME", db.conn_max_lifetime, false);
  db.connect_timeout = r.duration("DATABASE_CONNECT_TIMEOUT", db.connect_timeout, false);
  db.statement_timeout = r.duration("DATABASE_STATEMENT_TIMEOUT", db.statement_timeout, false);
  db.startup_timeout = r.duration("DATABASE_STARTUP_TIMEOUT", db.startup_timeout, true);
  db.auto_migrate = r.boolean("DB_AUTO_MIGRATE", db.auto_migrate);
  db.migration_lock_timeout = r.duration("MIGRATION_LOCK_TIMEOUT", db.migration_lock_timeout, false);

  if (const auto key = r.get("ENCRYPTION_KEY")) {
    auto raw = util::base64_decode(*key);
    if (!raw || raw->size() != 32) {
      fail_secret("ENCRYPTION_KEY", "standard base64 of exactly 32 bytes, e.g. the output of openssl rand -base64 32");
    }
    c.encryption_key = std::move(*raw);
  }
  c.require_encryption_key = r.boolean("REQUIRE_ENCRYPTION_KEY", c.require_encryption_key);

  c.token_cache_ttl = r.duration("TOKEN_CACHE_TTL", c.token_cache_ttl, true);
  c.token_cache_max = r.integer<std::uint64_t>("TOKEN_CACHE_MAX", c.token_cache_max, 1,
                                               std::numeric_limits<std::uint64_t>::max());
  c.negative_cache_ttl = r.duration("NEGATIVE_CACHE_TTL", c.negative_cache_ttl, true);
  c.project_cache_ttl = r.duration("PROJECT_CACHE_TTL", c.project_cache_ttl, true);
  c.cache_stale_if_error = r.duration("CACHE_STALE_IF_ERROR", c.cache_stale_if_error, true);
  // LLM_PROXY_ENFORCE_PROJECT_ACTIVE is the reference's name; ours wins when both are set (both are validated).
  c.enforce_project_active = r.boolean("ENFORCE_PROJECT_ACTIVE",
                                       r.boolean("LLM_PROXY_ENFORCE_PROJECT_ACTIVE", c.enforce_project_active));
  c.usage_flush_interval = r.duration("USAGE_FLUSH_INTERVAL", c.usage_flush_interval, false);
  c.circuit_breaker_threshold =
      r.integer<int>("CIRCUIT_BREAKER_THRESHOLD", c.circuit_breaker_threshold, 1, kMaxBreakerThreshold);
  c.circuit_breaker_cooldown = r.duration("CIRCUIT_BREAKER_COOLDOWN", c.circuit_breaker_cooldown, false);

  c.log_level = r.choice("LOG_LEVEL", c.log_level, {"trace", "debug", "info", "warn", "error"},
                         "trace, debug, info, warn or error");
  // `text` is the reference's name for the human-readable format.
  const std::string format =
      r.choice("LOG_FORMAT", "json", {"json", "console", "text"}, "json, console or text (= console)");
  c.log_format = format == "json" ? LogFormat::json : LogFormat::console;
  c.log_file = r.string("LOG_FILE", "");

  c.audit_enabled = r.boolean("AUDIT_ENABLED", c.audit_enabled);
  c.audit_store_in_db = r.boolean("AUDIT_STORE_IN_DB", c.audit_store_in_db);
  c.audit_log_file = r.string("AUDIT_LOG_FILE", c.audit_log_file);
  if (const auto proxies = r.get("TRUSTED_PROXIES")) {
    try {
      c.trusted_proxies = util::TrustedProxies::parse(*proxies);
    } catch (const util::TrustedProxiesError& e) {
      fail("TRUSTED_PROXIES", *proxies,
           std::string("a comma-separated list of IPv4/IPv6 CIDR ranges or addresses such as "
                       "10.0.0.0/8,2001:db8::/32 (") + e.what() + ")");
    }
  }

  c.enable_metrics = r.boolean("ENABLE_METRICS", c.enable_metrics);
  c.admin_ui_enabled = r.boolean("ADMIN_UI_ENABLED", c.admin_ui_enabled);
  if (const auto path = r.get("METRICS_PATH")) {
    if (!valid_metrics_path(*path)) {
      fail("METRICS_PATH", *path, "a URL path starting with '/' without spaces, '?' or '#', such as /metrics");
    }
    c.metrics_path = *path;
  }
  c.shutdown_timeout = r.duration("SHUTDOWN_TIMEOUT", c.shutdown_timeout, true);
  load_cache(r, c.cache);
  load_rate_limit(r, c.rate_limit);
  load_event_log(r, c.event_log);
  return c;
}

void require_server_settings(const Config& config) {
  if (config.management_token.empty()) throw ConfigError(std::string{kManagementTokenHelp});
  if (!config.allow_weak_management_token) {
    const std::string lowered = lower(config.management_token);
    const bool placeholder = std::any_of(std::begin(kPlaceholderTokens), std::end(kPlaceholderTokens),
                                         [&](std::string_view p) { return lowered == p; });
    if (placeholder || config.management_token.size() < kMinManagementTokenLength) {
      throw ConfigError(std::string{"MANAGEMENT_TOKEN is "} +
                        (placeholder ? "a well-known placeholder" : "shorter than 32 characters") +
                        "; anyone who guesses it controls every project and key. Generate one with "
                        "export MANAGEMENT_TOKEN=$(openssl rand -hex 32) (or set ALLOW_WEAK_MANAGEMENT_TOKEN=true "
                        "for a throwaway local setup)");
    }
  }
  if (config.require_encryption_key && config.encryption_key.empty()) {
    throw ConfigError(
        "REQUIRE_ENCRYPTION_KEY=true but ENCRYPTION_KEY is not set; set it to base64 of 32 random bytes, e.g. "
        "export ENCRYPTION_KEY=$(openssl rand -base64 32)");
  }
}

namespace {

/// `redis://user:<redacted>@host:port/db`.
std::string redacted_redis_url(const RedisEndpoint& e) {
  // Appended piece by piece (GCC 12 warns with -Wrestrict about some chains of operator+ on temporaries).
  std::string url = "redis://";
  if (!e.username.empty() || !e.password.empty()) {
    url.append(e.username);
    if (!e.password.empty()) url.append(":").append(kRedacted);
    url.append("@");
  }
  const bool v6 = e.host.find(':') != std::string::npos;
  if (v6) url.append("[");
  url.append(e.host);
  if (v6) url.append("]");
  url.append(":").append(std::to_string(e.port)).append("/").append(std::to_string(e.db));
  return url;
}

}  // namespace

std::string redacted_summary(const Config& c) {
  std::ostringstream out;
  auto line = [&out](std::string_view name, const std::string& value) { out << name << '=' << value << '\n'; };
  auto secret = [](const std::string& v) { return std::string{v.empty() ? kUnset : kRedacted}; };
  auto optional = [](const std::string& v) { return v.empty() ? std::string{kUnset} : v; };
  auto boolean = [](bool v) { return std::string{v ? "true" : "false"}; };
  const auto& db = c.db;

  line("MANAGEMENT_TOKEN", secret(c.management_token));
  line("ALLOW_WEAK_MANAGEMENT_TOKEN", boolean(c.allow_weak_management_token));
  line("LISTEN_ADDR", format_listen(c.listen_host, c.listen_port));
  line("IO_THREADS", std::to_string(c.io_threads));
  line("API_CONFIG_PATH", c.api_config_path);
  line("DEFAULT_API_PROVIDER", c.default_api_provider);
  line("OPENAI_API_URL", c.openai_api_url);
  line("REQUEST_TIMEOUT", util::format_duration(c.request_timeout));
  line("STREAM_IDLE_TIMEOUT", util::format_duration(c.stream_idle_timeout));
  line("HEADER_READ_TIMEOUT", util::format_duration(c.header_read_timeout));
  line("MAX_REQUEST_SIZE", std::to_string(c.max_request_size));
  line("MAX_CONNECTIONS", std::to_string(c.max_connections));
  line("REQUEST_BODY_TIMEOUT", util::format_duration(c.request_body_timeout));
  line("MAX_BUFFERED_RESPONSE_SIZE", std::to_string(c.max_buffered_response_size));
  line("MAX_HEADER_COUNT", std::to_string(c.max_header_count));
  line("DB_DRIVER", db.driver == DbDriver::postgres ? "postgres" : "sqlite");
  line("DATABASE_PATH", db.path);
  line("DATABASE_URL", db.url.empty() ? std::string{kUnset} : redact_database_url(db.url));
  line("DATABASE_POOL_SIZE", std::to_string(db.pool_size));
  line("DATABASE_MAX_IDLE_CONNS", std::to_string(db.max_idle_conns));
  line("DATABASE_CONN_MAX_LIFETIME", util::format_duration(db.conn_max_lifetime));
  line("DATABASE_CONNECT_TIMEOUT", util::format_duration(db.connect_timeout));
  line("DATABASE_STATEMENT_TIMEOUT", util::format_duration(db.statement_timeout));
  line("DATABASE_STARTUP_TIMEOUT", util::format_duration(db.startup_timeout));
  line("DB_AUTO_MIGRATE", boolean(db.auto_migrate));
  line("MIGRATION_LOCK_TIMEOUT", util::format_duration(db.migration_lock_timeout));
  line("ENCRYPTION_KEY", secret(c.encryption_key));
  line("REQUIRE_ENCRYPTION_KEY", boolean(c.require_encryption_key));
  line("TOKEN_CACHE_TTL", util::format_duration(c.token_cache_ttl));
  line("TOKEN_CACHE_MAX", std::to_string(c.token_cache_max));
  line("NEGATIVE_CACHE_TTL", util::format_duration(c.negative_cache_ttl));
  line("PROJECT_CACHE_TTL", util::format_duration(c.project_cache_ttl));
  line("CACHE_STALE_IF_ERROR", util::format_duration(c.cache_stale_if_error));
  line("ENFORCE_PROJECT_ACTIVE", boolean(c.enforce_project_active));
  line("LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "<alias of ENFORCE_PROJECT_ACTIVE>");
  line("USAGE_FLUSH_INTERVAL", util::format_duration(c.usage_flush_interval));
  line("CIRCUIT_BREAKER_THRESHOLD", std::to_string(c.circuit_breaker_threshold));
  line("CIRCUIT_BREAKER_COOLDOWN", util::format_duration(c.circuit_breaker_cooldown));
  line("LOG_LEVEL", c.log_level);
  line("LOG_FORMAT", c.log_format == LogFormat::console ? "console" : "json");
  line("LOG_FILE", optional(c.log_file));
  line("AUDIT_ENABLED", boolean(c.audit_enabled));
  line("AUDIT_STORE_IN_DB", boolean(c.audit_store_in_db));
  line("AUDIT_LOG_FILE", optional(c.audit_log_file));
  line("TRUSTED_PROXIES", optional(c.trusted_proxies.to_string()));
  line("ENABLE_METRICS", boolean(c.enable_metrics));
  line("METRICS_PATH", c.metrics_path);
  line("ADMIN_UI_ENABLED", boolean(c.admin_ui_enabled));
  line("SHUTDOWN_TIMEOUT", util::format_duration(c.shutdown_timeout));
  const CacheConfig& cache = c.cache;
  line("HTTP_CACHE_ENABLED", boolean(cache.enabled));
  line("HTTP_CACHE_BACKEND", cache.backend == CacheBackend::redis ? "redis" : "memory");
  line("HTTP_CACHE_MAX_BYTES", std::to_string(cache.max_bytes));
  line("HTTP_CACHE_MAX_OBJECT_BYTES", std::to_string(cache.max_object_bytes));
  line("HTTP_CACHE_DEFAULT_TTL", util::format_duration(cache.default_ttl));
  line("HTTP_CACHE_STREAM_RESPONSES", boolean(cache.stream_responses));
  line("REDIS_CACHE_URL", redacted_redis_url(cache.redis));
  line("REDIS_ADDR", "<in REDIS_CACHE_URL>");
  line("REDIS_DB", "<in REDIS_CACHE_URL>");
  line("REDIS_PASSWORD", secret(cache.redis.password));
  line("REDIS_CACHE_KEY_PREFIX", cache.redis_key_prefix);
  line("REDIS_CACHE_TIMEOUT", util::format_duration(cache.redis_timeout));
  const RateLimitConfig& limits = c.rate_limit;
  line("RATE_LIMIT_BACKEND", limits.backend == RateLimitBackend::redis ? "redis" : "memory");
  line("RATE_LIMIT_FAIL_MODE", limits.fail_mode == FailMode::closed ? "closed" : "open");
  line("RATE_LIMIT_REDIS_URL", limits.redis ? redacted_redis_url(*limits.redis) : "<REDIS_CACHE_URL>");
  line("RATE_LIMIT_KEY_PREFIX", limits.redis_key_prefix);
  line("RATE_LIMIT_REDIS_TIMEOUT", util::format_duration(limits.redis_timeout));
  line("EVENT_LOG_FILE", optional(c.event_log.file));
  line("EVENT_LOG_BODIES", boolean(c.event_log.bodies));
  line("EVENT_LOG_MAX_BODY_BYTES", std::to_string(c.event_log.max_body_bytes));
  line("EVENT_LOG_MAX_QUEUE", std::to_string(c.event_log.max_queue));
  return out.str();
}

}  // namespace llmproxy::config
