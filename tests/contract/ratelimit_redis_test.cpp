// The Redis rate limiter against real redis-server processes: the shared throwaway server of scripts/with-redis.sh
// (REDIS_TEST_URL) for the window, sharing and concurrency cases, a server of the case's own (test::RedisServer)
// for the outage case. Every case is tagged [redis] and fails, never skips, without REDIS_TEST_URL. The clock is
// injected; raw hiredis (synchronous) is for assertions only.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/ratelimit/window.hpp"
#include "llmproxy/redis/options.hpp"
#include "support/io_threads.hpp"
#include "support/redis_server.hpp"

namespace llmproxy::contract {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ratelimit::Decision;
using ratelimit::FailMode;
using ratelimit::Rule;

constexpr std::int64_t kMinute = ratelimit::kWindowMs;
constexpr std::int64_t kBase = 29'000'000 * kMinute;  // an aligned minute (Unix ms)

/// REDIS_TEST_URL = redis://host:port/db (scripts/with-redis.sh). Fails the case when unset.
redis::ConnectionOptions limiter_test_redis() {
  const char* url = std::getenv("REDIS_TEST_URL");
  INFO("REDIS_TEST_URL is not set: run the [redis] cases through scripts/with-redis.sh");
  REQUIRE(url != nullptr);
  std::string s = url;
  REQUIRE(s.rfind("redis://", 0) == 0);
  s = s.substr(8);
  redis::ConnectionOptions o;
  if (const auto slash = s.find('/'); slash != std::string::npos) {
    o.db = std::stoi(s.substr(slash + 1));
    s = s.substr(0, slash);
  }
  const auto colon = s.rfind(':');
  REQUIRE(colon != std::string::npos);
  o.host = s.substr(0, colon);
  o.port = static_cast<std::uint16_t>(std::stoi(s.substr(colon + 1)));
  o.timeout = 1000ms;
  return o;
}

/// A prefix of the case's own on the shared server.
std::string unique_limiter_prefix(const std::string& name) {
  static std::atomic<int> n{0};
  return "llmproxy:test:rl:" + name + ":" + std::to_string(::getpid()) + ":" + std::to_string(n++) + ":";
}

/// A clock the test moves by hand, shared by the limiters of a case (as NTP-synchronised instances).
struct FakeClock {
  std::atomic<std::int64_t> now{kBase};
  std::function<std::int64_t()> fn() {
    return [this] { return now.load(); };
  }
};

/// The proxy-like I/O threads the limiters run on (declared before them: destroyed after them), with
/// shorthands for acquiring.
class LimiterIo : public test::IoThreads {
 public:
  using test::IoThreads::IoThreads;
  std::future<Decision> start(ratelimit::Limiter& limiter, std::vector<Rule> rules) {
    return test::IoThreads::start(limiter.acquire(std::move(rules)));
  }
  Decision acquire(ratelimit::Limiter& limiter, std::vector<Rule> rules) {
    auto f = start(limiter, std::move(rules));
    if (f.wait_for(5s) != std::future_status::ready) FAIL("acquire did not complete within 5 s");
    return f.get();
  }
  Decision acquire_one(ratelimit::Limiter& limiter, const std::string& key, std::int64_t limit) {
    return acquire(limiter, {Rule{key, limit}});
  }
};

/// Raw, synchronous access to the server for assertions.
class RawRedis {
 public:
  explicit RawRedis(const redis::ConnectionOptions& o) {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout(o.host.c_str(), o.port, tv);
    REQUIRE(ctx_ != nullptr);
    REQUIRE(ctx_->err == 0);
    integer_or_status({"SELECT", std::to_string(o.db)});
  }
  ~RawRedis() { redisFree(ctx_); }
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;

  /// GET as a number; nullopt when the key does not exist.
  std::optional<long long> get(const std::string& key) {
    redisReply* r = command({"GET", key});
    std::optional<long long> out;
    if (r->type == REDIS_REPLY_STRING) out = std::stoll(std::string(r->str, r->len));
    freeReplyObject(r);
    return out;
  }
  long long integer_or_status(const std::vector<std::string>& args) {
    redisReply* r = command(args);
    const long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return v;
  }

 private:
  redisReply* command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    REQUIRE(r != nullptr);
    return r;
  }
  redisContext* ctx_ = nullptr;
};

std::string bucket_key(const std::string& prefix, const std::string& key, std::int64_t now_ms) {
  return prefix + key + ":" + std::to_string(ratelimit::bucket_of(now_ms));
}

