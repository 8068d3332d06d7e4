#pragma once
/// A bounded string-keyed cache with LRU eviction and a time-to-live per entry, split into independently locked
/// shards so that every I/O thread can use it without a global lock. An entry past its lifetime is no longer
/// fresh, but it is kept for `stale_for` more (unless evicted) so that visit_stale() can serve it while the
/// database is unreachable (stale-if-error, SPEC §6.3). Header-only: instantiated for token, negative and project
/// entries.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "llmproxy/util/time.hpp"

namespace llmproxy::auth::detail {

/// Picks a shard from a key's hash. The bucket index inside a shard uses the low bits of the same hash; the
/// multiplicative mix spreads the high bits so the two choices do not correlate.
inline std::size_t shard_index(std::size_t key_hash, std::size_t shard_count) {
  const std::uint64_t mixed = static_cast<std::uint64_t>(key_hash) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(mixed >> 32) % shard_count;
}

/// `Hash` hashes a std::string_view key (IdHash where keys are digests or generated ids).
template <class Value, class Hash = std::hash<std::string_view>>
class ShardedLruCache {
 public:
  static constexpr std::size_t kDefaultShards = 16;

  using Duration = util::TimePoint::duration;
  /// An entry lifetime that never ends (a final state, e.g. an expired token). Only LRU eviction removes it.
  static constexpr Duration kForever = Duration::max();

  /// At most `capacity` entries overall (split evenly over the shards, at least one per shard), each trusted for
  /// `ttl` after it was stored unless put_for() gave it its own lifetime, then kept `stale_for` longer for
  /// visit_stale(). `capacity == 0` disables the cache; `ttl <= 0` makes put() store nothing.
  ShardedLruCache(std::size_t capacity, std::chrono::microseconds ttl, std::size_t shards = kDefaultShards,
                  std::chrono::microseconds stale_for = std::chrono::microseconds(0))
      : shard_count_(shards == 0 ? 1 : shards),
        per_shard_capacity_(capacity == 0 ? 0 : (capacity + shard_count_ - 1) / shard_count_),
        ttl_(ttl),
        stale_for_(std::max(stale_for, std::chrono::microseconds(0))),
        shards_(std::make_unique<Shard[]>(shard_count_)) {}

  ShardedLruCache(const ShardedLruCache&) = delete;
  ShardedLruCache& operator=(const ShardedLruCache&) = delete;

  bool enabled() const { return per_shard_capacity_ > 0; }
  std::chrono::microseconds ttl() const { return ttl_; }

  /// If `key` holds an entry still fresh at `now`: marks it most recently used, counts a hit, calls
  /// `fn(const Value&)` under the shard lock (keep it short, never block in it) and returns true. An entry past
  /// its lifetime is kept while visit_stale() may still serve it, else erased. Allocates nothing.
  template <class Fn>
  bool visit(std::string_view key, util::TimePoint now, Fn&& fn) {
    Shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    const auto it = s.index.find(key);
    if (it == s.index.end()) return false;
    const auto node = it->second;
    switch (age_of(*node, now)) {
      case Age::fresh:
        break;
      case Age::stale:
        return false;
      case Age::dead:
        s.index.erase(it);
        s.lru.erase(node);
        return false;
    }
    s.lru.splice(s.lru.begin(), s.lru, node);
    ++s.hits;
    std::invoke(std::forward<Fn>(fn), std::as_const(node->value));
    return true;
  }

  /// For when the source of truth is unreachable: if `key` holds an entry past its lifetime by less than
  /// `stale_for`, calls `fn(const Value&)` under the shard lock and returns true. Fresh entries are not served
  /// here (visit() would have), nor is anything stored at a time later than `now` (a clock that went back).
  template <class Fn>
  bool visit_stale(std::string_view key, util::TimePoint now, Fn&& fn) {
    Shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    const auto it = s.index.find(key);
    if (it == s.index.end() || age_of(*it->second, now) != Age::stale) return false;
    std::invoke(std::forward<Fn>(fn), std::as_const(it->second->value));
    return true;
  }

  /// Stores `value` under `key` for the cache's ttl, as put_for().
  template <class Admit>
  bool put_if(std::string_view key, Value value, util::TimePoint now, Admit&& admit) {
    return put_for(key, std::move(value), now, ttl_, std::forward<Admit>(admit));
  }

