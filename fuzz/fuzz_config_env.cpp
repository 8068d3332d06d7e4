// fuzz_config_env: config::load over an environment decoded from the input, and the value parsers directly.
//
// Input: lines `NAME=value` (the environment; a later line replaces an earlier one). The first line is also
// given whole to parse_duration, parse_size, parse_bool, parse_listen_addr and the DATABASE_URL functions, and
// the whole input to the dotenv parser (`server --env`).
// Properties: load() either returns a Config within the documented limits or throws ConfigError (anything
// else escaping is a crash); an error about a secret is the same whatever its value; a parsed duration prints back
// (util::format_duration) to text that parses to the same duration.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "llmproxy/config/config.hpp"
#include "llmproxy/config/database_url.hpp"
#include "llmproxy/config/dotenv.hpp"
#include "llmproxy/util/time.hpp"

namespace {

using namespace llmproxy;
using namespace std::chrono_literals;

constexpr config::Duration kMaxDuration = 8760h;

std::map<std::string, std::string, std::less<>> decode_env(std::string_view text) {
  std::map<std::string, std::string, std::less<>> env;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    env.insert_or_assign(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return env;
}

bool within(config::Duration d) { return d >= 0ms && d <= kMaxDuration; }

void check_config(const config::Config& c) {
  FUZZ_CHECK(c.io_threads >= 1 && c.io_threads <= 256);
  FUZZ_CHECK(c.max_request_size >= 1);
  FUZZ_CHECK(c.max_connections >= 1 && c.max_header_count >= 1);
  FUZZ_CHECK(c.db.pool_size >= 1 && c.db.max_idle_conns >= 0 && c.db.max_idle_conns <= c.db.pool_size);
  for (auto d : {c.request_timeout, c.stream_idle_timeout, c.header_read_timeout, c.request_body_timeout,
                 c.db.conn_max_lifetime, c.db.connect_timeout, c.db.statement_timeout, c.db.migration_lock_timeout,
                 c.usage_flush_interval, c.circuit_breaker_cooldown}) {
    FUZZ_CHECK(d > 0ms && d <= kMaxDuration);
  }
  for (auto d : {c.db.startup_timeout, c.token_cache_ttl, c.negative_cache_ttl, c.project_cache_ttl,
                 c.cache_stale_if_error, c.shutdown_timeout}) {
    FUZZ_CHECK(within(d));
  }
  FUZZ_CHECK(c.encryption_key.empty() || c.encryption_key.size() == 32);
  FUZZ_CHECK(c.db.driver != config::DbDriver::postgres || !c.db.url.empty());
  FUZZ_CHECK(c.db.url.empty() || config::database_url_form(c.db.url) != config::DatabaseUrlForm::invalid);
  FUZZ_CHECK(c.metrics_path.starts_with('/'));

  // Secrets are redacted in the boot summary.
  const std::string summary = config::redacted_summary(c);
  FUZZ_CHECK(summary.find(c.management_token.empty() ? "MANAGEMENT_TOKEN=<unset>\n"
                                                      : "MANAGEMENT_TOKEN=<redacted>\n") != std::string::npos);
  FUZZ_CHECK(summary.find(c.encryption_key.empty() ? "ENCRYPTION_KEY=<unset>\n" : "ENCRYPTION_KEY=<redacted>\n") !=
             std::string::npos);
  try {
    config::require_server_settings(c);
    FUZZ_CHECK(!c.management_token.empty());
  } catch (const config::ConfigError&) {
  }
}

void check_duration(std::string_view text) {
  const auto d = config::parse_duration(text);
  if (!d) return;
  FUZZ_CHECK(d->count() >= 0);
  const std::string printed = util::format_duration(*d);
  const auto again = config::parse_duration(printed);
  FUZZ_CHECK(again && *again == *d);
}

void check_size(std::string_view text) {
  const auto bytes = config::parse_size(text);
  if (!bytes) return;
  // Printed as plain bytes, it reads back as the same size.
  const auto again = config::parse_size(std::to_string(*bytes));
  FUZZ_CHECK(again && *again == *bytes);
}

void check_dotenv(std::string_view text) {
  try {
    for (const auto& [key, value] : config::parse_dotenv(text, "fuzz.env")) {
      FUZZ_CHECK(!key.empty() && key.find_first_of("= \t\n#") == std::string::npos);
      (void)value;
    }
  } catch (const config::ConfigError& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz.env:"));
  }
}

void check_listen_addr(std::string_view text) {
  const auto a = config::parse_listen_addr(text);
  if (!a) return;
  // The host is part of the text, so nothing is invented.
  FUZZ_CHECK(text.find(a->host) != std::string_view::npos);
}

void check_database_url(std::string_view url) {
  const auto form = config::database_url_form(url);
  const std::string shown = config::redact_database_url(url);
  if (form == config::DatabaseUrlForm::invalid) FUZZ_CHECK(shown == "<redacted>");
  const auto passwords = config::database_url_passwords(url);
  const std::string scrubbed = config::scrub_database_url_passwords(std::string(url), url);
  for (const auto& p : passwords) {
    FUZZ_CHECK(!p.empty());
    // The mask is `***`: a password with a `*` may legitimately reappear next to or inside one.
    if (p.find('*') == std::string::npos) FUZZ_CHECK(scrubbed.find(p) == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string_view first_line = text.substr(0, text.find('\n'));
  check_duration(first_line);
  check_size(first_line);
  check_dotenv(text);
  (void)config::parse_bool(first_line);
  check_listen_addr(first_line);
  check_database_url(first_line);

  const auto env = decode_env(text);
  const config::EnvLookup lookup = [&env](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  try {
    check_config(config::load(lookup));
  } catch (const config::ConfigError& e) {
    const std::string message = e.what();
    FUZZ_CHECK(!message.empty());
    // DATABASE_URL and ENCRYPTION_KEY are never echoed (they may hold a password or the key): the error about
    // one of them is the same whatever its (invalid) value. (A substring search would trip over values that
    // happen to occur in the help text, such as "postgres".)
    for (const char* secret : {"DATABASE_URL", "ENCRYPTION_KEY"}) {
      if (!message.starts_with(std::string("invalid ") + secret)) continue;
      auto other = env;
      other.insert_or_assign(secret, "\x01not a valid value");
      const config::EnvLookup other_lookup = [&other](std::string_view name) -> std::optional<std::string> {
        const auto it = other.find(name);
        if (it == other.end()) return std::nullopt;
        return it->second;
      };
      try {
        (void)config::load(other_lookup);
        FUZZ_CHECK(false && "another invalid value was accepted");
      } catch (const config::ConfigError& again) {
        FUZZ_CHECK(message == again.what());
      }
    }
  }
  return 0;
}
