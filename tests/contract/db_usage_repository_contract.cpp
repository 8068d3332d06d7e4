// The repository contract, usage (SPEC §14, migration 0002): LLM tokens in add_usage, the usage_daily upsert, the
// usage series (query_usage), project totals, and the budget / rate-limit columns of tokens and projects.
//
// To add a check: add a SECTION below named by the sentence it proves. It runs on SQLite (file and :memory:) and
// PostgreSQL with a fresh, migrated, empty database `d` of its own (see db_token_repository_contract.cpp).
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

namespace {

/// A usage series as `key:requests/prompt/completion/cache_hits` items, so a failing comparison reads well.
std::string show_usage(const std::vector<db::UsageRow>& rows) {
  std::string out;
  for (const auto& r : rows) {
    if (!out.empty()) out += ' ';
    out += (r.key.empty() ? std::string("''") : r.key) + ':' + std::to_string(r.requests) + '/' +
           std::to_string(r.prompt_tokens) + '/' + std::to_string(r.completion_tokens) + '/' +
           std::to_string(r.cache_hits);
  }
  return out;
}

std::string show_usage(const db::UsageTotals& t) {
  return std::to_string(t.requests) + '/' + std::to_string(t.prompt_tokens) + '/' +
         std::to_string(t.completion_tokens) + '/' + std::to_string(t.cache_hits);
}

db::UsageQuery by(db::UsageGroupBy group_by) {
  db::UsageQuery q;
  q.group_by = group_by;
  return q;
}

db::DailyUsageDelta daily(const std::string& day, const std::string& project_id, const std::string& token_id,
                          const std::string& model, std::int64_t requests, std::int64_t prompt,
                          std::int64_t completion, std::int64_t cache_hits) {
  return db::DailyUsageDelta{day, project_id, token_id, model, requests, prompt, completion, cache_hits};
}

db::UsageDelta token_delta(const std::string& token_id, std::int64_t requests, std::int64_t cache_hits,
                           db::TimePoint last_used, std::int64_t prompt, std::int64_t completion) {
  return db::UsageDelta{token_id, requests, cache_hits, last_used, prompt, completion};
}

}  // namespace

