// The shared limiter: one EVAL per acquire through redis::Connection; the window arithmetic is window.hpp (the
// script repeats its inequality, the client computes Retry-After from the counts the script returns).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmproxy/log/log.hpp"
#include "llmproxy/ratelimit/detail/common.hpp"
#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/ratelimit/window.hpp"
#include "llmproxy/redis/connection.hpp"

namespace llmproxy::ratelimit {

namespace {

namespace net = boost::asio;

constexpr std::int64_t kKeyTtlMs = 2 * kWindowMs;  // a bucket is read as `prev` during the minute after its own
constexpr std::int64_t kErrorLogIntervalMs = 10'000;

// KEYS[2i-1], KEYS[2i]: rule i's current and previous bucket. ARGV[1]: ms into the current bucket, ARGV[2]: the
// bucket length, ARGV[3]: the key TTL (ms), ARGV[3+i]: rule i's limit. Returns {allowed 0|1, cur1, prev1, cur2,
// prev2, ...}, the counts as read before this call. The inequality is window.hpp's allows(), exact in Lua's doubles
// for limits up to detail::kMaxLimit. One MGET, then only if every rule allows: INCR + PEXPIRE per rule.
constexpr const char* kScript = R"lua(
local e = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local n = #KEYS / 2
local counts = redis.call('MGET', unpack(KEYS))
local out = {0}
local ok = true
for i = 1, n do
  local cur = tonumber(counts[2 * i - 1]) or 0
  local prev = tonumber(counts[2 * i]) or 0
  local limit = tonumber(ARGV[3 + i])
  out[2 * i] = cur
  out[2 * i + 1] = prev
  if limit < 1 or prev * (w - e) + (cur + 1) * w > limit * w then ok = false end
end
if ok then
  for i = 1, n do
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[3])
  end
  out[1] = 1
end
return out
)lua";

/// What the coroutines share with the limiter object; they hold it, so a limiter destroyed while they are
/// suspended leaves them nothing dangling. Counters are atomic; the connection is confined to its own strand.
struct Shared {
  std::shared_ptr<redis::Connection> conn;
  std::string prefix;
  FailMode mode = FailMode::open;
  std::function<std::int64_t()> now_ms;
  std::atomic<std::uint64_t> allowed{0}, refused{0}, unavailable{0};
  std::atomic<std::int64_t> last_error_log_ms{0};

  Decision fail(const std::string& why, bool server_error) {
    unavailable.fetch_add(1, std::memory_order_relaxed);
    // The connection logs going down and coming back; an answer that is an error (a full or read-only server, a
    // script refused) is only seen here: logged at most once per interval.
    if (server_error) {
      const std::int64_t now = detail::system_now_ms();
      std::int64_t last = last_error_log_ms.load(std::memory_order_relaxed);
      if (now - last >= kErrorLogIntervalMs &&
          last_error_log_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
        log::write(log::Level::warn, "ratelimit_redis_error", {{"error", why}});
      }
    }
    Decision d;
    d.allowed = mode == FailMode::open;
    d.unavailable = true;
    return d;
  }
};

net::awaitable<Decision> redis_acquire(std::shared_ptr<Shared> s, std::vector<Rule> rules) {
  if (rules.empty()) {
    s->allowed.fetch_add(1, std::memory_order_relaxed);
    co_return Decision{};
  }
  const std::int64_t now = s->now_ms ? s->now_ms() : detail::system_now_ms();
  const std::int64_t bucket = bucket_of(now);
  const std::int64_t elapsed = elapsed_in_bucket(now);
  const std::string cur_suffix = ":" + std::to_string(bucket);
  const std::string prev_suffix = ":" + std::to_string(bucket - 1);

  std::vector<std::string> argv;
  argv.reserve(6 + 3 * rules.size());
  argv.emplace_back("EVAL");
  argv.emplace_back(kScript);
  argv.push_back(std::to_string(2 * rules.size()));
  for (const auto& r : rules) {
    argv.push_back(s->prefix + r.key + cur_suffix);
    argv.push_back(s->prefix + r.key + prev_suffix);
  }
  argv.push_back(std::to_string(elapsed));
  argv.push_back(std::to_string(kWindowMs));
  argv.push_back(std::to_string(kKeyTtlMs));
  for (const auto& r : rules) argv.push_back(std::to_string(detail::effective_limit(r)));

  auto conn = s->conn;
  redis::Reply reply = co_await conn->async_command(std::move(argv), net::use_awaitable);
  if (reply.failed()) co_return s->fail(reply.str, reply.type == redis::Reply::Type::error);
  if (reply.type != redis::Reply::Type::array || reply.elements.size() != 1 + 2 * rules.size()) {
    co_return s->fail("unexpected reply to the rate limit script", true);
  }
  for (const auto& e : reply.elements) {
    if (e.type != redis::Reply::Type::integer) co_return s->fail("unexpected reply to the rate limit script", true);
  }
  if (reply.elements[0].integer == 1) {
    s->allowed.fetch_add(1, std::memory_order_relaxed);
    co_return Decision{};
  }
  std::vector<WindowState> states;
  states.reserve(rules.size());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    states.push_back(WindowState{reply.elements[1 + 2 * i].integer, reply.elements[2 + 2 * i].integer, elapsed});
  }
  Decision d = detail::decide(rules, states);
  if (d.allowed) {  // cannot happen (same inequality); the script's answer counts
    d.allowed = false;
    d.refused_rule = 0;
    d.retry_after = std::chrono::seconds(1);
  }
  s->refused.fetch_add(1, std::memory_order_relaxed);
  co_return d;
}

class RedisLimiter final : public Limiter {
 public:
  RedisLimiter(net::io_context& io, redis::ConnectionOptions options, std::string prefix, FailMode mode,
               std::function<std::int64_t()> now_ms)
      : shared_(std::make_shared<Shared>()) {
    shared_->prefix = std::move(prefix);
    shared_->mode = mode;
    shared_->now_ms = std::move(now_ms);
    shared_->conn = redis::Connection::create(io, std::move(options));
  }
  ~RedisLimiter() override { shared_->conn->shutdown(); }

  net::awaitable<Decision> acquire(std::vector<Rule> rules) override {
    auto s = shared_;  // `this` is not used after the first suspension
    co_return co_await redis_acquire(std::move(s), std::move(rules));
  }

  Stats stats() const override {
    Stats out;
    out.allowed = shared_->allowed.load(std::memory_order_relaxed);
    out.refused = shared_->refused.load(std::memory_order_relaxed);
    out.unavailable = shared_->unavailable.load(std::memory_order_relaxed);
    return out;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace

std::shared_ptr<Limiter> make_redis_limiter(net::io_context& io, redis::ConnectionOptions options,
                                            std::string key_prefix, FailMode mode,
                                            std::function<std::int64_t()> now_ms) {
  options.purpose = "ratelimit";
  return std::make_shared<RedisLimiter>(io, std::move(options), std::move(key_prefix), mode, std::move(now_ms));
}

}  // namespace llmproxy::ratelimit
