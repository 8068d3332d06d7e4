// `llm-proxy migrate ...` through the real binary: exit codes, output, what it does (and does not) create, and
// several processes migrating one database at once.
#include <algorithm>
#include <filesystem>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "integration/binary_fixture.hpp"

namespace llmproxy::itest {
namespace {

/// Migration names in migrations/<driver>/ on disk, in version order: the binary must embed exactly these.
std::vector<std::string> migration_names(const std::string& driver) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LLMPROXY_SOURCE_DIR) + "/migrations/" +
                                                               driver)) {
    const auto file = entry.path().filename().string();
    std::smatch m;
    static const std::regex kUp(R"((\d+)_(.+)\.up\.sql)");
    if (std::regex_match(file, m, kUp)) names.push_back(m[1].str() + "  " + m[2].str());
  }
  std::sort(names.begin(), names.end());
  for (auto& n : names) n = n.substr(n.find("  ") + 2);
  return names;
}

std::string pad4(std::size_t v) {
  auto s = std::to_string(v);
  return std::string(s.size() < 4 ? 4 - s.size() : 0, '0') + s;
}

/// Lines of `output` matching `pattern` in full.
std::vector<std::string> matching_lines(const std::string& output, const std::regex& pattern) {
  std::vector<std::string> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, pattern)) out.push_back(line);
  }
  return out;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

std::string user_tables_sql(TestDatabase::Kind kind) {
  return kind == TestDatabase::Kind::sqlite
             ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
             : "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
}

/// status / up / version / down / up again through the binary; `status` and `version` create nothing.
void check_cli_cycle(TestDatabase::Kind kind) {
  TestDatabase db(kind);
  auto env = base_env(db.dir());
  db.apply(env);
  const auto names = migration_names(kind == TestDatabase::Kind::sqlite ? "sqlite" : "postgres");
  REQUIRE_FALSE(names.empty());
  const auto n = names.size();

  auto [code, out] = run_binary({"migrate", "status"}, env);
  INFO(out);
  CHECK(code == 0);
  const auto pending = matching_lines(out, std::regex(R"(\d{4}  pending  \S+)"));
  REQUIRE(pending.size() == n);
  for (std::size_t i = 0; i < n; ++i) CHECK(pending[i] == pad4(i + 1) + "  pending  " + names[i]);
  CHECK(db.query(user_tables_sql(kind)) == "0");

  std::tie(code, out) = run_binary({"migrate", "version"}, env);
  CHECK(code == 0);
  CHECK(matching_lines(out, std::regex("0 \\(pending: " + std::to_string(n) + "\\)")).size() == 1);
  CHECK(db.query(user_tables_sql(kind)) == "0");

  std::tie(code, out) = run_binary({"migrate", "up"}, env);
  CHECK(code == 0);
  CHECK_THAT(out, Catch::Matchers::Contains("database is at version " + std::to_string(n)));
  CHECK(db.query("SELECT count(*) FROM schema_migrations") == std::to_string(n));
  CHECK(db.query("SELECT max(version) FROM schema_migrations") == std::to_string(n));

  std::tie(code, out) = run_binary({"migrate", "status"}, env);
  CHECK(code == 0);
  const auto applied = matching_lines(out, std::regex(R"(\d{4}  applied  \S+  \d{4}-\d\d-\d\dT[0-9:.]+Z)"));
  CHECK(applied.size() == n);

  std::tie(code, out) = run_binary({"migrate", "version"}, env);
  CHECK(code == 0);
  CHECK(matching_lines(out, std::regex(std::to_string(n))).size() == 1);

  std::tie(code, out) = run_binary({"migrate", "down", "--to", "0"}, env);
  CHECK(code == 0);
  CHECK_THAT(out, Catch::Matchers::Contains("reverted " + std::to_string(n) + " migration"));
  CHECK(db.query("SELECT count(*) FROM schema_migrations") == "0");
  CHECK(db.query(user_tables_sql(kind)) == "1");  // schema_migrations only

  std::tie(code, out) = run_binary({"migrate", "up"}, env);
  CHECK(code == 0);
  CHECK(db.query("SELECT count(*) FROM schema_migrations") == std::to_string(n));
}

/// `processes` copies of `llm-proxy migrate up` started together: all exit 0, each version is applied by
/// exactly one of them and recorded once.
void check_concurrent_up(TestDatabase::Kind kind, int processes) {
  TestDatabase db(kind);
  auto env = base_env(db.dir());
  db.apply(env);
  env["MIGRATION_LOCK_TIMEOUT"] = "60s";
  const auto n = migration_names(kind == TestDatabase::Kind::sqlite ? "sqlite" : "postgres").size();

  std::vector<test::Process> running;
  for (int i = 0; i < processes; ++i) {
    running.emplace_back(LLMPROXY_BINARY, std::vector<std::string>{"migrate", "up"}, env);
  }
  std::string all_output;
  for (auto& p : running) {
    const auto code = p.wait_exit(90s);
    INFO(p.output());
    CHECK(code == std::optional<int>(0));
    all_output += p.output();
  }
  INFO(all_output);
  // Each process logs the migrations it applied itself: together exactly one line per version.
  CHECK(count_of(all_output, "\"event\":\"migration_applied\"") == n);
  CHECK(db.query("SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations") ==
        std::to_string(n) + "|" + std::to_string(n) + "|" + std::to_string(n));
}

TEST_CASE("migrate CLI on SQLite: status creates nothing, up, version, down --to 0, up", "[migrate-cli]") {
  check_cli_cycle(TestDatabase::Kind::sqlite);
}

TEST_CASE("migrate CLI on PostgreSQL: status creates nothing, up, version, down --to 0, up",
          "[migrate-cli][postgres]") {
  check_cli_cycle(TestDatabase::Kind::postgres);
}

TEST_CASE("4 processes running `migrate up` at once on one SQLite file migrate it once", "[migrate-cli]") {
  check_concurrent_up(TestDatabase::Kind::sqlite, 4);
}

TEST_CASE("4 processes running `migrate up` at once on one PostgreSQL database migrate it once",
          "[migrate-cli][postgres]") {
  check_concurrent_up(TestDatabase::Kind::postgres, 4);
}

TEST_CASE("migrate CLI: usage errors exit 2, runtime errors exit 1", "[migrate-cli]") {
  TestDatabase db(TestDatabase::Kind::sqlite);
  auto env = base_env(db.dir());
  db.apply(env);

  auto [code, out] = run_binary({"migrate", "sideways"}, env);
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Matchers::Contains("unknown migrate command 'sideways'"));
  CHECK_THAT(out, Catch::Matchers::Contains("usage: llm-proxy migrate"));
  CHECK_FALSE(std::filesystem::exists(db.path()));

  std::tie(code, out) = run_binary({"migrate", "down", "--steps", "1", "--to", "0"}, env);
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Matchers::Contains("either --steps or --to"));

  std::tie(code, out) = run_binary({"migrate", "up", "--to", "9999"}, env);
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Matchers::Contains("cannot migrate up to version 9999"));
}

}  // namespace
}  // namespace llmproxy::itest
