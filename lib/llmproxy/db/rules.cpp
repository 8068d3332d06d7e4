#include "llmproxy/db/rules.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <tuple>

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
      it->second.prompt_tokens += d.prompt_tokens;
      it->second.completion_tokens += d.completion_tokens;
      it->second.last_used_at = std::max(it->second.last_used_at, d.last_used_at);
    }
  }
  std::vector<UsageDelta> out;
  out.reserve(merged.size());
  for (auto& [id, d] : merged) out.push_back(std::move(d));
  return out;
}

std::vector<DailyUsageDelta> merge_daily_usage(const std::vector<DailyUsageDelta>& deltas) {
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  std::map<Key, DailyUsageDelta> merged;
  for (const auto& d : deltas) {
    auto [it, inserted] = merged.try_emplace(Key{d.day, d.project_id, d.token_id, d.model}, d);
    if (!inserted) {
      it->second.requests += d.requests;
      it->second.prompt_tokens += d.prompt_tokens;
      it->second.completion_tokens += d.completion_tokens;
      it->second.cache_hits += d.cache_hits;
    }
  }
  std::vector<DailyUsageDelta> out;
  out.reserve(merged.size());
  for (auto& [key, d] : merged) out.push_back(std::move(d));
  return out;
}

bool valid_day(std::string_view day) {
  if (day.size() != 10 || day[4] != '-' || day[7] != '-') return false;
  int parts[3] = {0, 0, 0};
  int part = 0;
  for (std::size_t i = 0; i < day.size(); ++i) {
    if (i == 4 || i == 7) {
      ++part;
      continue;
    }
    if (day[i] < '0' || day[i] > '9') return false;
    parts[part] = parts[part] * 10 + (day[i] - '0');
  }
  if (parts[0] < 1) return false;
  const std::chrono::year_month_day date{std::chrono::year{parts[0]},
                                         std::chrono::month{static_cast<unsigned>(parts[1])},
                                         std::chrono::day{static_cast<unsigned>(parts[2])}};
  return date.ok();
}

void require_valid_day(std::string_view day, std::string_view what) {
  if (!valid_day(day)) {
    throw Invalid(std::string(what) + ": '" + std::string(day.substr(0, 40)) +
                  "' is not a date in the form YYYY-MM-DD");
  }
}

std::optional<QuotaOutcome> explain_quota_refusal(const Token& token, TimePoint now) {
  if (!token.is_active) return QuotaOutcome::inactive;
  if (token.expires_at && *token.expires_at <= now) return QuotaOutcome::expired;
  if (token.max_requests && token.request_count >= *token.max_requests) return QuotaOutcome::exhausted;
  return std::nullopt;
}

}  // namespace llmproxy::db
