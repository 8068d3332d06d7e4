// The migration runner's pure parts (SPEC §4.4): statement splitting, checksum and label, validation of a file
// set before any database call. The runner against real databases: tests/contract/migrate_runner_database_test.cpp.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/migrate/backend.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::migrate {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

TEST_CASE("split_statements: a statement ends at a `,` that ends a line", "[migrations]") {
  using migrate::split_statements;
  CHECK(split_statements("") == Strings{});
  CHECK(split_statements("CREATE TABLE a (x INT);\nCREATE INDEX i ON a (x);\n") ==
        Strings{"CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"});
  CHECK(split_statements("CREATE TABLE t (\n  a INT,\n  b TEXT\n);\n") ==
        Strings{"CREATE TABLE t (\n  a INT,\n  b TEXT\n)"});
  CHECK(split_statements("SELECT 1;  \t\nSELECT 2;") == Strings{"SELECT 1", "SELECT 2"});
  CHECK(split_statements("SELECT 1;\r\nSELECT 2;\r\n") == Strings{"SELECT 1", "SELECT 2"});
  CHECK(split_statements("SELECT 1;\nSELECT 2") == Strings{"SELECT 1", "SELECT 2"});
  // A `;` inside a line does not end the statement (string literals, several clauses).
  CHECK(split_statements("INSERT INTO t VALUES ('a;b');\n") == Strings{"INSERT INTO t VALUES ('a;b')"});
  CHECK(split_statements("SELECT 1; SELECT 2;\n") == Strings{"SELECT 1; SELECT 2"});
  // Comment-only chunks vanish, leading comments are stripped, a comment line ending in `;` does not split.
  CHECK(split_statements("-- header\n\n-- still a comment;\nSELECT 1;\n-- trailing comment\n\n") ==
        Strings{"SELECT 1"});
  CHECK(split_statements("-- create t\nCREATE TABLE t (\n  a INT -- the a;\n);\n") ==
        Strings{"CREATE TABLE t (\n  a INT -- the a;\n)"});
  // A trailing comment after the `;` still ends the statement; `--` inside a literal is not a comment.
  CHECK(split_statements("CREATE TABLE a (x INT); -- note\nINSERT INTO a VALUES ('--');\n") ==
        Strings{"CREATE TABLE a (x INT)", "INSERT INTO a VALUES ('--')"});
  CHECK(split_statements("CREATE TABLE x(a INT);\nTHIS IS NOT SQL;\n") ==
        Strings{"CREATE TABLE x(a INT)", "THIS IS NOT SQL"});
  CHECK(split_statements(";\n  ;\n") == Strings{});
}

TEST_CASE("checksum and label", "[migrations]") {
  MigrationFile f{1, "initial", "CREATE TABLE a (x INT);\n", "DROP TABLE a;\n"};
  CHECK(migrate::checksum(f) == util::sha256_hex(f.up_sql));
  CHECK(migrate::checksum(f).size() == 64);
  auto down_changed = f;
  down_changed.down_sql = "DROP TABLE IF EXISTS a;\n";
  CHECK(migrate::checksum(down_changed) == migrate::checksum(f));
  auto up_changed = f;
  up_changed.up_sql += " ";
  CHECK(migrate::checksum(up_changed) != migrate::checksum(f));
  CHECK(migrate::label(1, "initial") == "0001_initial");
  CHECK(migrate::label(12345, "big") == "12345_big");
}

/// Fails the test if the runner touches the database: validation happens before any call.
class UnusedBackend : public migrate::Backend {
 public:
  std::vector<migrate::AppliedMigration> read_applied() override {
    FAIL("read_applied called");
    return {};
  }
  std::unique_ptr<migrate::Session> begin_session(std::chrono::milliseconds) override {
    FAIL("begin_session called");
    return nullptr;
  }
  const std::vector<MigrationFile>& files() const override { return files_; }

 private:
  std::vector<MigrationFile> files_;
};

TEST_CASE("Runner refuses a file set that is not contiguous from 1", "[migrations]") {
  UnusedBackend backend;
  auto file = [](std::int64_t v) { return MigrationFile{v, "m" + std::to_string(v), "SELECT 1;\n", "SELECT 1;\n"}; };
  CHECK_NOTHROW(Runner(backend, {}, 1s));
  CHECK_NOTHROW(Runner(backend, {file(1), file(2), file(3)}, 1s));
  CHECK(Runner(backend, {file(1), file(2)}, 1s).latest_version() == 2);
  for (const auto& bad : std::vector<std::vector<MigrationFile>>{
           {file(2)}, {file(1), file(3)}, {file(2), file(1)}, {file(1), file(1)}, {file(0), file(1)}}) {
    CHECK_THROWS_WITH(Runner(backend, bad, 1s), Contains("contiguously from 1"));
  }
  CHECK_THROWS_AS(Runner(backend, {MigrationFile{1, "", "SELECT 1;\n", "SELECT 1;\n"}}, 1s),
                  migrate::MigrationError);
}

}  // namespace
}  // namespace llmproxy::migrate
