// Auditor::record_coalesced (SPEC §7.3, issue 9): repetitions of one key within the interval become one row at
// once plus one summary row, whose "count"s add up to what was recorded; the number of open windows is bounded.
// Against the real SQLite driver.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/db/database.hpp"
#include "support/temp_dir.hpp"
#include "unit/faulty_database_fixture.hpp"

namespace audit = llmproxy::audit;
namespace db = llmproxy::db;
using llmproxy::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::vector<db::AuditEvent> stored_events(db::Database& database) {
  db::AuditFilter f;
  f.page.page_size = 100;
  auto page = database.list_audit_events(f);
  REQUIRE(page.total_count == static_cast<std::int64_t>(page.items.size()));
  return page.items;
}

db::AuditEvent denial(const std::string& token_id, const std::string& reason = "token revoked") {
  db::AuditEvent e;
  e.action = "proxy.denied";
  e.actor = "token:" + token_id;
  e.outcome = "denied";
  e.token_id = token_id;
  e.reason = reason;
  e.metadata = nlohmann::json{{"token_hint", "sk-…abcd"}}.dump();
  return e;
}

nlohmann::json metadata(const db::AuditEvent& e) {
  REQUIRE(e.metadata.has_value());
  return nlohmann::json::parse(*e.metadata);
}

/// Sum of "count" per token id over the stored proxy.denied rows.
std::map<std::string, std::int64_t> counts_by_token(const std::vector<db::AuditEvent>& rows) {
  std::map<std::string, std::int64_t> sums;
  for (const auto& r : rows) {
    if (r.action == "proxy.denied") sums[r.token_id.value_or("")] += metadata(r).at("count").get<std::int64_t>();
  }
  return sums;
}

}  // namespace

TEST_CASE("200 denials of one token within the interval are stored as 2 rows whose counts add up to 200",
          "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  audit::Auditor auditor(o);  // default interval: one minute
  auditor.start();
  for (int i = 0; i < 200; ++i) auditor.record_coalesced(denial("tok-1"));
  REQUIRE(auditor.wait_idle(5s));

  // The first one is written at once, with its count and what the caller put in the metadata.
  auto rows = stored_events(*driver);
  REQUIRE(rows.size() == 1);
  CHECK(metadata(rows[0])["count"] == 1);
  CHECK(metadata(rows[0])["token_hint"] == "sk-…abcd");
  CHECK(auditor.coalesced() == 199);

  // stop() summarizes the open window.
  auditor.stop();
  rows = stored_events(*driver);
  REQUIRE(rows.size() == 2);
  const bool first_is_summary = metadata(rows[0]).contains("summary");
  const auto& summary = first_is_summary ? rows[0] : rows[1];
  const auto m = metadata(summary);
  CHECK(m["count"] == 199);
  CHECK(m["summary"] == true);
  CHECK(m["token_hint"] == "sk-…abcd");
  CHECK(m.contains("first_seen"));
  CHECK(m.contains("last_seen"));
  CHECK(summary.reason == std::optional<std::string>("token revoked"));
  CHECK(counts_by_token(rows) == std::map<std::string, std::int64_t>{{"tok-1", 200}});
  CHECK(auditor.dropped() == 0);
}

TEST_CASE("coalescing keys are separate, the writer ends windows after the interval, quiet keys start over",
          "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  o.coalesce_interval = 300ms;
  audit::Auditor auditor(o);
  auditor.start();
  for (int i = 0; i < 10; ++i) {
    auditor.record_coalesced(denial("tok-a"));
    auditor.record_coalesced(denial("tok-b"));
    auditor.record_coalesced(denial("tok-a", "project inactive"));  // another reason: another key
  }
  REQUIRE(auditor.wait_idle(5s));
  CHECK(stored_events(*driver).size() == 3);

  // The writer closes the windows once the interval has passed, without stop() or another event.
  std::vector<db::AuditEvent> rows;
  for (int i = 0; i < 50 && rows.size() < 6; ++i) {
    std::this_thread::sleep_for(100ms);
    rows = stored_events(*driver);
  }
  REQUIRE(rows.size() == 6);
  CHECK(counts_by_token(rows) == std::map<std::string, std::int64_t>{{"tok-a", 20}, {"tok-b", 10}});

  // Once the flood is over, the next event after a quiet interval is written at once again.
  std::this_thread::sleep_for(1500ms);  // let the (now empty) windows close
  auditor.record_coalesced(denial("tok-b"));
  REQUIRE(auditor.wait_idle(5s));
  CHECK(stored_events(*driver).size() == 7);
  auditor.stop();
  CHECK(counts_by_token(stored_events(*driver)) == std::map<std::string, std::int64_t>{{"tok-a", 20}, {"tok-b", 11}});
}

