// TokenService against the real SQLite driver (SPEC §6.1, §6.3, §12): validation order, the token / negative /
// project caches, exact quotas, batched usage and behaviour while the database is unavailable.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <tuple>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/auth/detail/bearer.hpp"
#include "llmproxy/auth/detail/id_hash.hpp"
#include "llmproxy/auth/detail/lru_cache.hpp"
#include "llmproxy/auth/detail/usage_accumulator.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/token.hpp"
#include "support/temp_dir.hpp"
#include "unit/auth_service_fixture.hpp"

namespace net = boost::asio;
namespace auth = llmproxy::auth;
namespace db = llmproxy::db;
namespace util = llmproxy::util;
using llmproxy::testing::AuthEnv;
using llmproxy::testing::bearer;
using llmproxy::testing::kUpstreamKey;
using namespace std::chrono_literals;
using Env = AuthEnv;

// --- header parsing -------------------------------------------------------------------------------------------

TEST_CASE("bearer credentials: case-insensitive scheme, whitespace, malformed headers", "[auth]") {
  using auth::detail::bearer_credentials;
  const auto bearer_credentials_present = [](std::string_view h) { return bearer_credentials(h).has_value(); };
  CHECK(bearer_credentials("Bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(bearer_credentials("bEaReR \t abc  ") == std::optional<std::string_view>("abc"));
  CHECK(bearer_credentials("  bearer abc") == std::optional<std::string_view>("abc"));
  CHECK_FALSE(bearer_credentials_present(""));
  CHECK_FALSE(bearer_credentials_present("Bearer"));
  CHECK_FALSE(bearer_credentials_present("Bearer   "));
  CHECK_FALSE(bearer_credentials_present("Bearerabc"));
  CHECK_FALSE(bearer_credentials_present("Basic abc"));
  CHECK_FALSE(bearer_credentials_present("Bearer abc def"));
  CHECK_FALSE(bearer_credentials_present("Bearer abc\tdef"));
  CHECK_FALSE(bearer_credentials_present("Bearer: abc"));
}

TEST_CASE("malformed headers and tokens are invalid_token without a database round trip", "[auth]") {
  Env env;
  const std::string valid = util::generate_token();
  for (const std::string& header :
       {std::string(), std::string("Basic dXNlcjpwdw=="), std::string("Bearer"), std::string("Bearer sk-short"),
        "Bearer " + valid + "x", "Bearer " + valid.substr(0, valid.size() - 1) + "!", "Token " + valid,
        "Bearer " + valid + " extra"}) {
    const auth::Authorization a = env.authorize(header);
    CHECK(a.outcome == auth::Outcome::invalid_token);
    CHECK_FALSE(a.message.empty());
    CHECK(a.api_key.empty());
  }
  CHECK(env.db.round_trips() == 0);
  CHECK(env.svc().stats().cache_misses == 0);
}

// --- known / unknown ------------------------------------------------------------------------------------------

TEST_CASE("an unknown token is token_not_found and then answered by the negative cache", "[auth]") {
  auth::Options o;
  o.negative_cache_ttl = 5s;
  Env env(o);
  const std::string unknown = util::generate_token();

  CHECK(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);
  CHECK(env.db.token_lookups == 1);
  CHECK(env.svc().stats().cache_misses == 1);

  CHECK(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);
  CHECK(env.db.token_lookups == 1);  // no new lookup
  auth::Stats st = env.svc().stats();
  CHECK(st.cache_misses == 1);
  CHECK(st.negative_hits == 1);

  env.clock += 6s;  // past NEGATIVE_CACHE_TTL: asked again
  CHECK(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);
  CHECK(env.db.token_lookups == 2);
}

TEST_CASE("a cached unlimited token authorizes with zero database round trips", "[auth]") {
  Env env;
  const db::Project project = env.add_project();
  db::Token row;
  const std::string token = env.add_token(project, std::nullopt, std::nullopt, &row);

  const auth::Authorization first = env.authorize(bearer(token));
  REQUIRE(first.outcome == auth::Outcome::authorized);
  CHECK(first.token_id == row.id);
  CHECK(first.project_id == project.id);
  CHECK(first.token_hint == row.token_hint);
  CHECK(first.api_key == kUpstreamKey);  // decrypted
  const int trips = env.db.round_trips();
  CHECK(trips == 2);  // token + project

  for (int i = 0; i < 10; ++i) {
    const auth::Authorization again = env.authorize(bearer(token));
    CHECK(again.outcome == auth::Outcome::authorized);
    CHECK(again.api_key == kUpstreamKey);
  }
  CHECK(env.db.round_trips() == trips);
  const auth::Stats st = env.svc().stats();
  CHECK(st.cache_hits == 10);
  CHECK(st.cache_misses == 1);
  CHECK(st.cached_tokens == 1);
}

TEST_CASE("the scheme is case-insensitive for a real token", "[auth]") {
  Env env;
  const std::string token = env.add_token(env.add_project());
  CHECK(env.authorize("bearer " + token).outcome == auth::Outcome::authorized);
  CHECK(env.authorize("BEARER  " + token).outcome == auth::Outcome::authorized);
}

// --- revocation, expiry ---------------------------------------------------------------------------------------

TEST_CASE("a revoked token is token_inactive at once after invalidate_token, and audited", "[auth]") {
  auth::Options o;
  o.token_cache_ttl = 30s;
  Env env(o);
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, std::nullopt, &row);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);

  REQUIRE(env.driver->revoke_token(row.id, env.clock));
  // Another instance revoked it: this one trusts its cache until TOKEN_CACHE_TTL...
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  // ...but a revoke through this instance invalidates at once.
  env.svc().invalidate_token(row.id);
  const auth::Authorization denied = env.authorize(bearer(token));
  CHECK(denied.outcome == auth::Outcome::token_inactive);
  CHECK(denied.token_id == row.id);
  CHECK(denied.api_key.empty());

  const auto events = env.denied_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].outcome == "denied");
  CHECK(events[0].token_id == row.id);
  CHECK(events[0].project_id == row.project_id);
  CHECK(events[0].reason == "token revoked");
}

