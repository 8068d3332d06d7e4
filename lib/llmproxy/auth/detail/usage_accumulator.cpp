#include "llmproxy/auth/detail/usage_accumulator.hpp"

#include <algorithm>
#include <utility>

#include "llmproxy/auth/detail/lru_cache.hpp"

namespace llmproxy::auth::detail {

UsageAccumulator::UsageAccumulator(std::size_t shards)
    : shard_count_(shards == 0 ? 1 : shards), shards_(std::make_unique<Shard[]>(shard_count_)) {}

UsageAccumulator::Shard& UsageAccumulator::shard_for(const std::string& token_id) {
  return shards_[shard_index(token_id, shard_count_)];
}

void UsageAccumulator::add(const std::string& token_id, std::int64_t requests, std::int64_t cache_hits,
                           util::TimePoint used_at) {
  Shard& s = shard_for(token_id);
  std::lock_guard lock(s.mutex);
  Counts& c = s.pending[token_id];
  c.requests += requests;
  c.cache_hits += cache_hits;
  c.last_used_at = std::max(c.last_used_at, used_at);
}

std::vector<db::UsageDelta> UsageAccumulator::take() {
  std::vector<db::UsageDelta> out;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::unordered_map<std::string, Counts> taken;
    {
      std::lock_guard lock(shards_[i].mutex);
      taken.swap(shards_[i].pending);
    }
    // Built outside the lock: the I/O threads only ever wait for the swap.
    out.reserve(out.size() + taken.size());
    for (auto& [id, c] : taken) {
      out.push_back(db::UsageDelta{id, c.requests, c.cache_hits, c.last_used_at, 0, 0});
    }
  }
  return out;
}

void UsageAccumulator::merge_back(const std::vector<db::UsageDelta>& deltas) {
  for (const db::UsageDelta& d : deltas) add(d.token_id, d.requests, d.cache_hits, d.last_used_at);
}

std::size_t UsageAccumulator::pending_tokens() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].pending.size();
  }
  return n;
}

std::int64_t UsageAccumulator::pending_requests() const {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    for (const auto& entry : shards_[i].pending) n += entry.second.requests;
  }
  return n;
}

}  // namespace llmproxy::auth::detail
