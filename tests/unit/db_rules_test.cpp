// db/rules: the engine-independent rules both drivers share (paging, LIKE patterns, quota refusals).
#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

#include "llmproxy/db/rules.hpp"
#include "llmproxy/util/time.hpp"

namespace db = llmproxy::db;
using std::chrono::seconds;

TEST_CASE("page_limit and page_offset: 1-based pages, no overflow far past the end", "[db][rules]") {
  CHECK(db::page_limit({1, 20}) == 20);
  CHECK(db::page_limit({1, 0}) == 1);
  CHECK(db::page_offset({1, 20}) == 0);
  CHECK(db::page_offset({3, 20}) == 40);
  CHECK(db::page_offset({0, 20}) == 0);
  CHECK(db::page_offset({-5, 20}) == 0);
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  CHECK(db::page_offset({kMax, 1000}) == kMax);
  CHECK(db::page_offset({kMax / 10, 100}) == kMax);
}

TEST_CASE("like_contains_pattern escapes the wildcards and the escape character", "[db][rules]") {
  CHECK(db::like_contains_pattern("abc") == "%abc%");
  CHECK(db::like_contains_pattern("50%_off!") == "%50!%!_off!!%");
  CHECK(db::like_contains_pattern("back\\slash") == "%back\\slash%");
  CHECK(db::like_contains_pattern("") == "%%");
}

namespace {

db::Token token() {
  db::Token t;
  t.id = "t1";
  t.is_active = true;
  t.max_requests = 3;
  t.request_count = 1;
  return t;
}

}  // namespace

TEST_CASE("explain_quota_refusal reads why the increment refused the row", "[db][rules]") {
  const auto now = llmproxy::util::now();
  auto t = token();
  CHECK_FALSE(db::explain_quota_refusal(t, now).has_value());
  t.request_count = 3;
  CHECK(db::explain_quota_refusal(t, now) == db::QuotaOutcome::exhausted);
  t.expires_at = now;
  CHECK(db::explain_quota_refusal(t, now) == db::QuotaOutcome::expired);
  t.is_active = false;
  CHECK(db::explain_quota_refusal(t, now) == db::QuotaOutcome::inactive);
  auto unlimited = token();
  unlimited.max_requests.reset();
  unlimited.request_count = 1'000'000;
  unlimited.expires_at = now + seconds(1);
  CHECK_FALSE(db::explain_quota_refusal(unlimited, now).has_value());
}

TEST_CASE("decide_quota: one policy for accepted, refused, missing and ever-changing rows", "[db][rules]") {
  const auto now = llmproxy::util::now();
  int increments = 0;
  int reads = 0;
  const auto refuse = [&]() -> std::optional<db::QuotaGrant> {
    ++increments;
    return std::nullopt;
  };

  SECTION("an accepted increment returns the counted row and the units granted without a read") {
    auto counted = token();
    counted.request_count = 2;
    const auto result = db::decide_quota("t1", 3, now, [&] { return std::optional(db::QuotaGrant{counted, 2}); },
                                         [&]() -> std::optional<db::Token> { FAIL("read"); return std::nullopt; });
    CHECK(result.outcome == db::QuotaOutcome::accepted);
    CHECK(result.granted == 2);
    REQUIRE(result.token);
    CHECK(result.token->request_count == 2);
  }
  SECTION("fewer than one unit is Invalid before any statement") {
    CHECK_THROWS_AS(db::decide_quota("t1", 0, now, refuse, [] { return std::optional<db::Token>(); }), db::Invalid);
    CHECK(increments == 0);
  }
  SECTION("a refusal is explained by the row read after it") {
    auto exhausted = token();
    exhausted.request_count = 3;
    const auto result = db::decide_quota("t1", 1, now, refuse, [&] {
      ++reads;
      return std::optional(exhausted);
    });
    CHECK(result.outcome == db::QuotaOutcome::exhausted);
    CHECK(result.granted == 0);
    CHECK(increments == 1);
    CHECK(reads == 1);
  }
  SECTION("a missing row is not_found") {
    const auto result = db::decide_quota("t1", 1, now, refuse, [] { return std::optional<db::Token>(); });
    CHECK(result.outcome == db::QuotaOutcome::not_found);
    CHECK_FALSE(result.token);
  }
  SECTION("a row that explains the refusal on the second look is answered then") {
    const auto result = db::decide_quota("t1", 1, now, refuse, [&] {
      auto t = token();
      if (++reads == 2) t.is_active = false;
      return std::optional(t);
    });
    CHECK(result.outcome == db::QuotaOutcome::inactive);
    CHECK(increments == 2);
  }
  SECTION("a row that never explains the refusal is Unavailable after kQuotaAttempts, nothing counted") {
    CHECK_THROWS_AS(db::decide_quota("t1", 1, now, refuse, [&] { return std::optional(token()); }), db::Unavailable);
    CHECK(increments == db::kQuotaAttempts);
  }
}

