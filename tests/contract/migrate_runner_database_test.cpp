// Migrations (SPEC §4.4) on both drivers: the runner with the embedded files and with test-only file sets.
// The parts that need no database are in tests/unit/migrate_runner_test.cpp, the checks of the embedded files
// in migrate_embedded_test.cpp.
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "contract/database_fixture.hpp"
#include "llmproxy/db/sqlite/raw_connection.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/storage/storage.hpp"
#include "llmproxy/util/crypto.hpp"

#ifdef LLMPROXY_WITH_POSTGRES
#include "llmproxy/db/postgres/raw_connection.hpp"
#endif

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using migrate::MigrationFile;
using migrate::Runner;
using Strings = std::vector<std::string>;

bool has(const Strings& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::vector<MigrationFile> plus(std::vector<MigrationFile> files, const std::string& name, const std::string& up,
                                const std::string& down) {
  const auto version = static_cast<std::int64_t>(files.size()) + 1;
  files.push_back(MigrationFile{version, name, up, down});
  return files;
}

/// The message of the MigrationError `fn` throws ("" and a failed check if it throws nothing or something else).
template <class Fn>
std::string migration_error(Fn fn) {
  try {
    fn();
  } catch (const migrate::MigrationError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected MigrationError, got: " << e.what());
    return "";
  }
  FAIL_CHECK("expected MigrationError, nothing was thrown");
  return "";
}

db::Project project(const std::string& name) {
  const auto now = util::now();
  return db::Project{util::uuid_v4(), name, "key", true, std::nullopt, now, now, std::nullopt};
}

/// A plain read-write connection to the database of `config`, for rows and columns the repositories cannot
/// reach at an older schema version.
std::unique_ptr<db::RawConnection> raw_connection(const config::DatabaseConfig& config) {
#ifdef LLMPROXY_WITH_POSTGRES
  if (config.driver == config::DbDriver::postgres) {
    return db::postgres::open_raw(config.url, db::Access::read_write, std::chrono::seconds(10));
  }
#endif
  return db::sqlite::open_raw(config.path, db::Access::read_write, std::chrono::seconds(10));
}

/// The first column of the only row of `sql`.
std::string scalar(db::RawConnection& raw, const std::string& sql) {
  const auto rows = raw.query(sql);
  REQUIRE(rows.size() == 1);
  return rows.at(0).at(0).value_or("NULL");
}

/// Runs every migration behaviour as SECTIONs; each run gets a new empty database from `make_empty`.
void check_migrations(const std::function<EmptyDatabase()>& make_empty) {
  auto db = make_empty();
  REQUIRE(db.driver != nullptr);
  auto& driver = *db.driver;
  const auto files = driver.files();
  REQUIRE_FALSE(files.empty());
  const auto n = static_cast<std::int64_t>(files.size());
  const auto lock_timeout = std::chrono::milliseconds(20s);
  const auto extra = plus(files, "extra", "CREATE TABLE extra_t (a INT);\n", "DROP TABLE extra_t;\n");

  SECTION("status, version, pending and read_applied on a fresh database create nothing") {
    Runner runner(driver, files, lock_timeout);
    const auto status = runner.status();
    REQUIRE(status.size() == files.size());
    for (std::size_t i = 0; i < status.size(); ++i) {
      CHECK(status[i].version == files[i].version);
      CHECK(status[i].name == files[i].name);
      CHECK_FALSE(status[i].applied);
      CHECK_FALSE(status[i].applied_at.has_value());
    }
    CHECK(runner.current_version() == 0);
    CHECK(runner.pending().size() == files.size());
    CHECK(driver.read_applied().empty());
    CHECK(db.tables().empty());
  }

  SECTION("up applies every file once and records name, checksum and time") {
    Runner runner(driver, files, lock_timeout);
    const auto before = util::now();
    CHECK(runner.up() == n);
    const auto after = util::now();
    CHECK(runner.current_version() == n);
    CHECK(runner.pending().empty());
    const auto applied = driver.read_applied();
    REQUIRE(applied.size() == files.size());
    for (std::size_t i = 0; i < applied.size(); ++i) {
      CHECK(applied[i].version == files[i].version);
      CHECK(applied[i].name == files[i].name);
      CHECK(applied[i].checksum == util::sha256_hex(files[i].up_sql));
      CHECK(applied[i].applied_at >= before - 1s);
      CHECK(applied[i].applied_at <= after + 1s);
      CHECK(applied[i].execution_ms >= 0);
    }
    for (const auto& s : runner.status()) {
      CHECK(s.applied);
      CHECK(s.applied_at.has_value());
      CHECK(s.known);
      CHECK_FALSE(s.checksum_mismatch);
    }
    const auto tables = db.tables();
    for (const auto* t : {"projects", "tokens", "audit_events", "schema_migrations", "usage_daily"}) {
      INFO("table " << t);
      CHECK(has(tables, t));
    }
    CHECK(runner.up() == 0);
    CHECK(driver.read_applied().size() == files.size());
  }

  SECTION("up --to, down --steps, down to 0 and up again, the driver keeps working across it") {
    Runner runner(driver, extra, lock_timeout);
    CHECK(runner.up(n) == n);
    CHECK(runner.current_version() == n);
    REQUIRE(runner.pending().size() == 1);
    CHECK(runner.pending()[0].name == "extra");
    driver.create_project(project("before the cycle"));

    CHECK(runner.up() == 1);
    CHECK(runner.current_version() == n + 1);
    CHECK(has(db.tables(), "extra_t"));
    CHECK(runner.down_steps(1) == 1);
    CHECK(runner.current_version() == n);
    CHECK_FALSE(has(db.tables(), "extra_t"));
    CHECK(runner.down_to(n) == 0);

    CHECK(runner.up() == 1);
    CHECK(runner.down_to(0) == n + 1);
    CHECK(runner.current_version() == 0);
    CHECK(driver.read_applied().empty());
    CHECK(db.tables() == Strings{"schema_migrations"});

    CHECK(runner.up() == n + 1);
    CHECK(runner.current_version() == n + 1);
    // Same driver, same pooled connections: statements prepared before the tables were recreated still work.
    const auto p = project("after the cycle");
    driver.create_project(p);
    CHECK(driver.get_project(p.id).name == "after the cycle");
    CHECK(driver.list_projects({1, 10}).total_count == 1);

    CHECK(runner.down_steps(100) == n + 1);
    CHECK(runner.current_version() == 0);
  }

  SECTION("0002_usage: an upgrade from version 1 keeps the rows, and down to 1 drops exactly what it added") {
    REQUIRE(n >= 2);
    Runner runner(driver, files, lock_timeout);
    CHECK(runner.up(1) == 1);
    auto raw = raw_connection(db.config);
    const Strings v1_tokens = raw->columns("tokens");
    const Strings v1_projects = raw->columns("projects");
    CHECK(v1_tokens.size() == 12);
    CHECK(v1_projects.size() == 7);
    const std::string project_id = util::uuid_v4();
    const std::string token_id = util::uuid_v4();
    const std::string created = "2026-01-02T03:04:05.000000Z";
    raw->execute("INSERT INTO projects (id, name, api_key, created_at, updated_at) VALUES ($1, 'kept', 'k', $2, $2)",
                 {project_id, created});
    raw->execute(
        "INSERT INTO tokens (id, token_hash, token_hint, project_id, request_count, max_requests, cache_hit_count, "
        "created_at) VALUES ($1, $2, 'sk-AbCd...wXyZ', $3, 7, 100, 2, $4)",
        {token_id, util::sha256_hex(token_id), project_id, created});

    CHECK(runner.up(2) == 1);
    CHECK(runner.current_version() == 2);
    auto t = driver.get_token(token_id);
    CHECK(t.request_count == 7);
    CHECK(t.max_requests == std::optional<std::int64_t>{100});
    CHECK(t.cache_hit_count == 2);
    CHECK(t.prompt_tokens == 0);
    CHECK(t.completion_tokens == 0);
    CHECK_FALSE(t.max_tokens.has_value());
    CHECK_FALSE(t.rate_limit_rpm.has_value());
    const auto p = driver.get_project(project_id);
    CHECK(p.name == "kept");
    CHECK_FALSE(p.rate_limit_rpm.has_value());
    CHECK(driver.query_usage(db::UsageQuery{}).empty());

    // Use what 0002 added, then revert it: the 0001 data stays, the new columns and table go.
    driver.add_usage(db::UsageBatch{{db::UsageDelta{token_id, 1, 0, util::now(), 10, 20}},
                                    {db::DailyUsageDelta{"2026-01-02", project_id, token_id, "m", 1, 10, 20, 0}}});
    db::TokenUpdate budget;
    budget.max_tokens = std::optional<std::int64_t>{1000};
    budget.rate_limit_rpm = std::optional<std::int64_t>{60};
    driver.update_token(token_id, budget, util::now());
    CHECK(runner.down_steps(1) == 1);
    CHECK(runner.current_version() == 1);
    CHECK(raw->columns("tokens") == v1_tokens);
    CHECK(raw->columns("projects") == v1_projects);
    CHECK(raw->columns("usage_daily").empty());
    CHECK_FALSE(has(db.tables(), "usage_daily"));
    CHECK(scalar(*raw, "SELECT request_count || '/' || max_requests || '/' || cache_hit_count FROM tokens") ==
          "8/100/2");
    CHECK(scalar(*raw, "SELECT name FROM projects") == "kept");

    // And up again: the data is still there, the new columns start from 0 / NULL once more.
    CHECK(runner.up() == n - 1);
    t = driver.get_token(token_id);
    CHECK(t.request_count == 8);
    CHECK(t.prompt_tokens == 0);
    CHECK_FALSE(t.max_tokens.has_value());
    CHECK_FALSE(t.rate_limit_rpm.has_value());
  }

  SECTION("invalid targets are refused before touching anything") {
    Runner runner(driver, files, lock_timeout);
    CHECK_THAT(migration_error([&] { runner.up(n + 5); }), Contains("cannot migrate up to version"));
    CHECK_THAT(migration_error([&] { runner.up(-1); }), Contains("cannot migrate up to version"));
    CHECK_THAT(migration_error([&] { runner.down_to(-1); }), Contains("cannot migrate down"));
    CHECK_THAT(migration_error([&] { runner.down_steps(0); }), Contains("cannot migrate down"));
    CHECK(runner.current_version() == 0);
  }

  SECTION("a failing migration leaves the previous version and no partial table, the error names file and statement") {
    const auto broken = plus(files, "broken", "CREATE TABLE x (a INT);\nTHIS IS NOT SQL;\n", "DROP TABLE x;\n");
    Runner runner(driver, broken, lock_timeout);
    const auto message = migration_error([&] { runner.up(); });
    CHECK_THAT(message, Contains(migrate::label(n + 1, "broken")));
    CHECK_THAT(message, Contains("THIS IS NOT SQL"));
    CHECK(runner.current_version() == n);
    CHECK(driver.read_applied().size() == files.size());
    CHECK_FALSE(has(db.tables(), "x"));
    // Proof by the engine itself: creating x again works, so the failed run left nothing behind.
    Runner retry(driver, plus(files, "x_again", "CREATE TABLE x (a INT);\n", "DROP TABLE x;\n"), lock_timeout);
    CHECK(retry.up() == 1);
    CHECK(has(db.tables(), "x"));
  }

  SECTION("a failing down migration is rolled back and keeps the version") {
    const auto bad_down =
        plus(files, "bad_down", "CREATE TABLE y (a INT);\n", "DROP TABLE y;\nNOT SQL EITHER;\n");
    Runner runner(driver, bad_down, lock_timeout);
    CHECK(runner.up() == n + 1);
    const auto message = migration_error([&] { runner.down_steps(1); });
    CHECK_THAT(message, Contains(migrate::label(n + 1, "bad_down")));
    CHECK_THAT(message, Contains("NOT SQL EITHER"));
    CHECK(runner.current_version() == n + 1);
    CHECK(has(db.tables(), "y"));
  }

  SECTION("an applied file that changed is refused, and status shows it") {
    CHECK(Runner(driver, files, lock_timeout).up() == n);
    auto changed = files;
    changed[0].up_sql += "\n-- edited after release\n";
    Runner runner(driver, changed, lock_timeout);
    const auto message = migration_error([&] { runner.up(); });
    CHECK_THAT(message, Contains(migrate::label(1, files[0].name) + " was changed after it was applied"));
    CHECK_THAT(message, Contains("checksum mismatch"));
    CHECK_THAT(migration_error([&] { runner.down_steps(1); }), Contains("checksum mismatch"));
    CHECK_THAT(migration_error([&] { runner.verify(driver.read_applied()); }), Contains("checksum mismatch"));
    const auto status = runner.status();
    REQUIRE(status.size() == files.size());
    CHECK(status[0].checksum_mismatch);
    CHECK(runner.current_version() == n);

    // Only the up file counts: a changed down file is not a mismatch.
    auto changed_down = files;
    changed_down[0].down_sql += "\n-- reworded\n";
    CHECK_NOTHROW(Runner(driver, changed_down, lock_timeout).verify(driver.read_applied()));
  }

  SECTION("a database newer than the binary is refused, and status lists the unknown version") {
    CHECK(Runner(driver, extra, lock_timeout).up() == n + 1);
    Runner older(driver, files, lock_timeout);
    const auto expected = "database is at version " + std::to_string(n + 1) + " but this binary knows only up to " +
                          std::to_string(n) + ": upgrade llm-proxy";
    CHECK_THAT(migration_error([&] { older.up(); }), Contains(expected));
    CHECK_THAT(migration_error([&] { older.down_steps(1); }), Contains(expected));
    CHECK(older.current_version() == n + 1);
    const auto status = older.status();
    REQUIRE(status.size() == files.size() + 1);
    CHECK(status.back().version == n + 1);
    CHECK(status.back().name == "extra");
    CHECK(status.back().applied);
    CHECK_FALSE(status.back().known);
    CHECK(has(db.tables(), "extra_t"));
  }

  SECTION("prepare_schema migrates with DB_AUTO_MIGRATE=true and refuses pending migrations with false") {
    auto config = db.config;
    config.auto_migrate = false;
    std::string message = migration_error([&] { storage::prepare_schema(driver, config); });
    CHECK_THAT(message, Contains(std::to_string(n) + " migration"));
    CHECK_THAT(message, Contains("pending and DB_AUTO_MIGRATE=false: run `llm-proxy migrate up` first"));
    CHECK(db.tables().empty());

    config.auto_migrate = true;
    storage::prepare_schema(driver, config);
    CHECK(Runner(driver, files, lock_timeout).current_version() == n);
    config.auto_migrate = false;
    CHECK_NOTHROW(storage::prepare_schema(driver, config));
  }

  SECTION("two drivers migrating the same database at once apply each version exactly once") {
    auto second = storage::open(db.config);
    std::vector<std::unique_ptr<db::Driver>> extra_drivers;
    extra_drivers.push_back(storage::open(db.config));
    std::vector<db::Driver*> drivers = {&driver, second.get(), extra_drivers[0].get()};
    std::vector<int> applied(drivers.size(), -1);
    std::mutex m;
    std::string first_error;
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < drivers.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          applied[i] = Runner(*drivers[i], extra, lock_timeout).up();
        } catch (const std::exception& e) {
          const std::scoped_lock lock(m);
          if (first_error.empty()) first_error = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    INFO("first error: " << first_error);
    CHECK(first_error.empty());
    int total = 0;
    for (const int a : applied) total += a;
    CHECK(total == n + 1);
    CHECK(driver.read_applied().size() == static_cast<std::size_t>(n + 1));
  }
}

TEST_CASE("migrations: SQLite file", "[sqlite][migrations]") {
  TempDir dir;
  check_migrations([&] { return empty_sqlite(dir); });
}

#ifdef LLMPROXY_WITH_POSTGRES
TEST_CASE("migrations: PostgreSQL", "[postgres][migrations]") { check_migrations([] { return empty_postgres(); }); }
#endif

}  // namespace
}  // namespace llmproxy::contract
