#pragma once
// Fresh databases for the contract and migration tests: a temp-file SQLite database per call, and for PostgreSQL
// one scratch database per test process (CREATE DATABASE llmproxy_test_<random> on TEST_DATABASE_URL, dropped at
// exit) whose public schema is reset for every fresh driver.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/driver.hpp"
#include "support/temp_dir.hpp"

namespace llmproxy::contract {

using test::TempDir;

/// An open driver on a database without any table, plus a raw look at which tables exist.
struct EmptyDatabase {
  std::unique_ptr<db::Driver> driver;
  config::DatabaseConfig config;
  std::function<std::vector<std::string>()> tables;  // user tables, sorted by name
};

config::DatabaseConfig sqlite_config(const std::filesystem::path& file);
/// User tables in the SQLite file, read through a separate read-only connection (empty if the file is missing).
std::vector<std::string> sqlite_tables(const std::filesystem::path& file);
/// A new SQLite file in `dir`, opened, no migration applied.
EmptyDatabase empty_sqlite(TempDir& dir);
/// A new SQLite file in `dir` with every embedded migration applied.
std::unique_ptr<db::Driver> fresh_sqlite(TempDir& dir);

#ifdef LLMPROXY_WITH_POSTGRES
/// TEST_DATABASE_URL; fails the current test (REQUIRE) when unset: [postgres] tests never skip.
std::string test_database_url();
/// `url` pointing at database `name` instead (URL or conninfo form).
std::string with_database(const std::string& url, const std::string& name);
struct ScratchDatabase {
  std::string admin_url;  // TEST_DATABASE_URL
  std::string name;
  std::string url;  // of the new database
};
/// CREATE DATABASE llmproxy_test_<random> via TEST_DATABASE_URL. The caller drops it.
ScratchDatabase create_scratch_database();
/// DROP DATABASE ... WITH (FORCE).
void drop_scratch_database(const ScratchDatabase& db);
/// The per-process scratch database (created on first use, dropped at exit).
std::string scratch_database_url();
/// Runs `sql` (may hold several statements) on `url` outside any transaction.
void pg_exec(const std::string& url, const std::string& sql);
/// The first column of the first row of `sql` as text ("" for no row / NULL).
std::string pg_query_value(const std::string& url, const std::string& sql);
config::DatabaseConfig postgres_config(const std::string& url);
/// The scratch database with an empty public schema, opened, no migration applied.
EmptyDatabase empty_postgres();
/// The scratch database reset and fully migrated.
std::unique_ptr<db::Driver> fresh_postgres();
#endif

}  // namespace llmproxy::contract
