// Floods (SPEC §5.5): a revoked, expired or unknown token repeated many times costs no database query per
// request, and concurrent first lookups of one uncached token share one query (single-flight).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/util/token.hpp"
#include "unit/auth_service_fixture.hpp"
#include "unit/io_poll.hpp"

namespace net = boost::asio;
namespace auth = llmproxy::auth;
namespace db = llmproxy::db;
namespace util = llmproxy::util;
using llmproxy::testing::AuthEnv;
using llmproxy::testing::bearer;
using llmproxy::testing::poll_until;
using namespace std::chrono_literals;

TEST_CASE("a revoked token repeated 200 times costs one lookup even with TOKEN_CACHE_TTL=0", "[auth][floods]") {
  auth::Options o;
  o.token_cache_ttl = 0s;  // no positive caching: only the denial is remembered
  o.negative_cache_ttl = 5s;
  AuthEnv env(o);
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, std::nullopt, &row);
  REQUIRE(env.driver->revoke_token(row.id, env.clock));

  for (int i = 0; i < 200; ++i) REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.db.token_lookups == 1);
  CHECK(env.db.round_trips() == 1);
  CHECK(env.svc().stats().cache_misses == 1);

  // Remembered for NEGATIVE_CACHE_TTL, then asked again.
  env.clock += 6s;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  CHECK(env.db.token_lookups == 2);

  // Reactivated through this instance's management API: works at once.
  db::TokenUpdate on;
  on.is_active = true;
  env.driver->update_token(row.id, on, env.clock);
  env.svc().invalidate_token(row.id);
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
}

TEST_CASE("an expired token is final: no lookup after TOKEN_CACHE_TTL either", "[auth][floods]") {
  auth::Options o;
  o.token_cache_ttl = 30s;
  AuthEnv env(o);
  const db::Project project = env.add_project();
  const std::string expired = env.add_token(project, std::nullopt, env.clock - 1s);
  const std::string expired_quota = env.add_token(project, 10, env.clock - 1s);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(env.authorize(bearer(expired)).outcome == auth::Outcome::token_expired);
    REQUIRE(env.authorize(bearer(expired_quota)).outcome == auth::Outcome::token_expired);
    env.clock += 1min;  // well past TOKEN_CACHE_TTL each time
  }
  CHECK(env.db.token_lookups == 2);
  CHECK(env.db.round_trips() == 2);  // no project lookup, no quota statement
}

TEST_CASE("an unknown token repeated 200 times costs one lookup per NEGATIVE_CACHE_TTL", "[auth][floods]") {
  auth::Options o;
  o.token_cache_ttl = 0s;
  o.negative_cache_ttl = 5s;
  AuthEnv env(o);
  const std::string unknown = util::generate_token();
  for (int i = 0; i < 200; ++i) REQUIRE(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);
  CHECK(env.db.token_lookups == 1);
  CHECK(env.svc().stats().negative_hits == 199);
}

TEST_CASE("concurrent first lookups of one token share one database query", "[auth][floods]") {
  AuthEnv env;
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, std::nullopt, &row);
  const std::string header = bearer(token);
  env.svc();
  env.db.hold_token_lookups();

  constexpr int kRequests = 20;
  std::vector<auth::Authorization> results;
  for (int i = 0; i < kRequests; ++i) {
    net::co_spawn(
        env.io, [&]() -> net::awaitable<void> { results.push_back(co_await env.svc().authorize(header)); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  // Every request has reached the database or is waiting: one query is in flight, the others wait for it.
  REQUIRE(poll_until(env.io, [&] { return env.db.token_lookups_held() >= 1 && results.empty(); }));
  REQUIRE(poll_until(env.io, [&] { return env.svc().stats().shared_lookups == kRequests - 1; }));
  CHECK(env.db.token_lookups == 1);

  env.db.release_token_lookups();
  REQUIRE(poll_until(env.io, [&] { return results.size() == kRequests; }));
  for (const auto& a : results) {
    CHECK(a.outcome == auth::Outcome::authorized);
    CHECK(a.token_id == row.id);
  }
  CHECK(env.db.token_lookups == 1);
  const auth::Stats st = env.svc().stats();
  CHECK(st.cache_misses == 1);
  CHECK(st.shared_lookups == kRequests - 1);
  // The leader cached the row: later requests are hits.
  CHECK(env.authorize(header).outcome == auth::Outcome::authorized);
  CHECK(env.db.token_lookups == 1);
}

TEST_CASE("single-flight on several I/O threads: one query, every waiter resumes on its own strand",
          "[auth][floods]") {
  AuthEnv env;
  const std::string unknown = util::generate_token();  // an unknown token: the flood case
  const std::string header = bearer(unknown);
  env.svc();
  env.db.hold_token_lookups();

  constexpr int kRequests = 64;
  std::mutex results_mutex;
  std::vector<auth::Outcome> outcomes;
  std::atomic<int> wrong_strand{0};
  for (int i = 0; i < kRequests; ++i) {
    auto strand = net::make_strand(env.io);
    net::co_spawn(
        strand,
        [&, strand]() -> net::awaitable<void> {
          const auth::Authorization a = co_await env.svc().authorize(header);
          if (!strand.running_in_this_thread()) ++wrong_strand;
          std::lock_guard lock(results_mutex);
          outcomes.push_back(a.outcome);
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  env.io.restart();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { env.io.run(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (env.svc().stats().shared_lookups < kRequests - 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  CHECK(env.svc().stats().shared_lookups == kRequests - 1);
  env.db.release_token_lookups();
  for (auto& t : threads) t.join();  // run() returns once every request finished

  REQUIRE(outcomes.size() == kRequests);
  CHECK(std::count(outcomes.begin(), outcomes.end(), auth::Outcome::token_not_found) == kRequests);
  CHECK(wrong_strand == 0);
  CHECK(env.db.token_lookups == 1);
}

TEST_CASE("waiters of a failed lookup get 503 and the next request asks again", "[auth][floods]") {
  AuthEnv env;
  const std::string token = env.add_token(env.add_project());
  const std::string header = bearer(token);
  env.svc();
  env.db.down = true;
  std::vector<auth::Outcome> outcomes;
  for (int i = 0; i < 5; ++i) {
    net::co_spawn(
        env.io, [&]() -> net::awaitable<void> { outcomes.push_back((co_await env.svc().authorize(header)).outcome); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  REQUIRE(poll_until(env.io, [&] { return outcomes.size() == 5; }));
  CHECK(std::count(outcomes.begin(), outcomes.end(), auth::Outcome::service_unavailable) == 5);
  CHECK(env.svc().stats().negative_hits == 0);  // an outage is not remembered as "unknown"
  env.db.down = false;
  CHECK(env.authorize(header).outcome == auth::Outcome::authorized);
}
