// The sliding-window arithmetic (ratelimit/window.hpp) and the memory limiter with an injected clock: the
// refusal after the limit with its Retry-After, the decay across a minute boundary, all-or-nothing over two
// rules, the sweep of idle keys, and exactness under two threads.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/ratelimit/window.hpp"

namespace llmproxy::ratelimit {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

constexpr std::int64_t kMinute = kWindowMs;
constexpr std::int64_t kBase = 29'000'000 * kMinute;  // an aligned minute (Unix ms) in 2025

/// A clock the test moves by hand.
struct WindowClock {
  std::atomic<std::int64_t> now{kBase};
  std::function<std::int64_t()> fn() {
    return [this] { return now.load(); };
  }
};

/// Runs one acquire to completion on a private io_context (the memory limiter never suspends).
Decision acquire(Limiter& limiter, std::vector<Rule> rules) {
  net::io_context io;
  std::optional<Decision> out;
  std::exception_ptr error;
  net::co_spawn(io, limiter.acquire(std::move(rules)), [&](std::exception_ptr e, Decision d) {
    error = e;
    out = d;
  });
  io.run();
  if (error) std::rethrow_exception(error);
  REQUIRE(out.has_value());
  return *out;
}

Decision acquire_one(Limiter& limiter, const std::string& key, std::int64_t limit) {
  return acquire(limiter, {Rule{key, limit}});
}

TEST_CASE("rate limit window formula: estimate, allows and Retry-After", "[ratelimit]") {
  // No requests: allowed at once.
  CHECK(allows({0, 0, 0}, 1));
  CHECK(wait_ms({0, 0, 0}, 1) == 0);
  // A limit below 1 never allows.
  CHECK_FALSE(allows({0, 0, 0}, 0));
  CHECK(retry_after({0, 0, 0}, 0) == 60s);
  // cur at the limit: the wait reaches into the next bucket, where cur decays as prev.
  // limit 5, cur 5 at 15 s: next bucket needs 5 * (60 - e') / 60 + 1 <= 5, e' >= 12 s: 45 s + 12 s.
  CHECK_FALSE(allows({5, 0, 15'000}, 5));
  CHECK(wait_ms({5, 0, 15'000}, 5) == 57'000);
  CHECK(retry_after({5, 0, 15'000}, 5) == 57s);
  // Limit 1: the bucket after next (both counts 0 there).
  CHECK(wait_ms({1, 0, 10'000}, 1) == 50'000 + 60'000);
  // Within the bucket: prev 10 decays; at 30 s the estimate is 5 + cur; cur 5 -> 10 * (60 - e) / 60 <= 4 -> e >= 36 s.
  CHECK(allows({4, 10, 30'000}, 10));
  CHECK_FALSE(allows({5, 10, 30'000}, 10));
  CHECK(wait_ms({5, 10, 30'000}, 10) == 6'000);
  // Exactly on the edge (integer arithmetic, no rounding): prev 10 at 36 s weighs 4.
  CHECK(allows({5, 10, 36'000}, 10));
  CHECK_FALSE(allows({5, 10, 35'999}, 10));
  // A few ms of wait still gives a Retry-After of 1 s; 1001 ms gives 2 s.
  CHECK(wait_ms({5, 10, 35'999}, 10) == 1);
  CHECK(retry_after({5, 10, 35'999}, 10) == 1s);
  CHECK(retry_after({5, 10, 34'999}, 10) == 2s);
  // Refused in this bucket even at its end (cur + 1 > limit with prev > 0): the boundary, then decay of cur.
  CHECK(wait_ms({3, 3, 59'000}, 3) == 1'000 + 20'000);
  // Bucket and offset of an instant.
  CHECK(bucket_of(kBase + 59'999) == kBase / kMinute);
  CHECK(elapsed_in_bucket(kBase + 59'999) == 59'999);
  CHECK(bucket_of(-1) == -1);
  CHECK(elapsed_in_bucket(-1) == 59'999);
}

TEST_CASE("memory limiter refuses the 6th of 5 per minute with the right Retry-After, then allows it then", "[ratelimit]") {
  WindowClock clock;
  clock.now = kBase + 15'000;
  auto limiter = make_memory_limiter(clock.fn());
  for (int i = 0; i < 5; ++i) REQUIRE(acquire_one(*limiter, "t:1", 5).allowed);
  Decision d = acquire_one(*limiter, "t:1", 5);
  CHECK_FALSE(d.allowed);
  CHECK_FALSE(d.unavailable);
  CHECK(d.refused_rule == 0);
  CHECK(d.retry_after == 57s);
  // Another key has its own window.
  CHECK(acquire_one(*limiter, "t:2", 5).allowed);
  // Refused until exactly Retry-After has passed, counting nothing meanwhile.
  clock.now = kBase + 15'000 + 57'000 - 1;
  d = acquire_one(*limiter, "t:1", 5);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 1s);
  clock.now = kBase + 15'000 + 57'000;
  CHECK(acquire_one(*limiter, "t:1", 5).allowed);
  CHECK_FALSE(acquire_one(*limiter, "t:1", 5).allowed);
  const auto stats = limiter->stats();
  CHECK(stats.allowed == 7);
  CHECK(stats.refused == 3);
  CHECK(stats.unavailable == 0);
}

TEST_CASE("memory limiter decays the previous minute across the boundary", "[ratelimit]") {
  WindowClock clock;
  clock.now = kBase + 50'000;
  auto limiter = make_memory_limiter(clock.fn());
  for (int i = 0; i < 10; ++i) REQUIRE(acquire_one(*limiter, "p:7", 10).allowed);
  CHECK_FALSE(acquire_one(*limiter, "p:7", 10).allowed);
  // Half-way into the next minute the ten weigh five: five more fit, the sixth waits 6 s.
  clock.now = kBase + kMinute + 30'000;
  for (int i = 0; i < 5; ++i) REQUIRE(acquire_one(*limiter, "p:7", 10).allowed);
  Decision d = acquire_one(*limiter, "p:7", 10);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 6s);
  clock.now = kBase + kMinute + 36'000;
  CHECK(acquire_one(*limiter, "p:7", 10).allowed);
  // Two minutes later nothing is left of either: the full limit again.
  clock.now = kBase + 3 * kMinute;
  for (int i = 0; i < 10; ++i) REQUIRE(acquire_one(*limiter, "p:7", 10).allowed);
  CHECK_FALSE(acquire_one(*limiter, "p:7", 10).allowed);
}

TEST_CASE("memory limiter is all or nothing over two rules", "[ratelimit]") {
  WindowClock clock;
  auto limiter = make_memory_limiter(clock.fn());
  const Rule token{"t:1", 10};
  const Rule project{"p:1", 2};
  CHECK(acquire(*limiter, {token, project}).allowed);
  CHECK(acquire(*limiter, {token, project}).allowed);
  // Refused by the second rule: counted on neither.
  for (int i = 0; i < 5; ++i) {
    Decision d = acquire(*limiter, {token, project});
    CHECK_FALSE(d.allowed);
    CHECK(d.refused_rule == 1);
    // The project's 2 move to the previous bucket and weigh 2 * (60 - e') / 60 <= 1 from e' = 30 s: 60 s + 30 s.
    CHECK(d.retry_after == 90s);
  }
  // The token has used 2 of its 10, not 7.
  for (int i = 0; i < 8; ++i) REQUIRE(acquire(*limiter, {token}).allowed);
  Decision d = acquire(*limiter, {token, project});
  CHECK_FALSE(d.allowed);
  CHECK(d.refused_rule == 0);  // the first rule that refused
  // Both refuse: Retry-After is the longer wait (the token's 10 weigh 9 from 6 s into the next minute: 66 s; the
  // project's 90 s).
  CHECK(d.retry_after == 90s);
  CHECK(acquire(*limiter, {token}).retry_after == 66s);
  CHECK_FALSE(acquire(*limiter, {token}).allowed);
  // Refused by the first: nothing counted on the second (another token of the same project).
  clock.now = kBase + 2 * kMinute;
  CHECK(acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
  CHECK(acquire(*limiter, {Rule{"t:3", 0}, project}).refused_rule == 0);
  CHECK(acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
  CHECK_FALSE(acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
  // No rules: allowed.
  CHECK(acquire(*limiter, {}).allowed);
}

TEST_CASE("memory limiter drops the keys idle for two minutes", "[ratelimit]") {
  WindowClock clock;
  clock.now = kBase + 1'000;
  auto limiter = make_memory_limiter(clock.fn());
  for (const char* k : {"t:a", "t:b", "t:c"}) REQUIRE(acquire_one(*limiter, k, 5).allowed);
  CHECK(limiter->stats().keys == 3);
  // Next minute: still counted as the previous bucket, kept.
  clock.now = kBase + kMinute + 1'000;
  REQUIRE(acquire_one(*limiter, "t:d", 5).allowed);
  CHECK(limiter->stats().keys == 4);
  // Two minutes on: a, b, c count nothing any more and are gone after the first call of the minute; d stays.
  clock.now = kBase + 2 * kMinute + 1'000;
  REQUIRE(acquire_one(*limiter, "t:e", 5).allowed);
  CHECK(limiter->stats().keys == 2);
  // A dropped key starts afresh.
  for (int i = 0; i < 5; ++i) REQUIRE(acquire_one(*limiter, "t:a", 5).allowed);
  CHECK_FALSE(acquire_one(*limiter, "t:a", 5).allowed);
}

TEST_CASE("memory limiter allows exactly the limit to two threads racing", "[ratelimit]") {
  WindowClock clock;
  auto limiter = make_memory_limiter(clock.fn());
  constexpr std::int64_t kLimit = 50;
  constexpr int kAttempts = 400;  // per thread
  std::atomic<int> allowed{0}, allowed_token_only{0};
  // The two threads name the same two keys in opposite orders (the shards are locked in one order).
  auto run = [&](bool reversed) {
    net::io_context io;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          for (int i = 0; i < kAttempts; ++i) {
            std::vector<Rule> rules{Rule{"t:race", 1000}, Rule{"p:race", kLimit}};
            if (reversed) std::swap(rules[0], rules[1]);
            Decision d = co_await limiter->acquire(std::move(rules));
            if (d.allowed) allowed.fetch_add(1);
            std::vector<Rule> one{Rule{"t:solo", kLimit}};
            Decision s = co_await limiter->acquire(std::move(one));
            if (s.allowed) allowed_token_only.fetch_add(1);
          }
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
  };
  std::thread a(run, false), b(run, true);
  a.join();
  b.join();
  CHECK(allowed.load() == kLimit);
  CHECK(allowed_token_only.load() == kLimit);
  // The token rule was counted only with the allowed ones: 1000 - 50 left.
  for (int i = 0; i < 1000 - kLimit; ++i) REQUIRE(acquire_one(*limiter, "t:race", 1000).allowed);
  CHECK_FALSE(acquire_one(*limiter, "t:race", 1000).allowed);
  const auto stats = limiter->stats();
  CHECK(stats.allowed == static_cast<std::uint64_t>(2 * kLimit + (1000 - kLimit)));
  CHECK(stats.refused == static_cast<std::uint64_t>(4 * kAttempts - 2 * kLimit + 1));
}

}  // namespace
}  // namespace llmproxy::ratelimit
