#include "llmproxy/auth/detail/usage_accumulator.hpp"

#include <algorithm>
#include <utility>

#include "llmproxy/auth/detail/lru_cache.hpp"

namespace llmproxy::auth::detail {

namespace {

/// The map key of a daily row: the four key columns joined by a byte none of them contains (ids are uuids, days
/// digits and dashes; a model name with a 0x1f byte is not one the scanner keeps).
constexpr char kSeparator = '\x1f';

/// Writes the daily map key of a row into `key` (its capacity is reused).
void daily_key(std::string& key, std::string_view day, std::string_view project, std::string_view token,
               std::string_view model) {
  key.clear();
  key.append(day).append(1, kSeparator).append(project).append(1, kSeparator).append(token).append(1, kSeparator);
  key.append(model);
}

/// The four columns back out of daily_key().
db::DailyUsageDelta split_daily_key(const std::string& key) {
  db::DailyUsageDelta row;
  std::string* parts[] = {&row.day, &row.project_id, &row.token_id, &row.model};
  std::size_t start = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t end = i < 3 ? key.find(kSeparator, start) : key.size();
    parts[i]->assign(key, start, end - start);
    start = end + 1;
  }
  return row;
}

}  // namespace

UsageAccumulator::UsageAccumulator(std::size_t shards)
    : shard_count_(shards == 0 ? 1 : shards), shards_(std::make_unique<Shard[]>(shard_count_)) {}

UsageAccumulator::Shard& UsageAccumulator::shard_for(std::string_view token_id) {
  return shards_[shard_index(IdHash{}(token_id), shard_count_)];
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

void UsageAccumulator::add_daily(Shard& s, std::string_view day, std::string_view project, std::string_view token,
                                 std::string_view model, const Daily& add) {
  // The key is built in a buffer the thread keeps, and looked up as a view: adding to a row that exists (every
  // request of a token but its first in a flush interval) allocates nothing.
  thread_local std::string key;
  daily_key(key, day, project, token, model);
  auto it = s.daily.find(std::string_view(key));
  if (it == s.daily.end()) it = s.daily.emplace(key, Daily{}).first;
  Daily& d = it->second;
  d.requests += add.requests;
  d.prompt_tokens += add.prompt_tokens;
  d.completion_tokens += add.completion_tokens;
  d.cache_hits += add.cache_hits;
}

void UsageAccumulator::add_request(const RequestUsage& u) {
  Shard& s = shard_for(u.token_id);
  std::lock_guard lock(s.mutex);
  if (u.prompt_tokens != 0 || u.completion_tokens != 0) {
    auto it = s.pending.find(u.token_id);
    if (it == s.pending.end()) it = s.pending.emplace(std::string(u.token_id), Counts{}).first;
    it->second.prompt_tokens += u.prompt_tokens;
    it->second.completion_tokens += u.completion_tokens;
  }
  add_daily(s, u.day, u.project_id, u.token_id, u.model,
            Daily{u.cache_hit ? 0 : 1, u.prompt_tokens, u.completion_tokens, u.cache_hit ? 1 : 0});
}

db::UsageBatch UsageAccumulator::take() {
  db::UsageBatch out;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    TokenMap taken;
    DailyMap daily;
    {
      std::lock_guard lock(shards_[i].mutex);
      taken.swap(shards_[i].pending);
      daily.swap(shards_[i].daily);
    }
    // Built outside the lock: the I/O threads only ever wait for the swap.
    out.tokens.reserve(out.tokens.size() + taken.size());
    for (auto& [id, c] : taken) {
      out.tokens.push_back(
          db::UsageDelta{id, c.requests, c.cache_hits, c.last_used_at, c.prompt_tokens, c.completion_tokens});
    }
    out.daily.reserve(out.daily.size() + daily.size());
    for (auto& [key, d] : daily) {
      db::DailyUsageDelta row = split_daily_key(key);
      row.requests = d.requests;
      row.prompt_tokens = d.prompt_tokens;
      row.completion_tokens = d.completion_tokens;
      row.cache_hits = d.cache_hits;
      out.daily.push_back(std::move(row));
    }
  }
  return out;
}

void UsageAccumulator::merge_back(const db::UsageBatch& batch) {
  for (const db::UsageDelta& d : batch.tokens) {
    Shard& s = shard_for(d.token_id);
    std::lock_guard lock(s.mutex);
    Counts& c = s.pending[d.token_id];
    c.requests += d.requests;
    c.cache_hits += d.cache_hits;
    c.prompt_tokens += d.prompt_tokens;
    c.completion_tokens += d.completion_tokens;
    c.last_used_at = std::max(c.last_used_at, d.last_used_at);
  }
  for (const db::DailyUsageDelta& row : batch.daily) {
    Shard& s = shard_for(row.token_id);
    std::lock_guard lock(s.mutex);
    add_daily(s, row.day, row.project_id, row.token_id, row.model,
              Daily{row.requests, row.prompt_tokens, row.completion_tokens, row.cache_hits});
  }
}

std::size_t UsageAccumulator::pending_tokens() const {
  return sum_shards<std::size_t>([](const Shard& s) { return s.pending.size(); });
}

std::size_t UsageAccumulator::pending_daily_rows() const {
  return sum_shards<std::size_t>([](const Shard& s) { return s.daily.size(); });
}

std::int64_t UsageAccumulator::pending_requests() const {
  return sum_shards<std::int64_t>([](const Shard& s) {
    std::int64_t n = 0;
    for (const auto& entry : s.pending) n += entry.second.requests;
    return n;
  });
}

}  // namespace llmproxy::auth::detail
