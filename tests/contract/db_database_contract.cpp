// The repository contract, database part: the driver reports itself and its health, and every table stores
// values verbatim (text with SQL metacharacters and non-ASCII, timestamps to the microsecond).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {

using namespace std::chrono_literals;
using db::TimePoint;
using std::chrono::microseconds;

void check_database_contract(const std::string& driver_name, const MakeFresh& make_fresh) {
  auto owned = open_fresh(make_fresh);
  db::Database& d = *owned;

  SECTION("driver name and health") {
    CHECK(d.driver_name() == driver_name);
    const auto h = d.health();
    CHECK(h.up);
    CHECK(h.error.empty());
    CHECK(h.latency_ms >= 0);
    CHECK(h.latency_ms < 5000);
    CHECK(h.pool.size >= 1);
    CHECK(h.pool.open >= 1);
    CHECK(h.pool.in_use == 0);
    CHECK(h.pool.waiting == 0);
    CHECK(h.pool.idle + h.pool.in_use == h.pool.open);
    const auto s = d.pool_stats();
    CHECK(s.size == h.pool.size);
    CHECK(s.in_use == 0);
  }

  SECTION("names with SQL metacharacters, parameter markers and non-ASCII are stored verbatim") {
    const std::vector<std::string> names = {
        "O'Brien \"x\" ; DROP TABLE projects; --",
        "M\xC3\xBCller \xC3\xBC \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x9A\x80",  // Müller ü 日本語 🚀
        "$1 ?1 :name @p %s \\ back\\slash\ttab\nnewline",
        "' OR '1'='1",
    };
    std::vector<db::Project> projects;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto p = make_project(names[i], at(std::chrono::seconds(i)));
      p.api_key = "key-" + names[i];
      projects.push_back(p);
      d.create_project(p);
    }
    for (const auto& p : projects) check_same(d.get_project(p.id), p);
    const auto all_projects = d.list_projects({1, 10});
    REQUIRE(all_projects.total_count == static_cast<std::int64_t>(names.size()));
    for (const auto& p : all_projects.items) CHECK(std::find(names.begin(), names.end(), p.name) != names.end());

    auto t = make_token(projects[1].id, at());
    t.token_hint = "sk-\xC3\x9C\xE6\x97\xA5'\"...\xF0\x9F\x9A\x80;--";
    d.create_token(t);
    check_same(d.get_token(t.id), t);

    auto e = make_event(at(), names[0]);
    e.actor = names[1];
    e.reason = names[2];
    e.user_agent = names[3];
    e.metadata = R"({"name": "O'Brien \"x\" \u65e5\u672c \ud83d\ude80", "sql": "; DROP TABLE audit_events; --"})";
    d.insert_audit_events({e});
    check_same(d.get_audit_event(e.id), e);
    const Names names_e = {{e.id, "e"}};
    CHECK(listed(d, search_for("DROP TABLE projects"), names_e) == "e (total 1)");
    CHECK(listed(d, search_for("\xE6\x97\xA5\xE6\x9C\xAC"), names_e) == "e (total 1)");

    db::ProjectUpdate u;
    u.name = "Robert'); DROP TABLE tokens;--";
    CHECK(d.update_project(projects[0].id, u, at(1h)).name == *u.name);
    CHECK(d.get_token(t.id).token_hint == t.token_hint);  // tokens table still there
  }

  SECTION("timestamps round-trip to the microsecond") {
    const std::vector<TimePoint> instants = {
        utc(2026, 1, 2, 3, 4, 5, 1),         utc(2026, 1, 2, 3, 4, 5, 999999), utc(2000, 2, 29, 23, 59, 59, 500000),
        utc(2099, 12, 31, 23, 59, 59, 999999), utc(1999, 12, 31, 23, 59, 59, 0),
    };
    for (std::size_t i = 0; i < instants.size(); ++i) {
      const auto ts = instants[i];
      INFO("instant " << show(ts));
      auto p = make_project("time " + std::to_string(i), ts);
      p.updated_at = ts + 1us;
      p.is_active = false;
      p.deactivated_at = ts + 2us;
      d.create_project(p);
      check_same(d.get_project(p.id), p);

      auto t = make_token(p.id, ts, 5, ts + 3us);
      t.last_used_at = ts + 4us;
      d.create_token(t);
      check_same(d.get_token(t.id), t);

      auto e = make_event(ts);
      d.insert_audit_events({e});
      check_same(d.get_audit_event(e.id), e);
    }
    // Microsecond order survives in the lists too (tokens are listed newest first).
    const auto by_time = d.list_tokens(std::nullopt, {1, 100}, std::nullopt);
    REQUIRE(by_time.items.size() == instants.size());
    for (std::size_t i = 1; i < by_time.items.size(); ++i) {
      CHECK(by_time.items[i - 1].created_at > by_time.items[i].created_at);
    }
  }
}

}  // namespace llmproxy::contract
