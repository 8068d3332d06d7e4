// Auditor against the real SQLite driver and a real file (SPEC §7.3): every event reaches both sinks, stop()
// flushes, events survive a database outage (written to the file once), the queue is bounded.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/util/time.hpp"
#include "support/temp_dir.hpp"
#include "unit/faulty_database_fixture.hpp"

namespace audit = llmproxy::audit;
namespace db = llmproxy::db;
namespace util = llmproxy::util;
using llmproxy::testing::FaultyDatabase;
using llmproxy::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> read_lines(const std::filesystem::path& file) {
  std::vector<std::string> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<db::AuditEvent> stored(db::Database& database) {
  db::AuditFilter f;
  f.page.page_size = 100;
  auto page = database.list_audit_events(f);
  REQUIRE(page.total_count == static_cast<std::int64_t>(page.items.size()));
  return page.items;
}

db::AuditEvent event(std::string action, std::string outcome = "success") {
  db::AuditEvent e;
  e.action = std::move(action);
  e.actor = "management";
  e.outcome = std::move(outcome);
  return e;
}

}  // namespace

TEST_CASE("the auditor writes every event to the database and the file, stop() flushes", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  const auto file = dir.path() / "logs" / "audit.log";  // parent directory created by the auditor
  audit::Options o;
  o.repository = driver.get();
  o.file_path = file.string();
  o.batch_size = 10;
  audit::Auditor auditor(o);
  auditor.start();

  constexpr int kEvents = 25;
  for (int i = 0; i < kEvents; ++i) {
    db::AuditEvent e = event("token.revoke");
    e.token_id = "token-" + std::to_string(i);
    if (i == 0) {
      e.metadata = R"({"revoked_count":3})";
      e.user_agent = "agent \xff";  // invalid UTF-8 from a client must not break the line
    }
    auditor.record(std::move(e));
  }
  auditor.stop();
  CHECK(auditor.pending() == 0);
  CHECK(auditor.dropped() == 0);

  const auto rows = stored(*driver);
  REQUIRE(rows.size() == kEvents);
  std::set<std::string> ids;
  for (const auto& r : rows) {
    ids.insert(r.id);
    CHECK(r.action == "token.revoke");
    CHECK(r.timestamp != util::TimePoint{});
  }
  CHECK(ids.size() == kEvents);  // ids filled in, unique

  const auto lines = read_lines(file);
  REQUIRE(lines.size() == kEvents);
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line);
    REQUIRE(j.is_object());
    for (const char* key : {"id", "timestamp", "action", "actor", "outcome", "project_id", "token_id", "request_id",
                            "correlation_id", "client_ip", "method", "path", "user_agent", "reason", "metadata"}) {
      CHECK(j.contains(key));
    }
    CHECK(ids.count(j["id"].get<std::string>()) == 1);
    CHECK(util::parse_time(j["timestamp"].get<std::string>()).has_value());
    CHECK(j["project_id"].is_null());
    CHECK(j["token_id"].is_string());
  }
  const auto first = nlohmann::json::parse(lines.front());
  CHECK(first["metadata"]["revoked_count"] == 3);  // embedded as JSON, not as a string
  CHECK(first["user_agent"].is_string());
  CHECK(nlohmann::json::parse(lines.back())["metadata"].is_null());
}

TEST_CASE("events recorded without a started writer are written by stop()", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  audit::Auditor auditor(o);
  for (int i = 0; i < 3; ++i) auditor.record(event("project.create"));
  CHECK(auditor.pending() == 3);
  auditor.stop();
  CHECK(stored(*driver).size() == 3);
}

TEST_CASE("while the database is unavailable events stay queued and are written after recovery", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  FaultyDatabase faulty(*driver);
  faulty.down = true;
  const auto file = dir.path() / "audit.log";
  audit::Options o;
  o.repository = &faulty;
  o.file_path = file.string();
  audit::Auditor auditor(o);
  auditor.start();
  for (int i = 0; i < 5; ++i) auditor.record(event("project.update"));

  CHECK_FALSE(auditor.wait_idle(300ms));
  CHECK(auditor.pending() == 5);
  CHECK(read_lines(file).size() == 5);  // the file sink does not wait for the database

  faulty.down = false;
  REQUIRE(auditor.wait_idle(15s));  // next retry within the backoff
  CHECK(stored(*driver).size() == 5);
  CHECK(read_lines(file).size() == 5);  // retried for the database only, not written twice
  CHECK(auditor.dropped() == 0);
  auditor.stop();
}

TEST_CASE("beyond max_queue the oldest events are dropped and counted", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  o.max_queue = 5;
  audit::Auditor auditor(o);
  for (int i = 0; i < 8; ++i) auditor.record(event("a" + std::to_string(i)));
  CHECK(auditor.dropped() == 3);
  CHECK(auditor.pending() == 5);
  auditor.stop();
  std::set<std::string> actions;
  for (const auto& r : stored(*driver)) actions.insert(r.action);
  CHECK(actions == std::set<std::string>{"a3", "a4", "a5", "a6", "a7"});
}

TEST_CASE("an event the database refuses is dropped without blocking the others", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  audit::Auditor auditor(o);
  auditor.record(event("ok.1"));
  auditor.record(event("bad", "not-an-outcome"));  // violates the CHECK constraint
  auditor.record(event("ok.2"));
  auditor.stop();
  CHECK(stored(*driver).size() == 2);
  CHECK(auditor.dropped() == 1);
}

TEST_CASE("stop() gives up after a bounded wait while the database stays down", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  FaultyDatabase faulty(*driver);
  faulty.down = true;
  audit::Options o;
  o.repository = &faulty;
  o.file_path = (dir.path() / "audit.log").string();
  audit::Auditor auditor(o);
  auditor.start();
  auditor.record(event("server.shutdown"));
  auditor.record(event("server.shutdown"));
  const auto started = std::chrono::steady_clock::now();
  auditor.stop();
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(auditor.dropped() == 2);
  CHECK(auditor.pending() == 0);
  CHECK(read_lines(dir.path() / "audit.log").size() == 2);  // the file still has them
}

TEST_CASE("a disabled auditor records nothing, an unusable file path throws", "[audit]") {
  TempDir dir;
  audit::Options off;
  off.enabled = false;
  off.file_path = (dir.path() / "never" / "audit.log").string();
  audit::Auditor disabled(off);
  disabled.start();
  disabled.record(event("project.create"));
  CHECK(disabled.pending() == 0);
  disabled.stop();
  CHECK_FALSE(std::filesystem::exists(dir.path() / "never"));

  std::ofstream(dir.path() / "plain-file") << "x";
  audit::Options bad;
  bad.file_path = (dir.path() / "plain-file" / "audit.log").string();
  CHECK_THROWS_AS(audit::Auditor(bad), std::runtime_error);
}
