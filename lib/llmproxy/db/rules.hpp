#pragma once
/// Rules of the repository layer that do not depend on the engine, written once for both drivers: paging,
/// substring patterns for LIKE, and how a quota grant is decided and a refusal explained. Pure functions (plus one
/// template that drives a driver's two statements); any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/models.hpp"

namespace llmproxy::db {

/// LIMIT of a page: page_size, at least 1.
std::int64_t page_limit(PageRequest page);
/// OFFSET of a page: (page - 1) * page_size, pages below 1 counted as 1. A page so far past the end that the
/// product would overflow gives INT64_MAX (no rows) instead of undefined behaviour.
std::int64_t page_offset(PageRequest page);

/// The escape character of like_contains_pattern: `!`, not a backslash, so the SQL text means the same on both
/// engines whatever PostgreSQL's standard_conforming_strings says. Queries write `LIKE $n ESCAPE '!'`.
inline constexpr char kLikeEscape = '!';
/// `%text%` with `%`, `_` and `!` escaped by kLikeEscape, so `text` matches literally as a substring.
std::string like_contains_pattern(std::string_view text);

/// The deltas merged per token (requests, cache hits and LLM tokens added, the latest last_used_at kept), sorted
/// by token id: one row update per token, and rows locked in one global order by every instance (no deadlocks).
std::vector<UsageDelta> merge_usage(const std::vector<UsageDelta>& deltas);

/// The daily deltas merged per (day, project_id, token_id, model) (counts added), sorted by that key: one upsert
/// per row (PostgreSQL refuses to touch a row twice in one INSERT ... ON CONFLICT) in one global lock order.
std::vector<DailyUsageDelta> merge_daily_usage(const std::vector<DailyUsageDelta>& deltas);

/// Whether `day` is a calendar date written exactly as YYYY-MM-DD (years 0001..9999).
bool valid_day(std::string_view day);
/// Throws Invalid naming `what` unless valid_day(day).
void require_valid_day(std::string_view day, std::string_view what);

/// Why an increment refused `token` at `now`, read from the row as it is after the refusal: inactive, expired
/// or exhausted (checked in that order, the order of the increment's WHERE clause). nullopt when the row
/// explains nothing: it changed between the refused increment and the read (re-activated, limit raised).
std::optional<QuotaOutcome> explain_quota_refusal(const Token& token, TimePoint now);

/// How many times consume_quota tries the increment before it gives up on a row that keeps changing.
inline constexpr int kQuotaAttempts = 3;

/// What a driver's grant statement counted: the row after it and how many units it added (1..units).
struct QuotaGrant {
  Token token;
  std::int64_t granted = 0;
};

/// The one policy of TokenRepository::consume_quota, for both drivers. `increment()` runs the atomic
/// conditional grant of `units` and returns the row after it with the units granted, or nullopt when the WHERE
/// clause refused it; `read()` returns the current row, or nullopt when there is none. A refusal is classified
/// from the row read after it; a row that explains nothing is tried again, up to kQuotaAttempts times, and then
/// the call throws db::Unavailable (503 "try again"): nothing was counted, and the quota is not known to be
/// exhausted. Throws Invalid (before any statement) if units < 1.
template <class Increment, class Read>
QuotaResult decide_quota(const std::string& token_id, std::int64_t units, TimePoint now, Increment&& increment,
                         Read&& read) {
  if (units < 1) throw Invalid("consume quota: units must be at least 1, got " + std::to_string(units));
  for (int attempt = 0; attempt < kQuotaAttempts; ++attempt) {
    if (std::optional<QuotaGrant> counted = increment()) {
      return QuotaResult{QuotaOutcome::accepted, std::move(counted->token), counted->granted};
    }
    std::optional<Token> current = read();
    if (!current) return QuotaResult{QuotaOutcome::not_found, std::nullopt, 0};
    if (const auto outcome = explain_quota_refusal(*current, now)) return QuotaResult{*outcome, std::move(current), 0};
  }
  throw Unavailable("consume quota: token " + token_id + " changed concurrently during each of " +
                    std::to_string(kQuotaAttempts) + " attempts; nothing was counted, try again");
}

}  // namespace llmproxy::db
