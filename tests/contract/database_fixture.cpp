#include "contract/database_fixture.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>

#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/crypto.hpp"

#ifdef LLMPROXY_WITH_POSTGRES
#include <pqxx/pqxx>

#include "llmproxy/db/postgres/postgres_database.hpp"
#endif

namespace llmproxy::contract {
namespace {
// Migrations log one info line each; hundreds of fresh databases would drown the test report.
[[maybe_unused]] const bool kQuietLogs = [] {
  spdlog::set_level(spdlog::level::warn);
  return true;
}();
}  // namespace

config::DatabaseConfig sqlite_config(const std::filesystem::path& file) {
  config::DatabaseConfig c;
  c.driver = config::DbDriver::sqlite;
  c.path = file.string();
  c.pool_size = 4;
  c.statement_timeout = std::chrono::seconds(10);
  c.startup_timeout = std::chrono::seconds(2);
  c.migration_lock_timeout = std::chrono::seconds(20);
  return c;
}

std::vector<std::string> sqlite_tables(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) return {};
  // A separate read-only connection: what is really in the file, independent of the driver under test.
  SQLite::Database raw(file.string(), SQLite::OPEN_READONLY);
  SQLite::Statement q(raw,
                      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                      "ORDER BY name");
  std::vector<std::string> names;
  while (q.executeStep()) names.push_back(q.getColumn(0).getString());
  return names;
}

EmptyDatabase empty_sqlite(TempDir& dir) {
  const auto file = dir.unique_file(".sqlite");
  EmptyDatabase out;
  out.config = sqlite_config(file);
  out.driver = db::sqlite::open(out.config);
  out.tables = [file] { return sqlite_tables(file); };
  return out;
}

std::unique_ptr<db::Driver> fresh_sqlite(TempDir& dir) {
  auto empty = empty_sqlite(dir);
  migrate::Runner(*empty.driver, empty.driver->files(), std::chrono::seconds(20)).up();
  return std::move(empty.driver);
}

#ifdef LLMPROXY_WITH_POSTGRES

std::string test_database_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  INFO("[postgres] tests need TEST_DATABASE_URL (run them through scripts/with-postgres.sh)");
  REQUIRE(url != nullptr);
  REQUIRE(std::string(url).size() > 0);
  return url;
}

std::string with_database(const std::string& url, const std::string& name) {
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    const auto authority_start = url.find("://") + 3;
    const auto path_start = url.find_first_of("/?", authority_start);
    if (path_start == std::string::npos) return url + "/" + name;
    const auto query_start = url.find('?', path_start);
    const std::string query = query_start == std::string::npos ? "" : url.substr(query_start);
    return url.substr(0, path_start) + "/" + name + query;
  }
  // conninfo: a later keyword overrides an earlier one.
  return url + " dbname=" + name;
}

void pg_exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

std::string pg_query_value(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  const auto r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].c_str();
}

ScratchDatabase create_scratch_database() {
  ScratchDatabase db;
  db.admin_url = test_database_url();
  db.name = "llmproxy_test_" + util::sha256_hex(util::random_bytes(16)).substr(0, 16);
  pg_exec(db.admin_url, "CREATE DATABASE " + db.name);
  db.url = with_database(db.admin_url, db.name);
  return db;
}

void drop_scratch_database(const ScratchDatabase& db) {
  pg_exec(db.admin_url, "DROP DATABASE IF EXISTS " + db.name + " WITH (FORCE)");
}

namespace {
// Created on first use, dropped when the test process exits. Every driver is closed by then: drivers live
// inside one test case run.
struct ProcessScratch {
  ScratchDatabase db = create_scratch_database();
  ~ProcessScratch() {
    try {
      drop_scratch_database(db);
    } catch (...) {  // best effort at exit; the cluster is throwaway anyway
    }
  }
};
}  // namespace

std::string scratch_database_url() {
  static ProcessScratch scratch;
  return scratch.db.url;
}

config::DatabaseConfig postgres_config(const std::string& url) {
  config::DatabaseConfig c;
  c.driver = config::DbDriver::postgres;
  c.url = url;
  c.pool_size = 10;
  c.max_idle_conns = 5;
  c.connect_timeout = std::chrono::seconds(5);
  c.statement_timeout = std::chrono::seconds(10);
  c.startup_timeout = std::chrono::seconds(2);
  c.migration_lock_timeout = std::chrono::seconds(20);
  return c;
}

EmptyDatabase empty_postgres() {
  const auto url = scratch_database_url();
  pg_exec(url, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
  EmptyDatabase out;
  out.config = postgres_config(url);
  out.driver = db::postgres::open(out.config);
  out.tables = [url] {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    std::vector<std::string> names;
    for (const auto& row : tx.exec("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")) {
      names.emplace_back(row[0].c_str());
    }
    return names;
  };
  return out;
}

std::unique_ptr<db::Driver> fresh_postgres() {
  auto empty = empty_postgres();
  migrate::Runner(*empty.driver, empty.driver->files(), std::chrono::seconds(20)).up();
  return std::move(empty.driver);
}

#endif

}  // namespace llmproxy::contract