TEST_CASE("Redis rate limiter applies the sliding window with the same Retry-After as the memory one", "[redis]") {
  const auto options = limiter_test_redis();
  LimiterIo io;
  FakeClock clock;
  clock.now = kBase + 15'000;
  const std::string prefix = unique_limiter_prefix("window");
  auto limiter = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  RawRedis raw(options);

  for (int i = 0; i < 5; ++i) REQUIRE(io.acquire_one(*limiter, "t:1", 5).allowed);
  Decision d = io.acquire_one(*limiter, "t:1", 5);
  CHECK_FALSE(d.allowed);
  CHECK_FALSE(d.unavailable);
  CHECK(d.refused_rule == 0);
  CHECK(d.retry_after == 57s);
  // One key per rule and minute, counting only what was allowed, expiring after two minutes.
  const std::string key = bucket_key(prefix, "t:1", clock.now);
  CHECK(raw.get(key) == 5);
  const long long pttl = raw.integer_or_status({"PTTL", key});
  CHECK(pttl > 110'000);
  CHECK(pttl <= 120'000);

  clock.now = kBase + 15'000 + 57'000 - 1;
  d = io.acquire_one(*limiter, "t:1", 5);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 1s);
  clock.now = kBase + 15'000 + 57'000;  // 12 s into the next minute: the five weigh four
  CHECK(io.acquire_one(*limiter, "t:1", 5).allowed);
  CHECK_FALSE(io.acquire_one(*limiter, "t:1", 5).allowed);
  CHECK(raw.get(bucket_key(prefix, "t:1", clock.now)) == 1);

  // Decay within a minute: ten in the previous one, half-way through the next five fit, the sixth waits 6 s.
  clock.now = kBase + 10 * kMinute + 50'000;
  for (int i = 0; i < 10; ++i) REQUIRE(io.acquire_one(*limiter, "p:7", 10).allowed);
  clock.now = kBase + 11 * kMinute + 30'000;
  for (int i = 0; i < 5; ++i) REQUIRE(io.acquire_one(*limiter, "p:7", 10).allowed);
  d = io.acquire_one(*limiter, "p:7", 10);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 6s);
  clock.now = kBase + 11 * kMinute + 36'000;
  CHECK(io.acquire_one(*limiter, "p:7", 10).allowed);

  const auto stats = limiter->stats();
  CHECK(stats.allowed == 5 + 1 + 10 + 5 + 1);
  CHECK(stats.refused == 4);
  CHECK(stats.unavailable == 0);
}

TEST_CASE("Redis rate limiter is all or nothing over two rules", "[redis]") {
  const auto options = limiter_test_redis();
  LimiterIo io;
  FakeClock clock;
  const std::string prefix = unique_limiter_prefix("both");
  auto limiter = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  RawRedis raw(options);
  const Rule token{"t:1", 10};
  const Rule project{"p:1", 2};
  CHECK(io.acquire(*limiter, {token, project}).allowed);
  CHECK(io.acquire(*limiter, {token, project}).allowed);
  for (int i = 0; i < 3; ++i) {
    Decision d = io.acquire(*limiter, {token, project});
    CHECK_FALSE(d.allowed);
    CHECK(d.refused_rule == 1);
    CHECK(d.retry_after == 90s);
  }
  // Refused by the project: nothing counted on the token.
  CHECK(raw.get(bucket_key(prefix, "t:1", clock.now)) == 2);
  CHECK(raw.get(bucket_key(prefix, "p:1", clock.now)) == 2);
  // Refused by the token (limit 0): nothing counted on the project of another token.
  clock.now = kBase + 2 * kMinute;
  Decision d = io.acquire(*limiter, {Rule{"t:0", 0}, project});
  CHECK_FALSE(d.allowed);
  CHECK(d.refused_rule == 0);
  CHECK_FALSE(raw.get(bucket_key(prefix, "p:1", clock.now)).has_value());
  CHECK(io.acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
  CHECK(io.acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
  CHECK_FALSE(io.acquire(*limiter, {Rule{"t:2", 10}, project}).allowed);
}

TEST_CASE("Two Redis rate limiters sharing one server share the count exactly", "[redis]") {
  const auto options = limiter_test_redis();
  LimiterIo io;
  FakeClock clock;
  clock.now = kBase + 5'000;
  const std::string prefix = unique_limiter_prefix("shared");
  auto a = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  auto b = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  for (int i = 0; i < 3; ++i) REQUIRE(io.acquire_one(*a, "t:42", 5).allowed);
  for (int i = 0; i < 2; ++i) REQUIRE(io.acquire_one(*b, "t:42", 5).allowed);
  Decision on_a = io.acquire_one(*a, "t:42", 5);
  Decision on_b = io.acquire_one(*b, "t:42", 5);
  CHECK_FALSE(on_a.allowed);
  CHECK_FALSE(on_b.allowed);
  CHECK(on_a.retry_after == on_b.retry_after);
  CHECK(on_a.retry_after == 67s);  // 55 s to the boundary, then five weigh four from 12 s
  CHECK(a->stats().allowed == 3);
  CHECK(b->stats().allowed == 2);
  // Another prefix (another deployment on the same server) counts apart.
  auto other = ratelimit::make_redis_limiter(io.io, options, unique_limiter_prefix("shared-other"), FailMode::closed,
                                             clock.fn());
  CHECK(io.acquire_one(*other, "t:42", 5).allowed);
}

TEST_CASE("Redis rate limiter allows exactly the limit to many acquires in flight on two instances", "[redis]") {
  const auto options = limiter_test_redis();
  LimiterIo io(2);
  FakeClock clock;
  const std::string prefix = unique_limiter_prefix("concurrent");
  auto a = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  auto b = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  constexpr std::int64_t kLimit = 37;
  constexpr int kAttempts = 300;
  std::vector<std::future<Decision>> inflight;
  for (int i = 0; i < kAttempts; ++i) {
    std::vector<Rule> rules{Rule{"t:hot", 1000}, Rule{"p:hot", kLimit}};
    inflight.push_back(io.start(i % 2 == 0 ? *a : *b, std::move(rules)));
  }
  int allowed = 0;
  for (auto& f : inflight) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    Decision d = f.get();
    CHECK_FALSE(d.unavailable);
    if (d.allowed) {
      ++allowed;
    } else {
      CHECK(d.refused_rule == 1);
    }
  }
  CHECK(allowed == kLimit);
  RawRedis raw(options);
  CHECK(raw.get(bucket_key(prefix, "t:hot", clock.now)) == kLimit);
  CHECK(raw.get(bucket_key(prefix, "p:hot", clock.now)) == kLimit);
  CHECK(a->stats().allowed + b->stats().allowed == static_cast<std::uint64_t>(kLimit));
  CHECK(a->stats().refused + b->stats().refused == static_cast<std::uint64_t>(kAttempts - kLimit));
}

/// Acquires on `limiter` until Redis decides again (a reconnect is at most one interval away) or `limit` passes.
Decision acquire_when_up(LimiterIo& io, ratelimit::Limiter& limiter, const std::string& key, std::int64_t limit_per_minute,
                         std::chrono::milliseconds limit = 5s) {
  const auto deadline = Clock::now() + limit;
  Decision d;
  do {
    d = io.acquire_one(limiter, key, limit_per_minute);
    if (d.unavailable) std::this_thread::sleep_for(50ms);
  } while (d.unavailable && Clock::now() < deadline);
  return d;
}

/// While Redis cannot answer: open allows, closed refuses, both say unavailable, within the timeout (200 ms).
void check_fails_fast(LimiterIo& io, ratelimit::Limiter& open, ratelimit::Limiter& closed) {
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    Decision d = io.acquire_one(open, "t:1", 2);
    CHECK(d.allowed);
    CHECK(d.unavailable);
    CHECK(Clock::now() - t0 < 600ms);
    t0 = Clock::now();
    d = io.acquire_one(closed, "t:1", 2);
    CHECK_FALSE(d.allowed);
    CHECK(d.unavailable);
    CHECK(Clock::now() - t0 < 600ms);
  }
}