TEST_CASE("beyond coalesce_max_keys an event with a new key is dropped and counted", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  audit::Options o;
  o.repository = driver.get();
  o.coalesce_max_keys = 3;
  audit::Auditor auditor(o);
  for (int i = 0; i < 5; ++i) auditor.record_coalesced(denial("tok-" + std::to_string(i)));
  auditor.record_coalesced(denial("tok-0"));  // a known key is still counted
  CHECK(auditor.dropped(audit::Kind::proxy) == 2);
  CHECK(auditor.dropped(audit::Kind::management) == 0);
  auditor.stop();
  CHECK(counts_by_token(stored_events(*driver)) ==
        std::map<std::string, std::int64_t>{{"tok-0", 2}, {"tok-1", 1}, {"tok-2", 1}});
}

TEST_CASE("a full audit queue drops proxy events first and keeps management events", "[audit]") {
  TempDir dir;
  auto driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "audit.sqlite");
  llmproxy::testing::FaultyDatabase faulty(*driver);
  faulty.down = true;
  audit::Options o;
  o.repository = &faulty;
  o.max_queue = 10;
  audit::Auditor auditor(o);
  // The writer starts after the flood: a writer retrying a batch against the down database holds up to
  // batch_size events outside the queue for a moment, which would make the counts below depend on timing.
  const auto management = [](int i) {
    db::AuditEvent e;
    e.action = "token.revoke";
    e.actor = "management";
    e.outcome = "success";
    e.reason = std::to_string(i);
    return e;
  };
  const auto proxy = [](int i) {
    db::AuditEvent e = denial("tok-" + std::to_string(i));
    e.metadata.reset();
    return e;
  };
  for (int i = 0; i < 3; ++i) auditor.record(management(i));
  for (int i = 0; i < 20; ++i) auditor.record(proxy(i));  // a flood of client-caused events
  for (int i = 3; i < 6; ++i) auditor.record(management(i));

  CHECK(auditor.pending() == 10);
  CHECK(auditor.dropped(audit::Kind::management) == 0);
  CHECK(auditor.dropped(audit::Kind::proxy) == 16);
  CHECK(auditor.dropped() == 16);

  faulty.down = false;
  auditor.start();
  REQUIRE(auditor.wait_idle(15s));
  auditor.stop();
  int management_rows = 0;
  std::vector<std::string> proxy_tokens;
  for (const auto& r : stored_events(*driver)) {
    if (r.action == "token.revoke") ++management_rows;
    if (r.action == "proxy.denied") proxy_tokens.push_back(r.token_id.value_or(""));
  }
  CHECK(management_rows == 6);
  // The newest proxy events survive.
  std::sort(proxy_tokens.begin(), proxy_tokens.end());
  CHECK(proxy_tokens == std::vector<std::string>{"tok-16", "tok-17", "tok-18", "tok-19"});
}

TEST_CASE("a queue of management events only still has a bound", "[audit]") {
  audit::Options o;
  o.max_queue = 4;
  audit::Auditor auditor(o);
  for (int i = 0; i < 6; ++i) {
    db::AuditEvent e;
    e.action = "project.create";
    e.actor = "management";
    e.outcome = "success";
    auditor.record(e);
  }
  CHECK(auditor.pending() == 4);
  CHECK(auditor.dropped(audit::Kind::management) == 2);
  auditor.stop();
}
