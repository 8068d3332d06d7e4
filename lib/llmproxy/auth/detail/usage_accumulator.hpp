#pragma once
/// In-memory usage of unlimited tokens between two flushes (SPEC §6.3), sharded so that I/O threads counting
/// different tokens do not contend.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmproxy/db/models.hpp"

namespace llmproxy::auth::detail {

class UsageAccumulator {
 public:
  static constexpr std::size_t kDefaultShards = 16;

  explicit UsageAccumulator(std::size_t shards = kDefaultShards);
  UsageAccumulator(const UsageAccumulator&) = delete;
  UsageAccumulator& operator=(const UsageAccumulator&) = delete;

  /// Adds to the pending usage of `token_id`; last_used_at becomes the later of the two. Any thread. Allocates
  /// only for the first use of a token since the last take().
  void add(const std::string& token_id, std::int64_t requests, std::int64_t cache_hits, util::TimePoint used_at);

  /// Removes and returns everything pending, one delta per token (order unspecified). Any thread.
  std::vector<db::UsageDelta> take();

  /// Puts deltas that could not be written back, summed with whatever was counted meanwhile, so nothing is lost.
  /// Any thread.
  void merge_back(const std::vector<db::UsageDelta>& deltas);

  /// Distinct tokens with pending usage / pending requests over all of them.
  std::size_t pending_tokens() const;
  std::int64_t pending_requests() const;

 private:
  struct Counts {
    std::int64_t requests = 0;
    std::int64_t cache_hits = 0;
    util::TimePoint last_used_at{};
  };
  struct alignas(64) Shard {
    mutable std::mutex mutex;                         // guards `pending`
    std::unordered_map<std::string, Counts> pending;  // token id -> usage since the last take()
  };

  Shard& shard_for(const std::string& token_id);

  const std::size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;  // each shard guarded by its own mutex
};

}  // namespace llmproxy::auth::detail
