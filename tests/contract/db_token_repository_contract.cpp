// The repository contract, tokens: create, get, find by hash, list, update, revoke; quota (consume_quota) and
// usage (add_usage).
//
// To add a check: add a SECTION below, in its group, named by the sentence it proves ("quota: ..."). It runs on
// SQLite (file and :memory:) and PostgreSQL with a fresh, migrated, empty database `d` of its own; make rows
// with make_project/make_token and compare them with check_same (db_repository_contract_helpers.hpp). Nothing
// else to register: the [sqlite] and [postgres] test cases run every section.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {

using namespace std::chrono_literals;
using db::TimePoint;
using std::chrono::microseconds;

namespace {

const char* outcome_name(db::QuotaOutcome o) {
  switch (o) {
    case db::QuotaOutcome::accepted: return "accepted";
    case db::QuotaOutcome::not_found: return "not_found";
    case db::QuotaOutcome::inactive: return "inactive";
    case db::QuotaOutcome::expired: return "expired";
    case db::QuotaOutcome::exhausted: return "exhausted";
  }
  return "?";
}

/// Runs attempt(thread, iteration) `per_thread` times on each of `threads` threads at once. An exception counts
/// as one `other` outcome; the first one's message is returned (empty when none was thrown).
std::string run_concurrently(int threads, int per_thread, std::atomic<int>& other,
                             const std::function<void(int, int)>& attempt) {
  std::mutex error_mutex;
  std::string first_error;
  std::vector<std::thread> running;
  for (int i = 0; i < threads; ++i) {
    running.emplace_back([&, i] {
      for (int j = 0; j < per_thread; ++j) {
        try {
          attempt(i, j);
        } catch (const std::exception& e) {
          const std::scoped_lock lock(error_mutex);
          if (first_error.empty()) first_error = e.what();
          ++other;
        }
      }
    });
  }
  for (auto& th : running) th.join();
  return first_error;
}

}  // namespace