TEST_CASE("Redis rate limiter fails open or closed while Redis is down or hung and recovers by itself", "[redis]") {
  (void)limiter_test_redis();
  test::RedisServer server;
  LimiterIo io;
  FakeClock clock;
  redis::ConnectionOptions options;
  options.host = "127.0.0.1";
  options.port = static_cast<std::uint16_t>(server.port());
  options.timeout = 200ms;
  const std::string prefix = unique_limiter_prefix("outage");
  auto open = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::open, clock.fn());
  auto closed = ratelimit::make_redis_limiter(io.io, options, prefix, FailMode::closed, clock.fn());
  REQUIRE(io.acquire_one(*open, "t:1", 2).allowed);
  REQUIRE(io.acquire_one(*closed, "t:1", 2).allowed);
  REQUIRE_FALSE(io.acquire_one(*open, "t:1", 2).allowed);

  server.pause();  // hung: every command times out
  check_fails_fast(io, *open, *closed);
  server.resume();
  // Back without a new object; the count survived (the same server), so still refused.
  Decision d = acquire_when_up(io, *closed, "t:1", 2);
  CHECK_FALSE(d.unavailable);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 90s);

  const auto open_before = open->stats().unavailable;
  const auto closed_before = closed->stats().unavailable;
  CHECK(open_before == 3);
  server.kill();  // gone: every command fails at once
  check_fails_fast(io, *open, *closed);
  CHECK(open->stats().unavailable == open_before + 3);
  CHECK(closed->stats().unavailable == closed_before + 3);

  server.restart();  // same port, empty (no persistence)
  d = acquire_when_up(io, *closed, "t:1", 2);
  CHECK_FALSE(d.unavailable);
  CHECK(d.allowed);  // the new server's first count
  d = acquire_when_up(io, *open, "t:1", 2);  // its own connection comes back too
  CHECK_FALSE(d.unavailable);
  CHECK(d.allowed);
  d = io.acquire_one(*open, "t:1", 2);
  CHECK_FALSE(d.unavailable);
  CHECK_FALSE(d.allowed);
}

}  // namespace
}  // namespace llmproxy::contract
