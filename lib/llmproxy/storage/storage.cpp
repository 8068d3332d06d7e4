#include "llmproxy/storage/storage.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <vector>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/migrate/runner.hpp"
#ifdef LLMPROXY_WITH_POSTGRES
#include "llmproxy/db/postgres/postgres_database.hpp"
#endif

namespace llmproxy::storage {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kMaxBackoff{5000};
// How often a backoff sleep looks at stop_requested.
constexpr milliseconds kStopPollInterval{50};

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

/// Every spelling of the password `url` carries: URL userinfo (`user:pw@`, raw and decoded), a `password=`
/// query parameter, or a conninfo `password=` / `password = '...'` pair. Used to scrub driver messages as a
/// second line of defence (drivers are required not to echo it in the first place).
std::vector<std::string> passwords_in(std::string_view url) {
  std::vector<std::string> out;
  auto add = [&](std::string_view raw) {
    if (raw.empty()) return;
    out.emplace_back(raw);
    if (auto decoded = percent_decode(raw); decoded != raw) out.push_back(std::move(decoded));
  };
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    auto rest = url.substr(url.find("://") + 3);
    const auto authority = rest.substr(0, rest.find_first_of("/?"));
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
      const auto userinfo = authority.substr(0, at);
      if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) add(userinfo.substr(colon + 1));
    }
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      while (!query.empty()) {
        const auto amp = query.find('&');
        const auto param = query.substr(0, amp);
        if (param.starts_with("password=")) add(param.substr(9));
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      }
    }
    return out;
  }
  // conninfo: key = value pairs; values may be single-quoted with backslash escapes.
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < url.size() && std::isspace(static_cast<unsigned char>(url[i]))) ++i;
  };
  while (i < url.size()) {
    skip_space();
    const auto key_start = i;
    while (i < url.size() && url[i] != '=' && !std::isspace(static_cast<unsigned char>(url[i]))) ++i;
    const auto key = url.substr(key_start, i - key_start);
    skip_space();
    if (i >= url.size() || url[i] != '=') break;
    ++i;
    skip_space();
    std::string value;
    if (i < url.size() && url[i] == '\'') {
      for (++i; i < url.size() && url[i] != '\''; ++i) {
        if (url[i] == '\\' && i + 1 < url.size()) ++i;
        value.push_back(url[i]);
      }
      ++i;
    } else {
      while (i < url.size() && !std::isspace(static_cast<unsigned char>(url[i]))) value.push_back(url[i++]);
    }
    if (key == "password" && !value.empty()) out.push_back(value);
  }
  return out;
}

std::string scrub(std::string message, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret, pos + 3)) {
      message.replace(pos, secret.size(), "***");
    }
  }
  return message;
}

/// `30s`, `1m30s`, `500ms`: the DATABASE_STARTUP_TIMEOUT syntax, so the message can be pasted back.
std::string format_duration(milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0) return fmt::format("{}ms", ms);
  auto s = ms / 1000;
  if (s == 0) return "0s";
  std::string out;
  if (s >= 3600) {
    out += fmt::format("{}h", s / 3600);
    s %= 3600;
  }
  if (s >= 60) {
    out += fmt::format("{}m", s / 60);
    s %= 60;
  }
  if (s > 0) out += fmt::format("{}s", s);
  return out;
}

/// Sleeps `d` unless `stop_requested` turns true first; returns false in that case.
bool sleep_unless_stopped(milliseconds d, const std::function<bool()>& stop_requested) {
  const auto until = steady_clock::now() + d;
  while (true) {
    if (stop_requested && stop_requested()) return false;
    const auto now = steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<steady_clock::duration>(until - now, kStopPollInterval));
  }
}

}  // namespace

std::string describe_location(const config::DatabaseConfig& config) {
  if (config.driver == config::DbDriver::postgres) return config::redact_database_url(config.url);
  return config.path;
}

std::unique_ptr<db::Driver> open(const config::DatabaseConfig& config) {
  switch (config.driver) {
    case config::DbDriver::sqlite:
      return db::sqlite::open(config);
    case config::DbDriver::postgres:
#ifdef LLMPROXY_WITH_POSTGRES
      return db::postgres::open(config);
#else
      throw db::Error(
          "DB_DRIVER=postgres, but this llm-proxy binary was built without PostgreSQL support "
          "(LLMPROXY_WITH_POSTGRES=OFF): use DB_DRIVER=sqlite or a build with PostgreSQL");
#endif
  }
  throw db::Error("unknown DB_DRIVER");
}

std::unique_ptr<db::Driver> open_with_retry(const config::DatabaseConfig& config,
                                            const std::function<bool()>& stop_requested) {
  const auto where = describe_location(config);
  const auto secrets = passwords_in(config.url);
  const auto deadline = steady_clock::now() + config.startup_timeout;
  auto backoff = kFirstBackoff;
  std::string last_error;
  for (int attempt = 1;; ++attempt) {
    try {
      auto driver = open(config);
      if (attempt > 1) {
        log::write(log::Level::info, "database_connected", {{"database", where}, {"attempt", attempt}});
      }
      return driver;
    } catch (const db::Unavailable& e) {
      last_error = scrub(e.what(), secrets);
    } catch (const db::Error& e) {
      // Not a reachability problem (bad URL, unsupported driver): retrying cannot help.
      throw db::Error(scrub(e.what(), secrets));
    }
    const auto now = steady_clock::now();
    if (now >= deadline) break;
    const auto wait = std::min(backoff, std::chrono::ceil<milliseconds>(deadline - now));
    log::write(log::Level::warn, "database_unreachable",
               {{"database", where}, {"attempt", attempt}, {"error", last_error}, {"retry_in_ms", wait.count()}});
    if (!sleep_unless_stopped(wait, stop_requested)) {
      throw db::Unavailable(fmt::format("stopped while waiting for the database at {}: {}", where, last_error));
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  throw db::Unavailable(fmt::format("could not connect to the database at {} within DATABASE_STARTUP_TIMEOUT={}: {}",
                                    where, format_duration(config.startup_timeout), last_error));
}

void prepare_schema(db::Driver& driver, const config::DatabaseConfig& config) {
  migrate::Runner runner(driver, driver.files(), config.migration_lock_timeout);
  if (config.auto_migrate) {
    const int applied = runner.up();
    log::write(log::Level::info, "database_schema",
               {{"version", runner.current_version()}, {"applied_now", applied}, {"auto_migrate", true}});
    return;
  }
  const auto applied = driver.read_applied();
  runner.verify(applied);
  if (const auto pending = runner.pending(); !pending.empty()) {
    throw migrate::MigrationError(fmt::format(
        "{} migration{} pending and DB_AUTO_MIGRATE=false: run `llm-proxy migrate up` first", pending.size(),
        pending.size() == 1 ? " is" : "s are"));
  }
  log::write(log::Level::info, "database_schema",
             {{"version", runner.current_version()}, {"applied_now", 0}, {"auto_migrate", false}});
}

}  // namespace llmproxy::storage
