#include "llmproxy/db/rules.hpp"

#include <algorithm>
#include <limits>
#include <map>

namespace llmproxy::db {

std::int64_t page_limit(PageRequest page) { return std::max<std::int64_t>(page.page_size, 1); }

std::int64_t page_offset(PageRequest page) {
  const std::int64_t size = page_limit(page);
  const std::int64_t skipped_pages = std::max<std::int64_t>(page.page, 1) - 1;
  if (skipped_pages > std::numeric_limits<std::int64_t>::max() / size) return std::numeric_limits<std::int64_t>::max();
  return skipped_pages * size;
}

std::string like_contains_pattern(std::string_view text) {
  std::string pattern = "%";
  pattern.reserve(text.size() + 2);
  for (const char c : text) {
    if (c == '%' || c == '_' || c == kLikeEscape) pattern += kLikeEscape;
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

std::vector<UsageDelta> merge_usage(const std::vector<UsageDelta>& deltas) {
  std::map<std::string, UsageDelta> merged;
  for (const auto& d : deltas) {
    auto [it, inserted] = merged.try_emplace(d.token_id, d);
    if (!inserted) {
      it->second.requests += d.requests;
      it->second.cache_hits += d.cache_hits;
      it->second.last_used_at = std::max(it->second.last_used_at, d.last_used_at);
    }
  }
  std::vector<UsageDelta> out;
  out.reserve(merged.size());
  for (auto& [id, d] : merged) out.push_back(std::move(d));
  return out;
}

std::optional<QuotaOutcome> explain_quota_refusal(const Token& token, TimePoint now) {
  if (!token.is_active) return QuotaOutcome::inactive;
  if (token.expires_at && *token.expires_at <= now) return QuotaOutcome::expired;
  if (token.max_requests && token.request_count >= *token.max_requests) return QuotaOutcome::exhausted;
  return std::nullopt;
}

}  // namespace llmproxy::db