TEST_CASE("merge_usage adds the deltas of one token and sorts the tokens by id", "[db][rules]") {
  const auto t0 = llmproxy::util::now();
  const auto t1 = t0 + seconds(5);
  const std::vector<db::UsageDelta> deltas = {
      {"b", 1, 0, t0, 10, 1}, {"a", 2, 1, t1, 20, 2}, {"b", 3, 2, t1, 30, 3}, {"a", 1, 0, t0, 40, 4}};
  const auto merged = db::merge_usage(deltas);
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].token_id == "a");
  CHECK(merged[0].requests == 3);
  CHECK(merged[0].cache_hits == 1);
  CHECK(merged[0].last_used_at == t1);
  CHECK(merged[0].prompt_tokens == 60);
  CHECK(merged[0].completion_tokens == 6);
  CHECK(merged[1].token_id == "b");
  CHECK(merged[1].requests == 4);
  CHECK(merged[1].cache_hits == 2);
  CHECK(merged[1].last_used_at == t1);
  CHECK(merged[1].prompt_tokens == 40);
  CHECK(merged[1].completion_tokens == 4);
  CHECK(db::merge_usage({}).empty());
}

TEST_CASE("merge_daily_usage adds the deltas of one day, project, token and model and sorts by that key",
          "[db][rules]") {
  const std::vector<db::DailyUsageDelta> deltas = {
      {"2026-03-02", "p", "t", "m", 1, 10, 100, 0}, {"2026-03-01", "p", "t", "m", 2, 20, 200, 1},
      {"2026-03-02", "p", "t", "m", 3, 30, 300, 2}, {"2026-03-01", "p", "t", "", 4, 40, 400, 3},
      {"2026-03-01", "p", "u", "m", 5, 50, 500, 4}};
  const auto merged = db::merge_daily_usage(deltas);
  REQUIRE(merged.size() == 4);
  const auto key = [](const db::DailyUsageDelta& d) { return d.day + "|" + d.token_id + "|" + d.model; };
  CHECK(key(merged[0]) == "2026-03-01|t|");
  CHECK(key(merged[1]) == "2026-03-01|t|m");
  CHECK(key(merged[2]) == "2026-03-01|u|m");
  CHECK(key(merged[3]) == "2026-03-02|t|m");
  CHECK(merged[3].requests == 4);
  CHECK(merged[3].prompt_tokens == 40);
  CHECK(merged[3].completion_tokens == 400);
  CHECK(merged[3].cache_hits == 2);
  CHECK(merged[1].requests == 2);
  CHECK(db::merge_daily_usage({}).empty());
}

TEST_CASE("valid_day accepts exactly the calendar dates written YYYY-MM-DD", "[db][rules]") {
  for (const char* good : {"2026-01-01", "2024-02-29", "2000-02-29", "9999-12-31", "0001-01-01"}) {
    INFO(good);
    CHECK(db::valid_day(good));
  }
  for (const char* bad : {"2026-02-29", "1900-02-29", "2026-04-31", "2026-00-10", "2026-13-01", "2026-01-00",
                          "0000-01-01", "2026-1-01", "2026/01/01", "2026-01-01 ", " 2026-01-01", "2026-01-01T00:00",
                          "", "+026-01-01", "2026-01-0a"}) {
    INFO(bad);
    CHECK_FALSE(db::valid_day(bad));
  }
  CHECK_THROWS_AS(db::require_valid_day("2026-02-30", "from"), db::Invalid);
  CHECK_NOTHROW(db::require_valid_day("2026-02-28", "from"));
}