TEST_CASE("a revocation elsewhere is seen once TOKEN_CACHE_TTL passed", "[auth]") {
  auth::Options o;
  o.token_cache_ttl = 30s;
  Env env(o);
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, env.clock + 24h, &row);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  REQUIRE(env.driver->revoke_token(row.id, env.clock));
  env.clock += 31s;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.db.token_lookups == 2);
  // The inactive row is cached: a client retrying it does not reach the database.
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.db.token_lookups == 2);
}

TEST_CASE("an expired token is token_expired, decided from memory when cached", "[auth]") {
  auth::Options o;
  o.token_cache_ttl = 5min;
  Env env(o);
  const db::Project project = env.add_project();
  const std::string token = env.add_token(project, std::nullopt, env.clock + 1min);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  env.clock += 1min;  // now == expires_at: expired (valid only while now < expires_at)
  const int trips = env.db.round_trips();
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_expired);
  CHECK(env.db.round_trips() == trips);

  // Already expired when first seen.
  const std::string old = env.add_token(project, std::nullopt, env.clock - 1s);
  CHECK(env.authorize(bearer(old)).outcome == auth::Outcome::token_expired);
}

// --- projects -------------------------------------------------------------------------------------------------

TEST_CASE("an inactive project is project_inactive when enforced, and audited", "[auth]") {
  Env env;
  const db::Project project = env.add_project(/*active=*/false);
  db::Token row;
  const std::string token = env.add_token(project, 10, std::nullopt, &row);
  const auth::Authorization a = env.authorize(bearer(token));
  CHECK(a.outcome == auth::Outcome::project_inactive);
  CHECK(a.api_key.empty());
  CHECK(env.db.quota_calls == 0);  // checked before the quota: no request consumed
  CHECK(env.driver->get_token(row.id).request_count == 0);
  const auto events = env.denied_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].project_id == project.id);
  CHECK(events[0].reason == "project inactive");
}

