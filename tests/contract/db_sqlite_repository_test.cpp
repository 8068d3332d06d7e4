// The repository contract on SQLite, plus what only SQLite can show (pragmas, cascade declared in the schema).
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "contract/database_fixture.hpp"
#include "contract/db_repository_contract.hpp"
#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;

TEST_CASE("repository contract: SQLite temp file", "[sqlite][contract]") {
  TempDir dir;
  check_repository_contract("sqlite", [&] { return fresh_sqlite(dir); });
}

TEST_CASE("repository contract: SQLite :memory:", "[sqlite][contract]") {
  check_repository_contract("sqlite", [] {
    auto config = sqlite_config(":memory:");
    auto driver = db::sqlite::open(config);
    migrate::Runner(*driver, driver->files(), 20s).up();
    return driver;
  });
}

TEST_CASE("SQLite file: WAL journal, and deleting a project cascades to its tokens", "[sqlite]") {
  TempDir dir;
  const auto file = dir.unique_file(".sqlite");
  auto driver = db::sqlite::open(sqlite_config(file));
  migrate::Runner(*driver, driver->files(), 20s).up();

  const auto now = util::now();
  const auto p = make_project("cascade", now);
  driver->create_project(p);
  const auto t = make_token(p.id, now);
  driver->create_token(t);

  {
    SQLite::Database raw(file.string(), SQLite::OPEN_READWRITE);
    CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
    raw.exec("PRAGMA foreign_keys = ON");
    SQLite::Statement del(raw, "DELETE FROM projects WHERE id = ?");
    del.bind(1, p.id);
    CHECK(del.exec() == 1);
  }
  CHECK_THROWS_AS(driver->get_token(t.id), db::NotFound);
  CHECK_FALSE(driver->find_token_by_hash(t.token_hash).has_value());
}

}  // namespace
}  // namespace llmproxy::contract