void check_token_repository_contract(const MakeFresh& make_fresh) {
  auto owned = open_fresh(make_fresh);
  db::Database& d = *owned;

  // --- tokens: create, get, list, update, revoke -------------------------------------------------------------------

  SECTION("token: create, get and find_token_by_hash round-trip every field") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto limited = make_token(p.id, at(1s), 100, at(1h));
    limited.request_count = 7;
    limited.cache_hit_count = 3;
    limited.last_used_at = at(2s);
    auto unlimited = make_token(p.id, at(2s));
    auto revoked = make_token(p.id, at(3s), 0);
    revoked.is_active = false;
    revoked.deactivated_at = at(4s);
    for (const auto& t : {limited, unlimited, revoked}) d.create_token(t);
    for (const auto& t : {limited, unlimited, revoked}) {
      check_same(d.get_token(t.id), t);
      const auto found = d.find_token_by_hash(t.token_hash);
      REQUIRE(found.has_value());
      check_same(*found, t);
    }
  }

  SECTION("token: unknown project is Invalid and stores nothing") {
    const auto t = make_token(util::uuid_v4(), at());
    CHECK_THROWS_AS(d.create_token(t), db::Invalid);
    CHECK_FALSE(d.find_token_by_hash(t.token_hash).has_value());
    CHECK(d.list_tokens(std::nullopt, {1, 10}, std::nullopt).total_count == 0);
  }

  SECTION("token: duplicate hash or id is Conflict") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at());
    d.create_token(t);
    auto same_hash = make_token(p.id, at(1s));
    same_hash.token_hash = t.token_hash;
    CHECK_THROWS_AS(d.create_token(same_hash), db::Conflict);
    auto same_id = make_token(p.id, at(1s));
    same_id.id = t.id;
    CHECK_THROWS_AS(d.create_token(same_id), db::Conflict);
    check_same(d.get_token(t.id), t);
    CHECK(d.list_tokens(std::nullopt, {1, 10}, std::nullopt).total_count == 1);
  }

  SECTION("token: unknown id is NotFound, unknown hash is empty") {
    CHECK_THROWS_AS(d.get_token(util::uuid_v4()), db::NotFound);
    CHECK_THROWS_AS(d.update_token(util::uuid_v4(), db::TokenUpdate{}, at()), db::NotFound);
    CHECK_FALSE(d.find_token_by_hash(util::sha256_hex("nope")).has_value());
  }

  SECTION("token: list filters by project, newest first (ties by id), with pages and total") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    d.create_project(a);
    d.create_project(b);
    std::vector<db::Token> of_a, all;
    for (int i = 0; i < 5; ++i) of_a.push_back(make_token(a.id, at(microseconds(i))));
    of_a.push_back(make_token(a.id, at(2us)));  // tie with of_a[2]
    std::vector<db::Token> of_b = {make_token(b.id, at(1s)), make_token(b.id, at(-1s))};
    for (const auto& t : of_a) d.create_token(t);
    for (const auto& t : of_b) d.create_token(t);
    all = of_a;
    all.insert(all.end(), of_b.begin(), of_b.end());
    auto created = [](const db::Token& t) { return t.created_at; };

    const auto expected_a = ids_newest_first(of_a, created);
    for (std::int64_t page = 1; page <= 3; ++page) {
      INFO("page " << page);
      const auto got = d.list_tokens(a.id, {page, 4}, std::nullopt);
      CHECK(got.total_count == 6);
      CHECK(ids(got.items) == slice(expected_a, static_cast<std::size_t>((page - 1) * 4), 4));
    }
    const auto got_b = d.list_tokens(b.id, {1, 10}, std::nullopt);
    CHECK(got_b.total_count == 2);
    CHECK(ids(got_b.items) == ids_newest_first(of_b, created));
    const auto got_all = d.list_tokens(std::nullopt, {1, 100}, std::nullopt);
    CHECK(got_all.total_count == 8);
    CHECK(ids(got_all.items) == ids_newest_first(all, created));
    const auto none = d.list_tokens(util::uuid_v4(), {1, 10}, std::nullopt);
    CHECK(none.items.empty());
    CHECK(none.total_count == 0);
  }

  SECTION("token: list filters by state: usable now (active, unexpired or without expiry) or not") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto live = make_token(p.id, at(), std::nullopt, at(1h));
    const auto no_expiry = make_token(p.id, at(1us));
    const auto expired = make_token(p.id, at(2us), std::nullopt, at(-1s));
    const auto revoked = make_token(p.id, at(3us), std::nullopt, at(1h));
    const auto used_up = make_token(p.id, at(4us), 1, at(2h));  // a used-up quota can be raised: still usable
    for (const auto* t : {&live, &no_expiry, &expired, &revoked, &used_up}) d.create_token(*t);
    REQUIRE(d.revoke_token(revoked.id, at()));
    REQUIRE(d.consume_quota(used_up.id, 1, at()).granted == 1);
    // Expiry is compared with the caller's clock, to the microsecond.
    const auto usable = d.list_tokens(std::nullopt, {1, 10}, db::TokenStateFilter{true, at()});
    CHECK(usable.total_count == 3);
    CHECK(ids(usable.items) == std::vector<std::string>{used_up.id, no_expiry.id, live.id});
    const auto other = d.list_tokens(std::nullopt, {1, 10}, db::TokenStateFilter{false, at()});
    CHECK(other.total_count == 2);
    CHECK(ids(other.items) == std::vector<std::string>{revoked.id, expired.id});
    const auto later = d.list_tokens(p.id, {1, 1}, db::TokenStateFilter{true, at(1h)});
    CHECK(later.total_count == 2);  // `live` expires at exactly at(1h): no longer usable
    CHECK(ids(later.items) == std::vector<std::string>{used_up.id});
    CHECK(d.list_tokens(util::uuid_v4(), {1, 10}, db::TokenStateFilter{true, at()}).total_count == 0);
  }

  SECTION("token: update applies only the set fields and manages deactivated_at") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at(), 5, at(1h));
    t.request_count = 2;
    d.create_token(t);

    db::TokenUpdate raise;
    raise.max_requests = std::optional<std::int64_t>(10);
    auto got = d.update_token(t.id, raise, at(1s));
    t.max_requests = 10;
    check_same(got, t);

    db::TokenUpdate unlimited;
    unlimited.max_requests = std::optional<std::int64_t>();
    got = d.update_token(t.id, unlimited, at(2s));
    t.max_requests.reset();
    check_same(got, t);

    db::TokenUpdate deactivate;
    deactivate.is_active = false;
    got = d.update_token(t.id, deactivate, at(3s));
    t.is_active = false;
    t.deactivated_at = at(3s);
    check_same(got, t);

    got = d.update_token(t.id, db::TokenUpdate{}, at(4s));
    check_same(got, t);

    db::TokenUpdate activate;
    activate.is_active = true;
    activate.max_requests = std::optional<std::int64_t>(3);
    got = d.update_token(t.id, activate, at(5s));
    t.is_active = true;
    t.deactivated_at.reset();
    t.max_requests = 3;
    check_same(got, t);
    check_same(d.get_token(t.id), t);
  }

  SECTION("token: revoke_token reports whether it was active and keeps the first deactivation time") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at());
    const auto other = make_token(p.id, at());
    d.create_token(t);
    d.create_token(other);
    CHECK(d.revoke_token(t.id, at(1s)));
    t.is_active = false;
    t.deactivated_at = at(1s);
    check_same(d.get_token(t.id), t);
    CHECK_FALSE(d.revoke_token(t.id, at(2s)));
    check_same(d.get_token(t.id), t);
    check_same(d.get_token(other.id), other);
    CHECK_THROWS_AS(d.revoke_token(util::uuid_v4(), at()), db::NotFound);
  }

  SECTION("token: revoke_project_tokens counts and touches only that project") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    const auto empty = make_project("empty", at());
    for (const auto& p : {a, b, empty}) d.create_project(p);
    auto a1 = make_token(a.id, at()), a2 = make_token(a.id, at()), a3 = make_token(a.id, at());
    const auto b1 = make_token(b.id, at());
    for (const auto& t : {a1, a2, a3, b1}) d.create_token(t);
    REQUIRE(d.revoke_token(a3.id, at(1s)));

    const auto r = d.revoke_project_tokens(a.id, at(5s));
    CHECK(r.revoked_count == 2);
    CHECK(r.already_revoked_count == 1);
    CHECK(r.total_tokens == 3);
    for (auto* t : {&a1, &a2}) {
      t->is_active = false;
      t->deactivated_at = at(5s);
      check_same(d.get_token(t->id), *t);
    }
    CHECK(show(d.get_token(a3.id).deactivated_at) == show(at(1s)));
    check_same(d.get_token(b1.id), b1);

    const auto again = d.revoke_project_tokens(a.id, at(6s));
    CHECK(again.revoked_count == 0);
    CHECK(again.already_revoked_count == 3);
    CHECK(again.total_tokens == 3);

    const auto none = d.revoke_project_tokens(empty.id, at(6s));
    CHECK(none.revoked_count == 0);
    CHECK(none.already_revoked_count == 0);
    CHECK(none.total_tokens == 0);
    CHECK_THROWS_AS(d.revoke_project_tokens(util::uuid_v4(), at()), db::NotFound);
  }

  // --- quota: consume_quota (k units at once) -----------------------------------------------------------------------

  SECTION("quota: every outcome, with the current row") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto now = at(100s);
    const auto limited = make_token(p.id, at(), 2, at(200s));
    const auto unlimited = make_token(p.id, at());
    const auto revoked = make_token(p.id, at(), 5);
    const auto expired_now = make_token(p.id, at(), 5, now);          // expires_at == now: expired
    const auto expired_before = make_token(p.id, at(), 5, now - 1us);
    const auto expires_next_us = make_token(p.id, at(), 5, now + 1us);
    const auto zero = make_token(p.id, at(), 0);
    for (const auto& t : {limited, unlimited, revoked, expired_now, expired_before, expires_next_us, zero}) {
      d.create_token(t);
    }
    REQUIRE(d.revoke_token(revoked.id, at(1s)));

    auto r = d.consume_quota(limited.id, 1, now);
    REQUIRE(r.outcome == db::QuotaOutcome::accepted);
    REQUIRE(r.token.has_value());
    CHECK(r.token->id == limited.id);
    CHECK(r.token->request_count == 1);
    CHECK(show(r.token->last_used_at) == show(now));
    r = d.consume_quota(limited.id, 1, now + 1s);
    CHECK(r.outcome == db::QuotaOutcome::accepted);
    CHECK(r.token->request_count == 2);
    r = d.consume_quota(limited.id, 1, now + 2s);
    CHECK(outcome_name(r.outcome) == std::string("exhausted"));
    REQUIRE(r.token.has_value());
    CHECK(r.token->request_count == 2);
    CHECK(d.get_token(limited.id).request_count == 2);
    CHECK(show(d.get_token(limited.id).last_used_at) == show(now + 1s));

    for (int i = 1; i <= 3; ++i) {
      r = d.consume_quota(unlimited.id, 1, now);
      CHECK(r.outcome == db::QuotaOutcome::accepted);
      CHECK(r.token->request_count == i);
    }

    const std::vector<std::pair<const db::Token*, const char*>> refused = {
        {&revoked, "inactive"}, {&expired_now, "expired"}, {&expired_before, "expired"}, {&zero, "exhausted"}};
    for (const auto& [t, expected] : refused) {
      r = d.consume_quota(t->id, 1, now);
      CHECK(outcome_name(r.outcome) == std::string(expected));
      REQUIRE(r.token.has_value());
      CHECK(r.token->id == t->id);
      CHECK(r.token->request_count == 0);
      CHECK(d.get_token(t->id).request_count == 0);
    }

    r = d.consume_quota(expires_next_us.id, 1, now);
    CHECK(outcome_name(r.outcome) == std::string("accepted"));

    r = d.consume_quota(util::uuid_v4(), 1, now);
    CHECK(outcome_name(r.outcome) == std::string("not_found"));
    CHECK_FALSE(r.token.has_value());
  }

  SECTION("quota: 8 threads x 50 attempts on max_requests=100 accept exactly 100") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at(), 100);
    d.create_token(t);
    std::atomic<int> accepted{0}, exhausted{0}, other{0};
    const std::string first_error = run_concurrently(8, 50, other, [&](int i, int j) {
      const auto r = d.consume_quota(t.id, 1, at(std::chrono::seconds(1 + i * 50 + j)));
      if (r.outcome == db::QuotaOutcome::accepted) {
        ++accepted;
      } else if (r.outcome == db::QuotaOutcome::exhausted) {
        ++exhausted;
      } else {
        ++other;
      }
    });
    INFO("first error: " << first_error);
    CHECK(other.load() == 0);
    CHECK(accepted.load() == 100);
    CHECK(exhausted.load() == 300);
    CHECK(d.get_token(t.id).request_count == 100);
  }

  SECTION("quota: k units at once are granted while there is room, and the last ones partially") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto now = at(100s);
    const auto t = make_token(p.id, at(), 10, at(200s));
    d.create_token(t);

    auto r = d.consume_quota(t.id, 4, now);
    REQUIRE(outcome_name(r.outcome) == std::string("accepted"));
    CHECK(r.granted == 4);
    REQUIRE(r.token.has_value());
    CHECK(r.token->request_count == 4);
    CHECK(show(r.token->last_used_at) == show(now));
    r = d.consume_quota(t.id, 5, now + 1s);
    CHECK(outcome_name(r.outcome) == std::string("accepted"));
    CHECK(r.granted == 5);
    CHECK(r.token->request_count == 9);
    // One unit left, seven asked: one granted, the row is then exhausted.
    r = d.consume_quota(t.id, 7, now + 2s);
    CHECK(outcome_name(r.outcome) == std::string("accepted"));
    CHECK(r.granted == 1);
    REQUIRE(r.token.has_value());
    CHECK(r.token->request_count == 10);
    // Against the exhausted token: nothing granted, nothing counted, explained as exhausted.
    r = d.consume_quota(t.id, 3, now + 3s);
    CHECK(outcome_name(r.outcome) == std::string("exhausted"));
    CHECK(r.granted == 0);
    REQUIRE(r.token.has_value());
    CHECK(r.token->request_count == 10);
    const auto row = d.get_token(t.id);
    CHECK(row.request_count == 10);
    CHECK(show(row.last_used_at) == show(now + 2s));
  }

  SECTION("quota: an unlimited token gets all k units, and k below 1 is refused without counting") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto unlimited = make_token(p.id, at());
    d.create_token(unlimited);
    auto r = d.consume_quota(unlimited.id, 256, at(1s));
    CHECK(outcome_name(r.outcome) == std::string("accepted"));
    CHECK(r.granted == 256);
    r = d.consume_quota(unlimited.id, 3, at(2s));
    CHECK(r.granted == 3);
    CHECK(r.token->request_count == 259);
    CHECK_THROWS_AS(d.consume_quota(unlimited.id, 0, at(3s)), db::Invalid);
    CHECK_THROWS_AS(d.consume_quota(unlimited.id, -2, at(3s)), db::Invalid);
    CHECK(d.get_token(unlimited.id).request_count == 259);

    // A refusal with k units explains itself like one with one unit.
    const auto revoked = make_token(p.id, at(), 5);
    d.create_token(revoked);
    REQUIRE(d.revoke_token(revoked.id, at(1s)));
    r = d.consume_quota(revoked.id, 4, at(2s));
    CHECK(outcome_name(r.outcome) == std::string("inactive"));
    CHECK(r.granted == 0);
    CHECK(d.get_token(revoked.id).request_count == 0);
    r = d.consume_quota(util::uuid_v4(), 4, at(2s));
    CHECK(outcome_name(r.outcome) == std::string("not_found"));
    CHECK(r.granted == 0);
  }

  SECTION("quota: 8 threads asking 1 to 7 units at once on max_requests=100 are granted exactly 100 in total") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at(), 100);
    d.create_token(t);
    std::atomic<std::int64_t> granted{0};
    std::atomic<int> partial{0}, exhausted{0}, other{0};
    const std::string first_error = run_concurrently(8, 20, other, [&](int i, int j) {
      const std::int64_t units = 1 + (i + j) % 7;
      const auto r = d.consume_quota(t.id, units, at(std::chrono::seconds(1 + i * 20 + j)));
      if (r.outcome == db::QuotaOutcome::accepted && r.granted >= 1 && r.granted <= units) {
        granted += r.granted;
        if (r.granted < units) {
          ++partial;
          if (r.token->request_count != 100) ++other;  // a partial grant only at the end of the quota
        }
      } else if (r.outcome == db::QuotaOutcome::exhausted && r.granted == 0) {
        ++exhausted;
      } else {
        ++other;
      }
    });
    INFO("first error: " << first_error);
    CHECK(other.load() == 0);
    CHECK(granted.load() == 100);
    CHECK(partial.load() <= 1);
    CHECK(exhausted.load() > 0);
    CHECK(d.get_token(t.id).request_count == 100);
  }

  // --- usage: add_usage --------------------------------------------------------------------------------------------

  SECTION("usage: add_usage adds batches, keeps the latest last_used_at, ignores unknown tokens") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t1 = make_token(p.id, at());
    auto t2 = make_token(p.id, at());
    t2.last_used_at = at(50s);
    const auto t3 = make_token(p.id, at());
    for (const auto& t : {t1, t2, t3}) d.create_token(t);

    d.add_usage(db::UsageBatch{{
        {t1.id, 3, 1, at(10s)},
        {t2.id, 2, 5, at(20s)},           // older than the stored last_used_at: it stays
        {util::uuid_v4(), 7, 7, at(30s)},  // deleted meanwhile: ignored, the rest still applies
        {t1.id, 2, 0, at(5s)},            // same token twice in one batch: both count
    }, {}});
    t1.request_count = 5;
    t1.cache_hit_count = 1;
    t1.last_used_at = at(10s);
    t2.request_count = 2;
    t2.cache_hit_count = 5;
    check_same(d.get_token(t1.id), t1);
    check_same(d.get_token(t2.id), t2);
    check_same(d.get_token(t3.id), t3);

    d.add_usage(db::UsageBatch{{{t2.id, 1, 0, at(60s)}}, {}});
    t2.request_count = 3;
    t2.last_used_at = at(60s);
    check_same(d.get_token(t2.id), t2);

    d.add_usage({});
    check_same(d.get_token(t1.id), t1);
  }
}

}  // namespace llmproxy::contract