TEST_CASE("an inactive project is served when ENFORCE_PROJECT_ACTIVE is off", "[auth]") {
  auth::Options o;
  o.enforce_project_active = false;
  Env env(o);
  const std::string token = env.add_token(env.add_project(/*active=*/false));
  const auth::Authorization a = env.authorize(bearer(token));
  CHECK(a.outcome == auth::Outcome::authorized);
  CHECK(a.api_key == kUpstreamKey);
}

TEST_CASE("invalidate_project applies a deactivation at once, the project cache has a TTL", "[auth]") {
  auth::Options o;
  o.project_cache_ttl = 5s;
  o.token_cache_ttl = 30s;
  Env env(o);
  const db::Project project = env.add_project();
  const std::string token = env.add_token(project);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);

  db::ProjectUpdate off;
  off.is_active = false;
  env.driver->update_project(project.id, off, env.clock);
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);  // cached
  env.svc().invalidate_project(project.id);
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::project_inactive);

  db::ProjectUpdate on;
  on.is_active = true;
  env.driver->update_project(project.id, on, env.clock);
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::project_inactive);  // cached for PROJECT_CACHE_TTL
  env.clock += 6s;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
}

TEST_CASE("a project key that cannot be decrypted is service_unavailable without leaking it", "[auth]") {
  Env env;
  db::Project p = env.add_project();
  db::ProjectUpdate bad;
  bad.api_key = util::Cipher(std::string(32, 'x')).encrypt(kUpstreamKey);  // another ENCRYPTION_KEY
  env.driver->update_project(p.id, bad, env.clock);
  const auth::Authorization a = env.authorize(bearer(env.add_token(p)));
  CHECK(a.outcome == auth::Outcome::service_unavailable);
  CHECK(a.api_key.empty());
  CHECK(a.message.find(kUpstreamKey) == std::string::npos);
}

// --- quotas ---------------------------------------------------------------------------------------------------

TEST_CASE("a quota of N admits exactly N requests, also when they race", "[auth]") {
  Env env;
  db::Token row;
  const std::string token = env.add_token(env.add_project(), 5, std::nullopt, &row);
  const auto header = bearer(token);

  // Twelve concurrent requests on two executor threads.
  std::vector<auth::Outcome> outcomes;
  for (int i = 0; i < 12; ++i) {
    net::co_spawn(
        env.io, [&]() -> net::awaitable<void> { outcomes.push_back((co_await env.svc().authorize(header)).outcome); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  env.io.run();
  REQUIRE(outcomes.size() == 12);
  CHECK(std::count(outcomes.begin(), outcomes.end(), auth::Outcome::authorized) == 5);
  CHECK(std::count(outcomes.begin(), outcomes.end(), auth::Outcome::rate_limit_exceeded) == 7);
  CHECK(env.driver->get_token(row.id).request_count == 5);

  CHECK(env.authorize(header).outcome == auth::Outcome::rate_limit_exceeded);
  CHECK(env.driver->get_token(row.id).request_count == 5);
  // Quota tokens are counted by the statement, never in memory.
  CHECK(env.svc().stats().pending_usage_requests == 0);
}

TEST_CASE("a quota token revoked elsewhere is refused by the next request, and audited", "[auth]") {
  auth::Options o;
  o.token_cache_ttl = 30s;
  Env env(o);
  db::Token row;
  const std::string token = env.add_token(env.add_project(), 100, std::nullopt, &row);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  REQUIRE(env.driver->revoke_token(row.id, env.clock));  // not through this instance: no invalidation
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.driver->get_token(row.id).request_count == 1);
  const auto events = env.denied_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].reason == "token revoked");
  // The inactive row the refusal read is remembered: a client retrying it reaches neither the lookup nor the
  // quota statement.
  const int trips = env.db.round_trips();
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.db.round_trips() == trips);
}

// --- usage accounting -----------------------------------------------------------------------------------------

