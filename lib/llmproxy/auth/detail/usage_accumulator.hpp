#pragma once
/// In-memory usage between two flushes (SPEC §6.3, §14), sharded so that I/O threads counting different tokens do
/// not contend: per token the request and cache-hit counts of unlimited tokens and the LLM tokens of every token;
/// per (UTC day, project, token, model) the row of usage_daily. One take() is one db::UsageBatch, written in one
/// transaction.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llmproxy/auth/detail/id_hash.hpp"
#include "llmproxy/db/models.hpp"

namespace llmproxy::auth::detail {

/// The hash of a string-keyed map that can be searched with a string_view (with std::equal_to<>): a look-up on the
/// request path then builds no std::string.
struct ViewHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
};

/// What one finished request adds to usage_daily and to its token's LLM-token columns.
struct RequestUsage {
  std::string_view token_id, project_id;
  std::string_view model;  // '' when unknown
  std::string_view day;    // YYYY-MM-DD, UTC
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
  bool cache_hit = false;  // answered from the response cache: a cache hit, not a request
};

class UsageAccumulator {
 public:
  static constexpr std::size_t kDefaultShards = 16;

  explicit UsageAccumulator(std::size_t shards = kDefaultShards);
  UsageAccumulator(const UsageAccumulator&) = delete;
  UsageAccumulator& operator=(const UsageAccumulator&) = delete;

  /// Adds to the pending request and cache-hit counts of `token_id`; last_used_at becomes the later of the two.
  /// Any thread. Allocates only for the first use of a token since the last take().
  void add(const std::string& token_id, std::int64_t requests, std::int64_t cache_hits, util::TimePoint used_at);

  /// Adds one finished request: its LLM tokens to the token, one request (or cache hit) and its LLM tokens to
  /// the daily row. Any thread.
  void add_request(const RequestUsage& usage);

  /// Removes and returns everything pending (order unspecified). Any thread.
  db::UsageBatch take();

  /// Puts a batch that could not be written back, summed with whatever was counted meanwhile, so nothing is lost.
  /// Any thread.
  void merge_back(const db::UsageBatch& batch);

  /// Distinct tokens with pending usage / pending requests over all of them / pending usage_daily rows.
  std::size_t pending_tokens() const;
  std::int64_t pending_requests() const;
  std::size_t pending_daily_rows() const;

 private:
  struct Counts {
    std::int64_t requests = 0;
    std::int64_t cache_hits = 0;
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    util::TimePoint last_used_at{};
  };
  struct Daily {
    std::int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0, cache_hits = 0;
  };
  // Searched with a string_view: a request adds to its rows without building key strings.
  using TokenMap = std::unordered_map<std::string, Counts, IdHash, std::equal_to<>>;  // keys: token ids
  using DailyMap = std::unordered_map<std::string, Daily, ViewHash, std::equal_to<>>;
  struct alignas(64) Shard {
    mutable std::mutex mutex;                         // guards `pending` and `daily`
    TokenMap pending;  // token id -> usage since the last take()
    DailyMap daily;    // daily_key() -> usage since the last take()
  };

  Shard& shard_for(std::string_view token_id);
  /// The sum of `f(shard)` over the shards, each read under its lock.
  template <class T, class F>
  T sum_shards(F f) const {
    T total{};
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mutex);
      total += f(shards_[i]);
    }
    return total;
  }
  /// Adds `add` to the daily row of (day, project, token, model) in `s` (locked by the caller).
  static void add_daily(Shard& s, std::string_view day, std::string_view project, std::string_view token,
                        std::string_view model, const Daily& add);

  const std::size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;  // each shard guarded by its own mutex
};

}  // namespace llmproxy::auth::detail
