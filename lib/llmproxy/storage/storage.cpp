#include "llmproxy/storage/storage.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/time.hpp"
#ifdef LLMPROXY_WITH_POSTGRES
#include "llmproxy/storage/postgres_module.hpp"
#endif

namespace llmproxy::storage {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kMaxBackoff{5000};
// How often a backoff sleep looks at stop_requested.
constexpr milliseconds kStopPollInterval{50};

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
      return postgres_driver().open(config);
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
      last_error = config::scrub_database_url_passwords(e.what(), config.url);
    } catch (const db::Error& e) {
      // Not a reachability problem (bad URL, unsupported driver): retrying cannot help.
      throw db::Error(config::scrub_database_url_passwords(e.what(), config.url));
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
                                    where, util::format_duration(config.startup_timeout), last_error));
}

int apply_pending(migrate::Runner& runner, std::optional<std::int64_t> to) {
  try {
    return runner.up(to);
  } catch (const migrate::MigrationError& e) {
    // The first migration creating a table that exists: most likely a database of the Go llm-proxy, whose tables
    // have the same names. Say how to move its data over instead of leaving the user with the SQL error.
    const std::string_view message = e.what();
    if (message.find("migration 0001_") == std::string_view::npos ||
        message.find("already exists") == std::string_view::npos) {
      throw;
    }
    throw migrate::MigrationError(fmt::format(
        "{}. This database already has tables of another schema, e.g. of the Go llm-proxy: point DB_DRIVER / "
        "DATABASE_PATH / DATABASE_URL at a new database and copy the data over with `llm-proxy migrate "
        "import-reference --from <this database>` (see docs/migrating-from-go-llm-proxy.md)",
        message));
  }
}

void prepare_schema(db::Driver& driver, const config::DatabaseConfig& config) {
  migrate::Runner runner(driver, driver.files(), config.migration_lock_timeout);
  if (config.auto_migrate) {
    const int applied = apply_pending(runner);
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