TEST_CASE("usage of unlimited tokens is counted in memory and written by flush_blocking", "[auth]") {
  Env env;
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, std::nullopt, &row);
  constexpr int kRequests = 7;
  for (int i = 0; i < kRequests; ++i) {
    env.clock += 1s;
    REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  }
  auth::Stats st = env.svc().stats();
  CHECK(st.pending_usage_tokens == 1);
  CHECK(st.pending_usage_requests == kRequests);
  CHECK(env.driver->get_token(row.id).request_count == 0);
  CHECK(env.db.usage_writes == 0);

  REQUIRE(env.svc().flush_blocking());
  const db::Token after = env.driver->get_token(row.id);
  CHECK(after.request_count == kRequests);
  REQUIRE(after.last_used_at.has_value());
  CHECK(*after.last_used_at == env.clock);
  st = env.svc().stats();
  CHECK(st.pending_usage_tokens == 0);
  CHECK(st.pending_usage_requests == 0);
}

TEST_CASE("during a database outage: cached tokens work, others get 503, usage is kept and written later", "[auth]") {
  Env env;
  const db::Project project = env.add_project();
  db::Token row;
  const std::string cached = env.add_token(project, std::nullopt, std::nullopt, &row);
  const std::string uncached = env.add_token(project);
  const std::string quota = env.add_token(project, 10);
  REQUIRE(env.authorize(bearer(cached)).outcome == auth::Outcome::authorized);
  REQUIRE(env.authorize(bearer(quota)).outcome == auth::Outcome::authorized);

  env.db.down = true;
  CHECK(env.authorize(bearer(cached)).outcome == auth::Outcome::authorized);
  CHECK(env.authorize(bearer(cached)).outcome == auth::Outcome::authorized);
  const auth::Authorization a = env.authorize(bearer(uncached));
  CHECK(a.outcome == auth::Outcome::service_unavailable);
  CHECK(env.authorize(bearer(quota)).outcome == auth::Outcome::service_unavailable);
  // The outage is not remembered as "unknown token".
  CHECK(env.svc().stats().negative_hits == 0);

  CHECK_FALSE(env.svc().flush_blocking());
  CHECK_FALSE(env.svc().flush_blocking());
  auth::Stats st = env.svc().stats();
  CHECK(st.flush_failures == 2);
  CHECK(st.pending_usage_requests == 3);  // kept, not dropped
  env.clock += 1s;
  REQUIRE(env.authorize(bearer(cached)).outcome == auth::Outcome::authorized);  // counted on top

  env.db.down = false;
  CHECK(env.authorize(bearer(uncached)).outcome == auth::Outcome::authorized);
  REQUIRE(env.svc().flush_blocking());
  const db::Token after = env.driver->get_token(row.id);
  CHECK(after.request_count == 4);
  CHECK(after.last_used_at == env.clock);
  CHECK(env.svc().stats().pending_usage_requests == 0);
}

TEST_CASE("the periodic flush writes usage on the io_context, stop_and_flush writes the rest", "[auth]") {
  auth::Options o;
  o.usage_flush_interval = 10ms;
  Env env(o);
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, std::nullopt, &row);
  for (int i = 0; i < 3; ++i) REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);

  env.svc().start(env.io);
  // The timer is real time: poll the io_context until the flush landed (bounded).
  env.io.restart();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (env.driver->get_token(row.id).request_count < 3 && std::chrono::steady_clock::now() < deadline) {
    env.io.run_for(20ms);
  }
  CHECK(env.driver->get_token(row.id).request_count == 3);

  // Usage counted after the last tick is written by stop_and_flush; the flush loop then ends.
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  // The io_context is not running here, as at shutdown.
  CHECK(env.svc().stop_and_flush());
  CHECK(env.driver->get_token(row.id).request_count == 4);
  env.io.restart();
  env.io.run_for(5s);  // returns as soon as the cancelled loop has finished: nothing else is pending
  CHECK(env.io.stopped());
}

TEST_CASE("stop_and_flush reports failure while the database stays down and keeps the counts", "[auth]") {
  Env env;
  const std::string token = env.add_token(env.add_project());
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  env.db.down = true;
  CHECK_FALSE(env.svc().stop_and_flush());
  CHECK(env.svc().stats().pending_usage_requests == 1);
  env.db.down = false;
}

