// The repository contract, audit events: insert, get, list, every filter, time ranges, search.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {

using namespace std::chrono_literals;
using db::TimePoint;
using std::chrono::microseconds;

void check_audit_repository_contract(const MakeFresh& make_fresh) {
  auto owned = open_fresh(make_fresh);
  db::Database& d = *owned;

  SECTION("audit: insert and get round-trip every field, all or nothing, NotFound") {
    auto full = make_event(at(), "token.revoke", "denied");
    full.actor = "token:" + util::uuid_v4();
    full.project_id = util::uuid_v4();
    full.request_id = "req-123";
    full.correlation_id = "corr-456";
    full.client_ip = "2001:db8::1";
    full.method = "DELETE";
    full.path = "/manage/tokens/abc";
    full.user_agent = "curl/8.0";
    full.reason = "token already revoked";
    full.token_id = util::uuid_v4();
    full.metadata = R"({"model":"gpt-4o","n":2,"nested":{"ok":true,"list":[1,2,3]}})";
    const auto minimal = make_event(at(1s));
    d.insert_audit_events({full, minimal});
    check_same(d.get_audit_event(full.id), full);
    check_same(d.get_audit_event(minimal.id), minimal);

    d.insert_audit_events({});
    CHECK_THROWS_AS(d.get_audit_event(util::uuid_v4()), db::NotFound);

    // outcome is CHECK-constrained: the whole batch is refused.
    const auto good = make_event(at(2s));
    const auto bad = make_event(at(3s), "misc.event", "bogus");
    CHECK_THROWS_AS(d.insert_audit_events({good, bad}), db::Invalid);
    CHECK_THROWS_AS(d.get_audit_event(good.id), db::NotFound);
    CHECK(d.list_audit_events({}).total_count == 2);
  }

  SECTION("audit: list is newest first (ties by id) with pages and total") {
    std::vector<db::AuditEvent> all;
    for (int i = 0; i < 25; ++i) all.push_back(make_event(at(std::chrono::seconds(i))));
    all[11].timestamp = all[10].timestamp;
    all[12].timestamp = all[10].timestamp;
    // Two inserts: lists must not depend on insertion order.
    d.insert_audit_events(std::vector<db::AuditEvent>(all.begin() + 13, all.end()));
    d.insert_audit_events(std::vector<db::AuditEvent>(all.begin(), all.begin() + 13));
    const auto expected = ids_newest_first(all, [](const db::AuditEvent& e) { return e.timestamp; });
    for (std::int64_t page = 1; page <= 4; ++page) {
      INFO("page " << page);
      db::AuditFilter f;
      f.page = {page, 10};
      const auto got = d.list_audit_events(f);
      CHECK(got.total_count == 25);
      CHECK(ids(got.items) == slice(expected, static_cast<std::size_t>((page - 1) * 10), 10));
    }
    db::AuditFilter one;
    one.page = {1, 1};
    const auto first = d.list_audit_events(one);
    REQUIRE(first.items.size() == 1);
    check_same(first.items[0], *std::find_if(all.begin(), all.end(), [&](const db::AuditEvent& e) {
      return e.id == expected.front();
    }));
  }

  SECTION("audit: every filter matches exactly, filters combine, pages apply after filtering") {
    const auto p1 = util::uuid_v4();
    const auto p2 = util::uuid_v4();
    auto e1 = make_event(at(1s), "project.create", "success");
    e1.project_id = p1;
    e1.request_id = "req-1";
    e1.client_ip = "10.0.0.1";
    e1.method = "POST";
    e1.path = "/manage/projects";
    auto e2 = make_event(at(2s), "token.create", "failure");
    e2.project_id = p1;
    e2.request_id = "req-2";
    e2.client_ip = "10.0.0.2";
    e2.method = "POST";
    e2.path = "/manage/tokens";
    e2.correlation_id = "corr-1";
    auto e3 = make_event(at(3s), "token.revoke", "denied");
    e3.actor = "system";
    e3.project_id = p2;
    e3.request_id = "req-10";
    e3.client_ip = "10.0.0.1";
    e3.method = "DELETE";
    e3.path = "/manage/tokens/abc";
    auto e4 = make_event(at(4s), "proxy.request", "error");
    e4.actor = "token:xyz";
    e4.project_id = p2;
    e4.method = "GET";
    e4.path = "/v1/models";
    e4.correlation_id = "corr-10";
    auto e5 = make_event(at(5s), "project.create", "success");
    e5.project_id = p2;
    d.insert_audit_events({e1, e2, e3, e4, e5});
    const auto names = name_events({{"e1", &e1}, {"e2", &e2}, {"e3", &e3}, {"e4", &e4}, {"e5", &e5}});
    auto with = [&](auto setter) {
      db::AuditFilter f;
      setter(f);
      return listed(d, f, names);
    };

    CHECK(with([](auto& f) { f.action = "project.create"; }) == "e5 e1 (total 2)");
    CHECK(with([&](auto& f) { f.project_id = p1; }) == "e2 e1 (total 2)");
    CHECK(with([](auto& f) { f.outcome = "denied"; }) == "e3 (total 1)");
    CHECK(with([](auto& f) { f.outcome = "error"; }) == "e4 (total 1)");
    CHECK(with([](auto& f) { f.actor = "system"; }) == "e3 (total 1)");
    CHECK(with([](auto& f) { f.request_id = "req-1"; }) == "e1 (total 1)");
    CHECK(with([](auto& f) { f.client_ip = "10.0.0.1"; }) == "e3 e1 (total 2)");
    CHECK(with([](auto& f) { f.method = "POST"; }) == "e2 e1 (total 2)");
    CHECK(with([](auto& f) { f.path = "/manage/tokens"; }) == "e2 (total 1)");
    CHECK(with([](auto& f) { f.correlation_id = "corr-1"; }) == "e2 (total 1)");
    CHECK(with([](auto& f) { f.correlation_id = "corr-10"; }) == "e4 (total 1)");
    CHECK(with([](auto& f) { f.correlation_id = "corr"; }) == "(total 0)");
    CHECK(with([](auto& f) {
            f.correlation_id = "corr-1";
            f.method = "POST";
          }) == "e2 (total 1)");
    CHECK(with([&](auto& f) {
            f.action = "project.create";
            f.project_id = p2;
          }) == "e5 (total 1)");
    CHECK(with([](auto& f) {
            f.action = "token.create";
            f.outcome = "success";
          }) == "(total 0)");
    CHECK(with([](auto& f) { f.action = "nothing.like.this"; }) == "(total 0)");
    CHECK(with([](auto& f) {
            f.client_ip = "10.0.0.1";
            f.page = {2, 1};
          }) == "e1 (total 2)");
    CHECK(with([](auto& f) {
            f.client_ip = "10.0.0.1";
            f.page = {3, 1};
          }) == "(total 2)");
  }

  SECTION("audit: time range bounds are inclusive to the microsecond") {
    const auto a = make_event(at(1s) - 1us), b = make_event(at(1s)), c = make_event(at(2s)),
               e = make_event(at(3s)), f = make_event(at(3s) + 1us);
    d.insert_audit_events({a, b, c, e, f});
    const auto names = name_events({{"a", &a}, {"b", &b}, {"c", &c}, {"e", &e}, {"f", &f}});
    auto range = [&](std::optional<TimePoint> start, std::optional<TimePoint> end) {
      db::AuditFilter filter;
      filter.start_time = start;
      filter.end_time = end;
      return listed(d, filter, names);
    };
    CHECK(range(at(1s), at(3s)) == "e c b (total 3)");
    CHECK(range(at(2s), std::nullopt) == "f e c (total 3)");
    CHECK(range(std::nullopt, at(1s)) == "b a (total 2)");
    CHECK(range(at(2s), at(2s)) == "c (total 1)");
    CHECK(range(at(3s), at(1s)) == "(total 0)");
  }

  SECTION("audit: search is a case-insensitive substring match with %, _ and \\ taken literally") {
    auto s1 = make_event(at(1s), "token.revoke", "failure");
    s1.reason = "100% done";
    auto s2 = make_event(at(2s), "token.create");
    s2.reason = "100 percent done";
    auto s3 = make_event(at(3s));
    s3.reason = "a_b";
    auto s4 = make_event(at(4s));
    s4.reason = "axb";
    auto s5 = make_event(at(5s));
    s5.path = "/v1/Chat/Completions";
    auto s6 = make_event(at(6s));
    s6.user_agent = "OpenAI/Python 1.2";
    auto s7 = make_event(at(7s));
    s7.client_ip = "192.168.7.7";
    auto s8 = make_event(at(8s));
    s8.metadata = R"({"model": "GPT-4o-mini"})";
    auto s9 = make_event(at(9s));
    s9.reason = "back\\slash";
    auto s10 = make_event(at(10s));
    s10.actor = "Management-Console";
    auto s11 = make_event(at(11s));
    s11.request_id = "needle-in-request-id";  // searched like the reference does
    auto s12 = make_event(at(12s));
    s12.correlation_id = "Corr-XYZ-9";
    auto s13 = make_event(at(13s));
    s13.method = "PATCH";
    auto s14 = make_event(at(14s));
    s14.token_id = "haystack-token-id";  // not a searched column
    d.insert_audit_events({s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14});
    const auto names = name_events({{"s1", &s1}, {"s2", &s2}, {"s3", &s3}, {"s4", &s4}, {"s5", &s5}, {"s6", &s6},
                                    {"s7", &s7}, {"s8", &s8}, {"s9", &s9}, {"s10", &s10}, {"s11", &s11},
                                    {"s12", &s12}, {"s13", &s13}, {"s14", &s14}});
    auto search = [&](const std::string& text) { return listed(d, search_for(text), names); };

    CHECK(search("0%") == "s1 (total 1)");
    CHECK(search("%") == "s1 (total 1)");
    CHECK(search("a_b") == "s3 (total 1)");
    CHECK(search("_") == "s3 (total 1)");
    CHECK(search("k\\s") == "s9 (total 1)");
    CHECK(search("\\") == "s9 (total 1)");
    CHECK(search("TOKEN.") == "s2 s1 (total 2)");
    CHECK(search("chat/completions") == "s5 (total 1)");
    CHECK(search("openai/PYTHON") == "s6 (total 1)");
    CHECK(search("168.7") == "s7 (total 1)");
    CHECK(search("gpt-4O") == "s8 (total 1)");
    CHECK(search("console") == "s10 (total 1)");
    CHECK(search("DONE") == "s2 s1 (total 2)");
    CHECK(search("needle") == "s11 (total 1)");
    CHECK(search("corr-xyz") == "s12 (total 1)");
    CHECK(search("patch") == "s13 (total 1)");
    CHECK(search("haystack") == "(total 0)");

    auto done_ok = search_for("done");
    done_ok.outcome = "success";
    CHECK(listed(d, done_ok, names) == "s2 (total 1)");
    auto done_paged = search_for("done");
    done_paged.page = {2, 1};
    CHECK(listed(d, done_paged, names) == "s1 (total 2)");
  }
}

}  // namespace llmproxy::contract
