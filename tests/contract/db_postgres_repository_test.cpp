// The repository contract on PostgreSQL (a scratch database on TEST_DATABASE_URL), plus what only PostgreSQL can
// show (column types, cascade declared in the schema). Fails without TEST_DATABASE_URL: never skips.
#ifdef LLMPROXY_WITH_POSTGRES
#include <catch2/catch.hpp>

#include "contract/database_fixture.hpp"
#include "contract/db_repository_contract.hpp"
#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {
namespace {

TEST_CASE("repository contract: PostgreSQL", "[postgres][contract]") {
  check_repository_contract("postgres", [] { return fresh_postgres(); });
}

TEST_CASE("PostgreSQL schema: types, and deleting a project cascades to its tokens", "[postgres]") {
  auto driver = fresh_postgres();
  const auto url = scratch_database_url();
  auto column_type = [&](const std::string& table, const std::string& column) {
    return pg_query_value(url, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' "
                               "AND table_name = '" + table + "' AND column_name = '" + column + "'");
  };
  CHECK(column_type("audit_events", "metadata") == "jsonb");
  CHECK(column_type("audit_events", "timestamp") == "timestamp with time zone");
  CHECK(column_type("tokens", "expires_at") == "timestamp with time zone");
  CHECK(column_type("tokens", "request_count") == "bigint");
  CHECK(column_type("schema_migrations", "version") == "bigint");

  const auto now = util::now();
  const auto p = make_project("cascade", now);
  driver->create_project(p);
  const auto t = make_token(p.id, now);
  driver->create_token(t);

  pg_exec(url, "DELETE FROM projects WHERE id = '" + p.id + "'");
  CHECK_THROWS_AS(driver->get_token(t.id), db::NotFound);
  CHECK(pg_query_value(url, "SELECT count(*) FROM tokens") == "0");
}

}  // namespace
}  // namespace llmproxy::contract
#endif