// --- detail ---------------------------------------------------------------------------------------------------

TEST_CASE("usage accumulator: take, merge back and concurrent adds lose nothing", "[auth][detail]") {
  auth::detail::UsageAccumulator acc(4);
  const util::TimePoint t0 = util::now();
  acc.add("a", 1, 0, t0);
  acc.add("a", 2, 1, t0 + 5s);
  acc.add("b", 1, 0, t0 + 1s);
  CHECK(acc.pending_tokens() == 2);
  CHECK(acc.pending_requests() == 4);

  std::vector<db::UsageDelta> taken = acc.take().tokens;
  REQUIRE(taken.size() == 2);
  CHECK(acc.pending_tokens() == 0);
  std::sort(taken.begin(), taken.end(), [](const auto& x, const auto& y) { return x.token_id < y.token_id; });
  CHECK(taken[0].requests == 3);
  CHECK(taken[0].cache_hits == 1);
  CHECK(taken[0].last_used_at == t0 + 5s);

  // Counted while the write was failing, then the failed batch comes back: sums, and the later time wins.
  acc.add("a", 1, 0, t0 + 2s);
  acc.merge_back(db::UsageBatch{taken, {}});
  std::vector<db::UsageDelta> again = acc.take().tokens;
  std::sort(again.begin(), again.end(), [](const auto& x, const auto& y) { return x.token_id < y.token_id; });
  REQUIRE(again.size() == 2);
  CHECK(again[0].requests == 4);
  CHECK(again[0].last_used_at == t0 + 5s);
  CHECK(again[1].requests == 1);

  // Threads adding while another takes: the total is exact.
  std::atomic<bool> done{false};
  std::int64_t taken_total = 0;
  std::thread taker([&] {
    while (!done) {
      for (const auto& d : acc.take().tokens) taken_total += d.requests;
    }
  });
  std::vector<std::thread> adders;
  for (int t = 0; t < 4; ++t) {
    adders.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) acc.add("tok" + std::to_string((i + t) % 7), 1, 0, t0);
    });
  }
  for (auto& th : adders) th.join();
  done = true;
  taker.join();
  for (const auto& d : acc.take().tokens) taken_total += d.requests;
  CHECK(taken_total == 8000);
}

TEST_CASE("usage accumulator: LLM tokens and daily rows are summed per key and come back whole after a failure",
          "[auth][detail]") {
  auth::detail::UsageAccumulator acc(4);
  acc.add_request({"tok-a", "proj", "gpt-4o", "2026-12-03", 5, 3, false});
  acc.add_request({"tok-a", "proj", "gpt-4o", "2026-12-03", 7, 4, false});
  acc.add_request({"tok-a", "proj", "gpt-4o", "2026-12-03", 0, 0, true});   // a cache hit: no LLM tokens
  acc.add_request({"tok-a", "proj", "", "2026-12-03", 0, 0, false});        // a stream without usage
  acc.add_request({"tok-b", "proj", "gpt-4o", "2026-12-04", 1, 1, false});  // another token, another day
  CHECK(acc.pending_tokens() == 2);
  CHECK(acc.pending_daily_rows() == 3);

  const auto sorted = [](db::UsageBatch b) {
    std::sort(b.tokens.begin(), b.tokens.end(), [](const auto& x, const auto& y) { return x.token_id < y.token_id; });
    std::sort(b.daily.begin(), b.daily.end(), [](const auto& x, const auto& y) {
      return std::tie(x.day, x.token_id, x.model) < std::tie(y.day, y.token_id, y.model);
    });
    return b;
  };
  db::UsageBatch batch = sorted(acc.take());
  REQUIRE(batch.tokens.size() == 2);
  CHECK(batch.tokens[0].token_id == "tok-a");
  CHECK(batch.tokens[0].prompt_tokens == 12);
  CHECK(batch.tokens[0].completion_tokens == 7);
  CHECK(batch.tokens[0].requests == 0);  // requests are counted by authorize, not here
  REQUIRE(batch.daily.size() == 3);
  CHECK(batch.daily[0].model == "");
  CHECK(batch.daily[0].requests == 1);
  CHECK(batch.daily[1].model == "gpt-4o");
  CHECK(batch.daily[1].project_id == "proj");
  CHECK(batch.daily[1].requests == 2);
  CHECK(batch.daily[1].cache_hits == 1);
  CHECK(batch.daily[1].prompt_tokens == 12);
  CHECK(batch.daily[2].day == "2026-12-04");
  CHECK(acc.take().empty());
  CHECK(acc.pending_daily_rows() == 0);
  // A request without LLM tokens leaves a daily row alone, no token delta.
  acc.add_request({"tok-c", "proj", "", "2026-12-04", 0, 0, false});
  CHECK(acc.pending_tokens() == 0);
  CHECK(acc.pending_daily_rows() == 1);
  CHECK(acc.take().daily.size() == 1);

  // A failed write comes back and is summed with what was counted meanwhile.
  acc.add_request({"tok-a", "proj", "gpt-4o", "2026-12-03", 1, 1, false});
  acc.merge_back(batch);
  db::UsageBatch again = sorted(acc.take());
  REQUIRE(again.daily.size() == 3);
  CHECK(again.daily[1].requests == 3);
  CHECK(again.daily[1].prompt_tokens == 13);
  CHECK(again.tokens[0].completion_tokens == 8);
}

