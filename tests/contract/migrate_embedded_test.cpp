// The migration files each driver library embeds (migrations/<driver>/, SPEC §4.4): contiguous versions, the
// same versions and names on both drivers, statements in every up and down file. No database is opened, but the
// files are defined only in the driver libraries, which only this test executable links.
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "llmproxy/migrate/embedded.hpp"
#include "llmproxy/migrate/runner.hpp"

namespace llmproxy::contract {
namespace {

using migrate::MigrationFile;

#ifdef LLMPROXY_WITH_POSTGRES
TEST_CASE("embedded migrations: both drivers have the same versions and names", "[migrations]") {
  const auto& sqlite = migrate::embedded_sqlite();
  const auto& postgres = migrate::embedded_postgres();
  REQUIRE_FALSE(sqlite.empty());
  REQUIRE(sqlite.size() == postgres.size());
  for (std::size_t i = 0; i < sqlite.size(); ++i) {
    CHECK(sqlite[i].version == postgres[i].version);
    CHECK(sqlite[i].name == postgres[i].name);
  }
}
#endif

TEST_CASE("embedded migrations: contiguous, every up and down file has statements", "[migrations]") {
  std::vector<const std::vector<MigrationFile>*> sets = {&migrate::embedded_sqlite()};
#ifdef LLMPROXY_WITH_POSTGRES
  sets.push_back(&migrate::embedded_postgres());
#endif
  for (const auto* set : sets) {
    for (std::size_t i = 0; i < set->size(); ++i) {
      const auto& f = (*set)[i];
      INFO(migrate::label(f.version, f.name));
      CHECK(f.version == static_cast<std::int64_t>(i + 1));
      CHECK_FALSE(migrate::split_statements(f.up_sql).empty());
      CHECK_FALSE(migrate::split_statements(f.down_sql).empty());
    }
  }
}

}  // namespace
}  // namespace llmproxy::contract
