// The in-process limiter: per key {bucket, cur, prev} in sharded maps; the window arithmetic is window.hpp.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmproxy/ratelimit/detail/common.hpp"
#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/ratelimit/window.hpp"

namespace llmproxy::ratelimit {

namespace {

namespace net = boost::asio;

constexpr std::size_t kShards = 16;

struct Counts {
  std::int64_t bucket = 0;  // the bucket `cur` belongs to
  std::int64_t cur = 0;
  std::int64_t prev = 0;    // the count of bucket - 1
};

/// The counts of `c` as seen in bucket `now`.
WindowState view(const Counts& c, std::int64_t now, std::int64_t elapsed_ms) {
  WindowState s;
  s.elapsed_ms = elapsed_ms;
  if (c.bucket == now) {
    s.cur = c.cur;
    s.prev = c.prev;
  } else if (c.bucket == now - 1) {
    s.prev = c.cur;
  }
  return s;
}

class MemoryLimiter final : public Limiter {
 public:
  explicit MemoryLimiter(std::function<std::int64_t()> now_ms) : now_ms_(std::move(now_ms)) {}

  net::awaitable<Decision> acquire(std::vector<Rule> rules) override {
    Decision d = decide(rules);  // does not suspend
    co_return d;
  }

  Stats stats() const override {
    Stats s;
    s.allowed = allowed_.load(std::memory_order_relaxed);
    s.refused = refused_.load(std::memory_order_relaxed);
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      s.keys += shard.keys.size();
    }
    return s;
  }

 private:
  // Each shard's map is guarded by its own mutex; the counters are atomic.
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Counts> keys;
  };

  Decision decide(const std::vector<Rule>& rules) {
    const std::int64_t now = now_ms_ ? now_ms_() : detail::system_now_ms();
    const std::int64_t bucket = bucket_of(now);
    const std::int64_t elapsed = elapsed_in_bucket(now);
    sweep_if_new_bucket(bucket);

    // Lock every shard involved, in shard order (no deadlock between calls with the same keys in another order).
    std::vector<std::size_t> ids;
    ids.reserve(rules.size());
    for (const auto& r : rules) ids.push_back(std::hash<std::string>{}(r.key) % kShards);
    std::vector<std::size_t> order = ids;
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(order.size());
    for (auto id : order) locks.emplace_back(shards_[id].mutex);

    std::vector<WindowState> states;
    states.reserve(rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
      const auto& map = shards_[ids[i]].keys;
      auto it = map.find(rules[i].key);
      states.push_back(it == map.end() ? WindowState{0, 0, elapsed} : view(it->second, bucket, elapsed));
    }
    Decision d = detail::decide(rules, states);
    if (d.allowed) {
      for (std::size_t i = 0; i < rules.size(); ++i) {
        Counts& c = shards_[ids[i]].keys[rules[i].key];
        if (c.bucket != bucket) {
          c.prev = c.bucket == bucket - 1 ? c.cur : 0;
          c.cur = 0;
          c.bucket = bucket;
        }
        ++c.cur;
      }
    }
    locks.clear();
    (d.allowed ? allowed_ : refused_).fetch_add(1, std::memory_order_relaxed);
    return d;
  }

  /// The first call of each new bucket drops the keys whose last count is two buckets old or older (both their
  /// counts are zero now), one shard at a time.
  void sweep_if_new_bucket(std::int64_t bucket) {
    std::int64_t seen = swept_bucket_.load(std::memory_order_relaxed);
    if (seen >= bucket) return;
    if (!swept_bucket_.compare_exchange_strong(seen, bucket, std::memory_order_relaxed)) return;
    for (auto& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      std::erase_if(shard.keys, [bucket](const auto& kv) { return kv.second.bucket < bucket - 1; });
    }
  }

  std::function<std::int64_t()> now_ms_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::int64_t> swept_bucket_{std::numeric_limits<std::int64_t>::min()};
  std::atomic<std::uint64_t> allowed_{0}, refused_{0};
};

}  // namespace

std::shared_ptr<Limiter> make_memory_limiter(std::function<std::int64_t()> now_ms) {
  return std::make_shared<MemoryLimiter>(std::move(now_ms));
}

}  // namespace llmproxy::ratelimit
