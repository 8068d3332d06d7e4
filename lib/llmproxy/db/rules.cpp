#include "llmproxy/db/rules.hpp"

#include <algorithm>
#include <limits>

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

std::optional<QuotaOutcome> explain_quota_refusal(const Token& token, TimePoint now) {
  if (!token.is_active) return QuotaOutcome::inactive;
  if (token.expires_at && *token.expires_at <= now) return QuotaOutcome::expired;
  if (token.max_requests && token.request_count >= *token.max_requests) return QuotaOutcome::exhausted;
  return std::nullopt;
}

}  // namespace llmproxy::db