  /// Stores `value` under `key` (replacing an existing entry), fresh for `lifetime` from `now`, unless `admit()`,
  /// evaluated under the shard lock, returns false. A `lifetime <= 0` stores nothing and drops an existing entry
  /// (it holds an older state). Evicts the shard's least recently used entry when it is full. Returns true if
  /// stored.
  template <class Admit>
  bool put_for(std::string_view key, Value value, util::TimePoint now, Duration lifetime, Admit&& admit) {
    if (!enabled()) return false;
    Shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    if (!std::invoke(std::forward<Admit>(admit))) return false;
    const auto it = s.index.find(key);
    if (lifetime <= Duration::zero()) {
      if (it != s.index.end()) {
        const auto node = it->second;
        s.index.erase(it);
        s.lru.erase(node);
      }
      return false;
    }
    if (it != s.index.end()) {
      it->second->value = std::move(value);
      it->second->stored_at = now;
      it->second->lifetime = lifetime;
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return true;
    }
    s.lru.push_front(Node{std::string(key), std::move(value), now, lifetime});
    try {
      // The index key views the node's own string: list nodes never move, so the view stays valid.
      s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
    } catch (...) {
      s.lru.pop_front();
      throw;
    }
    while (s.lru.size() > per_shard_capacity_) {
      s.index.erase(std::string_view(s.lru.back().key));
      s.lru.pop_back();
    }
    return true;
  }

  bool put(std::string_view key, Value value, util::TimePoint now) {
    return put_if(key, std::move(value), now, [] { return true; });
  }

  /// Removes `key`; returns true if it was present.
  bool erase(std::string_view key) {
    Shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    const auto it = s.index.find(key);
    if (it == s.index.end()) return false;
    const auto node = it->second;
    s.index.erase(it);
    s.lru.erase(node);
    return true;
  }

  /// Removes every entry for which `pred(std::string_view key, const Value&)` is true, one shard at a time.
  /// Linear in the size of the cache: for rare events (revocations), not for the request path.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mutex);
      for (auto node = s.lru.begin(); node != s.lru.end();) {
        if (pred(std::string_view(node->key), std::as_const(node->value))) {
          s.index.erase(std::string_view(node->key));
          node = s.lru.erase(node);
          ++removed;
        } else {
          ++node;
        }
      }
    }
    return removed;
  }

  /// Entries stored now (fresh or not yet found stale).
  std::size_t size() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mutex);
      n += shards_[i].lru.size();
    }
    return n;
  }

  /// Successful visit() calls since construction.
  std::uint64_t hits() const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mutex);
      n += shards_[i].hits;
    }
    return n;
  }

 private:
  struct Node {
    std::string key;
    Value value;
    util::TimePoint stored_at;
    Duration lifetime;  // fresh while now - stored_at < lifetime
  };
  using List = std::list<Node>;

  // Aligned to a cache line so that threads working on neighbouring shards do not share one.
  struct alignas(64) Shard {
    mutable std::mutex mutex;                                             // guards everything below
    List lru;                                                             // most recently used first
    std::unordered_map<std::string_view, typename List::iterator, Hash> index;  // keys view Node::key
    std::uint64_t hits = 0;
  };

  enum class Age { fresh, stale, dead };

  /// Fresh for its lifetime after it was stored, then stale for `stale_for_`, then dead. A clock that went
  /// backwards makes the entry dead rather than extending its life. Written without `lifetime + stale_for_`,
  /// which overflows for kForever.
  Age age_of(const Node& node, util::TimePoint now) const {
    if (now < node.stored_at) return Age::dead;
    const Duration age = now - node.stored_at;
    if (age < node.lifetime) return Age::fresh;
    return age - node.lifetime < stale_for_ ? Age::stale : Age::dead;
  }

  Shard& shard_for(std::string_view key) { return shards_[shard_index(Hash{}(key), shard_count_)]; }

  const std::size_t shard_count_;
  const std::size_t per_shard_capacity_;
  const std::chrono::microseconds ttl_;
  const std::chrono::microseconds stale_for_;
  std::unique_ptr<Shard[]> shards_;  // each shard guarded by its own mutex
};

}  // namespace llmproxy::auth::detail
