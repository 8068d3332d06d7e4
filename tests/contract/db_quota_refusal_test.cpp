// One answer for a quota refusal on both drivers (db/rules.hpp decide_quota): a refused increment whose row
// explains nothing, even after kQuotaAttempts tries, is db::Unavailable (503 "try again") on SQLite and on
// PostgreSQL alike, and counts nothing. The refusal is made deterministic by a trigger that silently skips every
// UPDATE of tokens, so the increment changes no row while the row itself still looks acceptable.
#include <SQLiteCpp/Database.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <functional>

#include "contract/database_fixture.hpp"
#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/http_mapping.hpp"
#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;

db::Token quota_token(db::Database& d, int max_requests) {
  const auto p = make_project("quota", util::now());
  d.create_project(p);
  const auto t = make_token(p.id, util::now(), max_requests);
  d.create_token(t);
  return t;
}

/// `skip_token_updates` installs the trigger through a connection of its own.
void check_unexplained_refusal(db::Database& d, const std::function<void()>& skip_token_updates) {
  const auto t = quota_token(d, 5);
  REQUIRE(d.consume_quota(t.id, 1, util::now()).outcome == db::QuotaOutcome::accepted);

  skip_token_updates();
  std::exception_ptr error;
  try {
    d.consume_quota(t.id, 1, util::now());
  } catch (...) {
    error = std::current_exception();
  }
  REQUIRE(error);
  CHECK_THROWS_AS(std::rethrow_exception(error), db::Unavailable);
  const auto http = db::map_to_http(error);
  CHECK(http.status == 503);
  CHECK(std::string(http.code) == "service_unavailable");

  const auto row = d.get_token(t.id);
  CHECK(row.request_count == 1);
  CHECK(row.is_active);
  CHECK(*row.max_requests > row.request_count);  // nothing in the row explains the refusal
}

TEST_CASE("quota refusal contract: SQLite answers an unexplained refusal with Unavailable", "[sqlite][contract]") {
  TempDir dir;
  const auto file = dir.unique_file(".sqlite");
  auto driver = db::sqlite::open(sqlite_config(file));
  migrate::Runner(*driver, driver->files(), 20s).up();
  check_unexplained_refusal(*driver, [&] {
    SQLite::Database raw(file.string(), SQLite::OPEN_READWRITE);
    raw.exec("CREATE TRIGGER skip_token_updates BEFORE UPDATE ON tokens BEGIN SELECT RAISE(IGNORE); END");
  });
}

#ifdef LLMPROXY_WITH_POSTGRES
TEST_CASE("quota refusal contract: PostgreSQL answers an unexplained refusal with Unavailable",
          "[postgres][contract]") {
  auto driver = fresh_postgres();
  check_unexplained_refusal(*driver, [] {
    pg_exec(scratch_database_url(),
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; "
            "CREATE TRIGGER skip_token_updates BEFORE UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION skip_row()");
  });
}
#endif

}  // namespace
}  // namespace llmproxy::contract
