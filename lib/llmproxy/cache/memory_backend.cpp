#include <algorithm>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmproxy/cache/backends.hpp"
#include "llmproxy/cache/detail/entry_format.hpp"
#include "llmproxy/cache/detail/glob.hpp"

namespace llmproxy::cache {

namespace {

constexpr std::size_t kMaxShards = 16;

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// As many shards as fit while each keeps room for two objects of the largest allowed size (so a small
/// HTTP_CACHE_MAX_BYTES still stores what it admits), at most kMaxShards.
std::size_t shard_count(const MemoryOptions& o) {
  const std::uint64_t per_object = std::max<std::uint64_t>(o.max_object_bytes, 1);
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(o.max_bytes / (2 * per_object), 1, kMaxShards));
}

/// The in-process store. Shared state is sharded: each shard (a map into its own LRU list) is guarded by its own
/// mutex, held only for map/list bookkeeping; the totals are atomics. Nothing suspends.
class MemoryBackend final : public Backend {
 public:
  MemoryBackend(MemoryOptions options, std::function<std::int64_t()> now_ms)
      : options_(options), now_ms_(now_ms ? std::move(now_ms) : system_now_ms), shards_(shard_count(options)) {
    shard_capacity_ = options_.max_bytes / shards_.size();
  }

  std::string_view name() const override { return "memory"; }

  boost::asio::awaitable<Lookup> get(std::string key) override { co_return lookup(key); }

  boost::asio::awaitable<bool> put(std::string key, std::shared_ptr<const Entry> entry) override {
    co_return store(std::move(key), std::move(entry));
  }

  boost::asio::awaitable<std::optional<std::uint64_t>> purge(std::string pattern) override {
    co_return std::optional<std::uint64_t>(erase_matching(pattern));
  }

  bool healthy() const override { return true; }

  BackendStats stats() const override {
    BackendStats s;
    s.evictions = evictions_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.entries = entries_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  struct Node {
    std::string key;
    std::shared_ptr<const Entry> entry;
    std::uint64_t size = 0;  // detail::memory_footprint
  };
  struct Shard {
    std::mutex mutex;
    std::list<Node> lru;  // most recently used first
    std::unordered_map<std::string_view, std::list<Node>::iterator> index;  // views into Node::key
    std::uint64_t bytes = 0;
  };

  Shard& shard_of(const std::string& key) { return shards_[std::hash<std::string>{}(key) % shards_.size()]; }

  /// Drops `it` from `shard` (its mutex held).
  void drop(Shard& shard, std::list<Node>::iterator it) {
    shard.bytes -= it->size;
    bytes_.fetch_sub(it->size, std::memory_order_relaxed);
    entries_.fetch_sub(1, std::memory_order_relaxed);
    shard.index.erase(it->key);
    shard.lru.erase(it);
  }

  Lookup lookup(const std::string& key) {
    Shard& shard = shard_of(key);
    const std::int64_t now = now_ms_();
    std::lock_guard lock(shard.mutex);
    const auto found = shard.index.find(key);
    if (found == shard.index.end()) return {};
    const auto it = found->second;
    if (it->entry->expires_at_ms <= now) {
      drop(shard, it);
      return {};
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, it);
    Lookup hit;
    hit.status = LookupStatus::hit;
    hit.entry = it->entry;
    return hit;
  }

  bool store(std::string key, std::shared_ptr<const Entry> entry) {
    if (!entry) return false;
    const std::uint64_t size = detail::memory_footprint(key, *entry);
    const bool admitted = entry->body.size() <= options_.max_object_bytes && size <= shard_capacity_ &&
                          entry->expires_at_ms > now_ms_();
    Shard& shard = shard_of(key);
    std::lock_guard lock(shard.mutex);
    // Replacing: what was there goes, also when the new entry is refused (it is the newer answer).
    if (const auto found = shard.index.find(key); found != shard.index.end()) drop(shard, found->second);
    if (!admitted) return false;
    while (shard.bytes + size > shard_capacity_ && !shard.lru.empty()) {
      drop(shard, std::prev(shard.lru.end()));
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
    shard.lru.push_front(Node{std::move(key), std::move(entry), size});
    shard.index.emplace(shard.lru.front().key, shard.lru.begin());
    shard.bytes += size;
    bytes_.fetch_add(size, std::memory_order_relaxed);
    entries_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  std::uint64_t erase_matching(const std::string& pattern) {
    std::uint64_t deleted = 0;
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      for (auto it = shard.lru.begin(); it != shard.lru.end();) {
        const auto next = std::next(it);
        if (detail::glob_match(pattern, it->key)) {
          drop(shard, it);
          ++deleted;
        }
        it = next;
      }
    }
    return deleted;
  }

  const MemoryOptions options_;
  const std::function<std::int64_t()> now_ms_;
  std::vector<Shard> shards_;
  std::uint64_t shard_capacity_ = 0;
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> entries_{0};
};

}  // namespace

std::unique_ptr<Backend> make_memory_backend(MemoryOptions options, std::function<std::int64_t()> now_ms) {
  return std::make_unique<MemoryBackend>(options, std::move(now_ms));
}

}  // namespace llmproxy::cache