void check_usage_repository_contract(const MakeFresh& make_fresh) {
  auto owned = open_fresh(make_fresh);
  db::Database& d = *owned;
  using G = db::UsageGroupBy;

  // --- add_usage ---------------------------------------------------------------------------------------------

  SECTION("usage: add_usage adds LLM tokens to the token row with the request counts, across batches") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at());
    d.create_token(t);
    d.add_usage(db::UsageBatch{{token_delta(t.id, 2, 1, at(10s), 100, 40), token_delta(t.id, 1, 0, at(5s), 7, 3),
                                token_delta(util::uuid_v4(), 9, 9, at(20s), 999, 999)},
                               {}});
    t.request_count = 3;
    t.cache_hit_count = 1;
    t.prompt_tokens = 107;
    t.completion_tokens = 43;
    t.last_used_at = at(10s);
    check_same(d.get_token(t.id), t);

    d.add_usage(db::UsageBatch{{token_delta(t.id, 1, 0, at(30s), 1000, 2000)}, {}});
    t.request_count = 4;
    t.prompt_tokens = 1107;
    t.completion_tokens = 2043;
    t.last_used_at = at(30s);
    check_same(d.get_token(t.id), t);
    check_same(d.list_tokens(p.id, {1, 10}, std::nullopt).items.at(0), t);
    CHECK(show_usage(d.project_usage_totals(p.id)) == "4/1107/2043/1");
  }

  SECTION("usage: daily rows merge per day, project, token and model within a batch and across batches") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at());
    d.create_token(t);
    const std::string gone = util::uuid_v4();  // a token deleted meanwhile: its daily row is still written
    d.add_usage(db::UsageBatch{{},
                               {daily("2026-03-01", p.id, t.id, "gpt-4o", 1, 10, 5, 0),
                                daily("2026-03-01", p.id, t.id, "gpt-4o", 2, 20, 10, 1),  // same key: merged
                                daily("2026-03-01", p.id, t.id, "", 1, 0, 0, 1),          // unknown model
                                daily("2026-03-02", p.id, t.id, "gpt-4o", 4, 40, 20, 0),  // next day
                                daily("2026-03-01", p.id, gone, "gpt-4o", 1, 1, 1, 0)}});
    d.add_usage(db::UsageBatch{{}, {daily("2026-03-01", p.id, t.id, "gpt-4o", 1, 1, 1, 1)}});

    db::UsageQuery q = by(G::model);
    q.token_id = t.id;
    q.to_day = "2026-03-01";
    CHECK(show_usage(d.query_usage(q)) == "'':1/0/0/1 gpt-4o:4/31/16/2");
    q.group_by = G::day;
    q.to_day.reset();
    CHECK(show_usage(d.query_usage(q)) == "2026-03-01:5/31/16/3 2026-03-02:4/40/20/0");
    q.token_id = gone;
    CHECK(show_usage(d.query_usage(q)) == "2026-03-01:1/1/1/0");
    // The token row itself got nothing: only token deltas change it.
    check_same(d.get_token(t.id), t);
  }

  SECTION("usage: a batch that fails writes nothing, neither token counts nor daily rows") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at());
    d.create_token(t);
    const auto good = daily("2026-03-01", p.id, t.id, "m", 1, 10, 10, 0);
    d.add_usage(db::UsageBatch{{token_delta(t.id, 1, 0, at(1s), 10, 10)}, {good}});
    t.request_count = 1;
    t.prompt_tokens = 10;
    t.completion_tokens = 10;
    t.last_used_at = at(1s);

    // The token update and the first daily upsert succeed inside the transaction; the last daily row breaks a
    // CHECK of the table (counts are never negative), so the database refuses the statement and all is undone.
    CHECK_THROWS_AS(d.add_usage(db::UsageBatch{{token_delta(t.id, 5, 5, at(9s), 50, 50)},
                                               {good, daily("2026-03-09", p.id, t.id, "n", -1, 0, 0, 0)}}),
                    db::Invalid);
    // A day that is no date is refused before anything is written.
    CHECK_THROWS_AS(d.add_usage(db::UsageBatch{{token_delta(t.id, 5, 5, at(9s), 50, 50)},
                                               {good, daily("2026-02-30", p.id, t.id, "m", 1, 0, 0, 0)}}),
                    db::Invalid);
    CHECK_THROWS_AS(d.add_usage(db::UsageBatch{{}, {daily("2026-3-01", p.id, t.id, "m", 1, 0, 0, 0)}}), db::Invalid);

    check_same(d.get_token(t.id), t);
    CHECK(show_usage(d.query_usage(by(G::model))) == "m:1/10/10/0");
    d.add_usage(db::UsageBatch{});  // empty: nothing to do, no error
    check_same(d.get_token(t.id), t);
  }

  // --- query_usage -------------------------------------------------------------------------------------------

  SECTION("usage: query_usage groups by day, model or token, filters, and orders by key ascending") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    d.create_project(a);
    d.create_project(b);
    const auto ta = make_token(a.id, at());
    const auto tb = make_token(a.id, at());
    const auto tc = make_token(b.id, at());
    for (const auto& t : {ta, tb, tc}) d.create_token(t);
    // Days across a month end (text order = date order); model names whose byte order differs from a locale's
    // ("Zeta" < "claude" < "gpt-4o" byte by byte).
    d.add_usage(db::UsageBatch{{},
                               {daily("2026-02-01", a.id, ta.id, "gpt-4o", 1, 100, 10, 0),
                                daily("2026-01-30", a.id, ta.id, "claude", 2, 200, 20, 1),
                                daily("2026-01-31", a.id, tb.id, "gpt-4o", 3, 300, 30, 0),
                                daily("2026-01-31", a.id, tb.id, "Zeta", 4, 400, 40, 2),
                                daily("2026-01-31", b.id, tc.id, "gpt-4o", 5, 500, 50, 0),
                                daily("2026-02-01", b.id, tc.id, "", 6, 600, 60, 3)}});

    CHECK(show_usage(d.query_usage(by(G::day))) ==
          "2026-01-30:2/200/20/1 2026-01-31:12/1200/120/2 2026-02-01:7/700/70/3");
    CHECK(show_usage(d.query_usage(by(G::model))) == "'':6/600/60/3 Zeta:4/400/40/2 claude:2/200/20/1 gpt-4o:9/900/90/0");
    {
      std::vector<std::pair<std::string, std::string>> want = {
          {ta.id, ":3/300/30/1"}, {tb.id, ":7/700/70/2"}, {tc.id, ":11/1100/110/3"}};
      std::sort(want.begin(), want.end());
      std::string expected;
      for (const auto& [id, sums] : want) expected += (expected.empty() ? "" : " ") + id + sums;
      CHECK(show_usage(d.query_usage(by(G::token))) == expected);
    }

    auto q = by(G::model);
    q.project_id = a.id;
    CHECK(show_usage(d.query_usage(q)) == "Zeta:4/400/40/2 claude:2/200/20/1 gpt-4o:4/400/40/0");
    q.group_by = G::day;
    q.model = "gpt-4o";
    CHECK(show_usage(d.query_usage(q)) == "2026-01-31:3/300/30/0 2026-02-01:1/100/10/0");
    q.project_id.reset();
    CHECK(show_usage(d.query_usage(q)) == "2026-01-31:8/800/80/0 2026-02-01:1/100/10/0");
    q.model = "";  // the unknown model is a value like any other
    CHECK(show_usage(d.query_usage(q)) == "2026-02-01:6/600/60/3");

    auto range = by(G::day);
    range.from_day = "2026-01-31";
    range.to_day = "2026-01-31";
    CHECK(show_usage(d.query_usage(range)) == "2026-01-31:12/1200/120/2");
    range.to_day.reset();
    CHECK(show_usage(d.query_usage(range)) == "2026-01-31:12/1200/120/2 2026-02-01:7/700/70/3");
    range.from_day.reset();
    range.to_day = "2026-01-31";
    range.token_id = tb.id;
    CHECK(show_usage(d.query_usage(range)) == "2026-01-31:7/700/70/2");

    auto none = by(G::token);
    none.project_id = util::uuid_v4();
    CHECK(d.query_usage(none).empty());
    none.project_id.reset();
    none.from_day = "2026-02-02";
    CHECK(d.query_usage(none).empty());
    none.from_day = "2026-02-01";
    none.to_day = "2026-01-30";  // from after to
    CHECK(d.query_usage(none).empty());
  }

  SECTION("usage: query_usage refuses a day that is not YYYY-MM-DD") {
    for (const std::string bad : {"2026-1-01", "2026-02-30", "2026-13-01", "yesterday", "", "2026-01-01T00:00:00Z",
                                  "0000-01-01", "2026-01-1x"}) {
      INFO("day '" << bad << "'");
      auto q = by(G::day);
      q.from_day = bad;
      CHECK_THROWS_AS(d.query_usage(q), db::Invalid);
      q.from_day.reset();
      q.to_day = bad;
      CHECK_THROWS_AS(d.query_usage(q), db::Invalid);
    }
    auto leap = by(G::day);
    leap.from_day = "2024-02-29";
    leap.to_day = "2024-02-29";
    CHECK(d.query_usage(leap).empty());
  }

  // --- project totals ----------------------------------------------------------------------------------------

  SECTION("usage: project_usage_totals sums the project's tokens, zeros without tokens, NotFound when unknown") {
    const auto p = make_project("p", at());
    const auto other = make_project("other", at());
    const auto empty = make_project("empty", at());
    for (const auto& x : {p, other, empty}) d.create_project(x);
    const auto t1 = make_token(p.id, at());
    const auto t2 = make_token(p.id, at());
    const auto t3 = make_token(other.id, at());
    for (const auto& t : {t1, t2, t3}) d.create_token(t);
    d.add_usage(db::UsageBatch{{token_delta(t1.id, 2, 1, at(1s), 10, 20), token_delta(t2.id, 3, 2, at(1s), 30, 40),
                                token_delta(t3.id, 100, 100, at(1s), 100, 100)},
                               {}});
    CHECK(d.consume_quota(t1.id, 4, at(2s)).granted == 4);  // quota grants count as requests too

    CHECK(show_usage(d.project_usage_totals(p.id)) == "9/40/60/3");
    CHECK(show_usage(d.project_usage_totals(empty.id)) == "0/0/0/0");
    CHECK_THROWS_AS(d.project_usage_totals(util::uuid_v4()), db::NotFound);
  }

  // --- budget and rate-limit columns ---------------------------------------------------------------------------

  SECTION("tokens: max_tokens and rate_limit_rpm round trip through create, get, list, update and quota") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto limited = make_token(p.id, at(), 50);
    limited.max_tokens = 1'000'000;
    limited.rate_limit_rpm = 60;
    auto plain = make_token(p.id, at(1s));
    d.create_token(limited);
    d.create_token(plain);
    check_same(d.get_token(limited.id), limited);
    check_same(d.get_token(plain.id), plain);
    check_same(*d.find_token_by_hash(limited.token_hash), limited);
    const auto page = d.list_tokens(p.id, {1, 10}, std::nullopt);
    REQUIRE(page.items.size() == 2);
    check_same(page.items[1], limited);
    check_same(page.items[0], plain);

    db::TokenUpdate set_budget;
    set_budget.max_tokens = std::optional<std::int64_t>{2'000'000};
    limited.max_tokens = 2'000'000;
    check_same(d.update_token(limited.id, set_budget, at(5s)), limited);  // rate limit and max_requests kept

    db::TokenUpdate change;
    change.max_tokens = std::optional<std::int64_t>{};  // remove the budget
    change.rate_limit_rpm = std::optional<std::int64_t>{30};
    limited.max_tokens.reset();
    limited.rate_limit_rpm = 30;
    check_same(d.update_token(limited.id, change, at(6s)), limited);

    db::TokenUpdate other;  // other fields only: both limits unchanged
    other.max_requests = std::optional<std::int64_t>{70};
    limited.max_requests = 70;
    check_same(d.update_token(limited.id, other, at(7s)), limited);

    db::TokenUpdate remove_rpm;
    remove_rpm.rate_limit_rpm = std::optional<std::int64_t>{};
    remove_rpm.max_tokens = std::optional<std::int64_t>{5};
    limited.rate_limit_rpm.reset();
    limited.max_tokens = 5;
    check_same(d.update_token(limited.id, remove_rpm, at(8s)), limited);
    check_same(d.get_token(limited.id), limited);

    // The quota grant returns the whole row, the new columns included.
    const auto granted = d.consume_quota(limited.id, 1, at(9s));
    REQUIRE(granted.token.has_value());
    CHECK(granted.token->max_tokens == std::optional<std::int64_t>{5});
    CHECK_FALSE(granted.token->rate_limit_rpm.has_value());
    check_same(d.get_token(plain.id), plain);
  }

  SECTION("projects: rate_limit_rpm round trips through create, get, list and update") {
    auto limited = make_project("limited", at());
    limited.rate_limit_rpm = 600;
    auto plain = make_project("plain", at());
    d.create_project(limited);
    d.create_project(plain);
    check_same(d.get_project(limited.id), limited);
    check_same(d.get_project(plain.id), plain);
    const auto page = d.list_projects({1, 10});
    REQUIRE(page.items.size() == 2);
    check_same(page.items[0], limited);
    check_same(page.items[1], plain);

    db::ProjectUpdate rename;  // other fields only: the limit stays
    rename.name = "limited-2";
    limited.name = "limited-2";
    limited.updated_at = at(1s);
    check_same(d.update_project(limited.id, rename, at(1s)), limited);

    db::ProjectUpdate change;
    change.rate_limit_rpm = std::optional<std::int64_t>{120};
    limited.rate_limit_rpm = 120;
    limited.updated_at = at(2s);
    check_same(d.update_project(limited.id, change, at(2s)), limited);

    db::ProjectUpdate remove;
    remove.rate_limit_rpm = std::optional<std::int64_t>{};
    limited.rate_limit_rpm.reset();
    limited.updated_at = at(3s);
    check_same(d.update_project(limited.id, remove, at(3s)), limited);
    check_same(d.get_project(limited.id), limited);

    db::ProjectUpdate set_plain;
    set_plain.rate_limit_rpm = std::optional<std::int64_t>{1};
    plain.rate_limit_rpm = 1;
    plain.updated_at = at(4s);
    check_same(d.update_project(plain.id, set_plain, at(4s)), plain);
  }
}

}  // namespace llmproxy::contract