TEST_CASE("IdHash: digests and ids spread over buckets, every part of a key counts, short keys use std::hash",
          "[auth][detail]") {
  const auth::detail::IdHash hash;
  CHECK(hash("tok-a") == std::hash<std::string_view>{}("tok-a"));
  // 4,096 token digests into 1,021 buckets (a prime, as std::unordered_map uses): about 4 per bucket.
  std::vector<int> buckets(1021);
  for (int i = 0; i < 4096; ++i) ++buckets[hash(util::sha256_hex("token-" + std::to_string(i))) % buckets.size()];
  CHECK(*std::max_element(buckets.begin(), buckets.end()) <= 16);
  // Ids that differ only at the start, in the middle or at the end hash apart, and the length counts.
  const std::string id = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
  std::string at_start = id, in_middle = id, at_end = id;
  at_start[0] = '7';
  in_middle[id.size() / 2] = '0';
  at_end.back() = 'e';
  CHECK(hash(at_start) != hash(id));
  CHECK(hash(in_middle) != hash(id));
  CHECK(hash(at_end) != hash(id));
  CHECK(hash(id + id) != hash(id + id + "-"));
  CHECK(hash(std::string_view(id)) == hash(id));
}

TEST_CASE("sharded LRU cache: TTL, LRU eviction, erase_if, admission", "[auth][detail]") {
  auth::detail::ShardedLruCache<int> cache(2, std::chrono::seconds(10), /*shards=*/1);
  const util::TimePoint t0 = util::now();
  int seen = 0;
  cache.put("a", 1, t0);
  cache.put("b", 2, t0);
  CHECK(cache.visit("a", t0, [&](int v) { seen = v; }));  // a becomes most recently used
  CHECK(seen == 1);
  cache.put("c", 3, t0);  // evicts b
  CHECK_FALSE(cache.visit("b", t0, [](int) {}));
  CHECK(cache.visit("c", t0, [](int) {}));
  CHECK(cache.size() == 2);

  CHECK_FALSE(cache.visit("a", t0 + 10s, [](int) {}));  // stale at exactly ttl
  CHECK(cache.size() == 1);
  CHECK_FALSE(cache.visit("c", t0 - 1s, [](int) {}));  // clock went backwards: not trusted

  cache.put("x", 7, t0);
  cache.put("y", 8, t0);
  CHECK(cache.erase_if([](std::string_view, int v) { return v == 7; }) == 1);
  CHECK_FALSE(cache.put_if("z", 9, t0, [] { return false; }));
  CHECK_FALSE(cache.visit("z", t0, [](int) {}));
  CHECK(cache.hits() == 2);

  auth::detail::ShardedLruCache<int> disabled(10, std::chrono::seconds(0));
  CHECK_FALSE(disabled.put("a", 1, t0));
}
