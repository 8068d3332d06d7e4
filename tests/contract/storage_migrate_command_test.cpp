// `llm-proxy migrate ...` in process (storage::migrate_command) on SQLite files; the real binary is driven by
// tests/integration/migrate_cli_test.cpp.
#include <SQLiteCpp/Database.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <sstream>

#include "contract/database_fixture.hpp"
#include "llmproxy/migrate/embedded.hpp"
#include "llmproxy/storage/migrate_command.hpp"

namespace llmproxy::contract {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const config::Config& config, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result r;
  r.code = storage::migrate_command(args, config, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string plural(std::int64_t n) { return n == 1 ? "" : "s"; }

std::string pad4(std::int64_t v) {
  auto s = std::to_string(v);
  return std::string(s.size() < 4 ? 4 - s.size() : 0, '0') + s;
}

TEST_CASE("migrate command: status, up, version, down on a SQLite file", "[sqlite][migrate-cli]") {
  TempDir dir;
  const auto file = dir.unique_file(".sqlite");
  config::Config config;
  config.db = sqlite_config(file);
  const auto& files = migrate::embedded_sqlite();
  const auto n = static_cast<std::int64_t>(files.size());
  REQUIRE(n >= 1);

  // status on a fresh file: every version pending, nothing created.
  auto r = run(config, {"status"});
  INFO("stderr: " << r.err);
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  auto status = lines(r.out);
  REQUIRE(status.size() == files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    CHECK(status[i] == pad4(files[i].version) + "  pending  " + files[i].name);
  }
  CHECK(sqlite_tables(file).empty());

  r = run(config, {"version"});
  CHECK(r.code == 0);
  CHECK(r.out == "0 (pending: " + std::to_string(n) + ")\n");
  CHECK(sqlite_tables(file).empty());

  r = run(config, {"up"});
  CHECK(r.code == 0);
  CHECK(r.out == "applied " + std::to_string(n) + " migration" + plural(n) + "; database is at version " +
                     std::to_string(n) + "\n");

  r = run(config, {"status"});
  CHECK(r.code == 0);
  status = lines(r.out);
  REQUIRE(status.size() == files.size());
  const std::regex applied_line(R"(\d{4}  applied  (\S+)  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::smatch m;
    INFO(status[i]);
    REQUIRE(std::regex_match(status[i], m, applied_line));
    CHECK(m[1] == files[i].name);
  }

  r = run(config, {"version"});
  CHECK(r.out == std::to_string(n) + "\n");

  r = run(config, {"up"});
  CHECK(r.out == "applied 0 migrations; database is at version " + std::to_string(n) + "\n");

  r = run(config, {"down"});
  CHECK(r.code == 0);
  CHECK(r.out == "reverted 1 migration; database is at version " + std::to_string(n - 1) + "\n");

  r = run(config, {"up", "--to", std::to_string(n)});
  CHECK(r.out == "applied 1 migration; database is at version " + std::to_string(n) + "\n");

  r = run(config, {"down", "--to=0"});
  CHECK(r.code == 0);
  CHECK(r.out == "reverted " + std::to_string(n) + " migration" + plural(n) + "; database is at version 0\n");
  CHECK(sqlite_tables(file) == std::vector<std::string>{"schema_migrations"});

  r = run(config, {"up", "--to=1"});
  CHECK(r.out == "applied 1 migration; database is at version 1\n");
  r = run(config, {"down", "--steps", "5"});
  CHECK(r.out == "reverted 1 migration; database is at version 0\n");
}

TEST_CASE("migrate command: usage errors exit 2 before opening the database", "[sqlite][migrate-cli]") {
  TempDir dir;
  const auto file = dir.unique_file(".sqlite");
  config::Config config;
  config.db = sqlite_config(file);
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"sideways"},
      {"up", "--steps", "1"},
      {"up", "--to"},
      {"up", "--to", "abc"},
      {"up", "--to", "-1"},
      {"up", "--to", "1x"},
      {"down", "--steps", "0"},
      {"down", "--steps", "1", "--to", "0"},
      {"down", "--to", "1", "--to", "2"},
      {"status", "--to", "1"},
      {"version", "extra"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    INFO("args: " << joined);
    const auto r = run(config, args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, StartsWith("error: "));
    CHECK_THAT(r.err, Contains("usage: llm-proxy migrate"));
    CHECK(r.out.empty());
  }
  CHECK_FALSE(std::filesystem::exists(file));

  const auto help = run(config, {"--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, StartsWith("usage: llm-proxy migrate"));
  CHECK_FALSE(std::filesystem::exists(file));
}

TEST_CASE("migrate command: runtime failures exit 1 with the reason", "[sqlite][migrate-cli]") {
  TempDir dir;
  config::Config config;
  const auto n = static_cast<std::int64_t>(migrate::embedded_sqlite().size());

  SECTION("unknown target version") {
    config.db = sqlite_config(dir.unique_file(".sqlite"));
    const auto r = run(config, {"up", "--to", "999"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains("cannot migrate up to version 999"));
  }

  SECTION("database newer than the binary: up and down refuse, status and version show it") {
    const auto file = dir.unique_file(".sqlite");
    config.db = sqlite_config(file);
    REQUIRE(run(config, {"up"}).code == 0);
    {
      SQLite::Database raw(file.string(), SQLite::OPEN_READWRITE);
      raw.exec("INSERT INTO schema_migrations (version, name, checksum, applied_at, execution_ms) VALUES (" +
               std::to_string(n + 1) + ", 'from_the_future', 'abc', '2030-01-01T00:00:00.000000Z', 1)");
    }
    const auto expected = "database is at version " + std::to_string(n + 1) + " but this binary knows only up to " +
                          std::to_string(n);
    auto r = run(config, {"up"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(expected));
    r = run(config, {"down"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(expected));
    r = run(config, {"status"});
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Contains(pad4(n + 1) +
                               "  applied  from_the_future  2030-01-01T00:00:00.000000Z  (unknown to this binary"));
    r = run(config, {"version"});
    CHECK(r.code == 0);
    CHECK_THAT(r.out, StartsWith(std::to_string(n + 1) + " (newer than this binary"));
  }

  SECTION("database cannot be opened: retried until DATABASE_STARTUP_TIMEOUT") {
    const auto not_a_dir = dir.path() / "plain-file";
    std::ofstream(not_a_dir) << "x";
    config.db = sqlite_config(not_a_dir / "db.sqlite");
    config.db.startup_timeout = std::chrono::milliseconds(300);
    const auto r = run(config, {"status"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains("could not connect to the database at " + (not_a_dir / "db.sqlite").string()));
    CHECK_THAT(r.err, Contains("within DATABASE_STARTUP_TIMEOUT=300ms"));
  }
}

}  // namespace
}  // namespace llmproxy::contract
