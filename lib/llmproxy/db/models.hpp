#pragma once
/// Plain data of the repository layer. No driver types; every time is UTC with microsecond precision.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmproxy/util/time.hpp"

namespace llmproxy::db {

using util::TimePoint;

struct Project {
  std::string id;       // uuid
  std::string name;
  std::string api_key;  // as stored: plaintext or `enc:v1:...`; the caller encrypts/decrypts
  bool is_active = true;
  std::optional<TimePoint> deactivated_at;
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<std::int64_t> rate_limit_rpm;  // requests per minute for the whole project; nullopt = no limit
};

struct Token {
  std::string id;          // uuid
  std::string token_hash;  // SHA-256 hex of the secret token
  std::string token_hint;  // `sk-AbCd...wXyZ`
  std::string project_id;
  std::optional<TimePoint> expires_at;
  bool is_active = true;
  std::optional<TimePoint> deactivated_at;
  std::int64_t request_count = 0;
  std::optional<std::int64_t> max_requests;  // nullopt = unlimited
  TimePoint created_at{};
  std::optional<TimePoint> last_used_at;
  std::int64_t cache_hit_count = 0;
  std::int64_t prompt_tokens = 0;      // LLM tokens used so far (added by add_usage)
  std::int64_t completion_tokens = 0;
  std::optional<std::int64_t> max_tokens;      // budget of LLM tokens (prompt + completion); nullopt = unlimited
  std::optional<std::int64_t> rate_limit_rpm;  // requests per minute; nullopt = no limit
};

struct AuditEvent {
  std::string id;  // uuid
  TimePoint timestamp{};
  std::string action;   // e.g. project.create, token.revoke
  std::string actor;    // e.g. management_api, system, anonymous
  std::string outcome;  // success | failure | denied | error
  std::optional<std::string> project_id, request_id, correlation_id, client_ip, method, path, user_agent,
      reason, token_id;
  std::optional<std::string> metadata;  // JSON object text
};

/// One page of a list plus the total number of matching rows.
template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total_count = 0;
};

/// 1-based page number and page size (both already validated by the caller, page_size >= 1).
struct PageRequest {
  std::int64_t page = 1;
  std::int64_t page_size = 20;
};

/// A list_tokens filter by state: `usable` true keeps the tokens usable at `now` (active, and unexpired or without
/// an expiry); false keeps the others (revoked or expired). A quota used up does not count: it can be raised.
struct TokenStateFilter {
  bool usable = true;
  TimePoint now;
};

struct ProjectUpdate {
  std::optional<std::string> name;
  std::optional<std::string> api_key;
  std::optional<bool> is_active;  // false sets deactivated_at = now; true clears it
  std::optional<std::optional<std::int64_t>> rate_limit_rpm;  // set: new limit, inner nullopt = no limit
};

struct TokenUpdate {
  std::optional<bool> is_active;                          // false sets deactivated_at = now; true clears it
  std::optional<std::optional<std::int64_t>> max_requests;  // set: new limit, inner nullopt = unlimited
  std::optional<std::optional<std::int64_t>> max_tokens;      // set: new budget, inner nullopt = unlimited
  std::optional<std::optional<std::int64_t>> rate_limit_rpm;  // set: new limit, inner nullopt = no limit
};

struct RevokeResult {
  std::int64_t revoked_count = 0;          // active tokens that this call deactivated
  std::int64_t already_revoked_count = 0;  // tokens that were inactive already
  std::int64_t total_tokens = 0;
};

enum class QuotaOutcome {
  accepted,   // request_count was incremented by `granted` (1..units); `token` holds the row after the increment
  not_found,  // no token with this id
  inactive,   // is_active = false
  expired,    // expires_at <= now
  exhausted,  // request_count >= max_requests
};

struct QuotaResult {
  QuotaOutcome outcome = QuotaOutcome::not_found;
  std::optional<Token> token;  // set for every outcome but not_found (the current row)
  /// Units counted by this call: 1..units when accepted, 0 otherwise. Fewer than asked only at the end of the
  /// quota (the row then has request_count == max_requests): the units not granted are refused as exhausted.
  std::int64_t granted = 0;
};

/// Usage of a token aggregated in memory, added to the row in one batch.
struct UsageDelta {
  std::string token_id;
  std::int64_t requests = 0;
  std::int64_t cache_hits = 0;
  TimePoint last_used_at{};
  std::int64_t prompt_tokens = 0;  // LLM tokens, added to the token's columns
  std::int64_t completion_tokens = 0;
};

/// Usage of one (UTC day, project, token, model) aggregated in memory, added to its usage_daily row (created when
/// missing) in one batch.
struct DailyUsageDelta {
  std::string day;  // YYYY-MM-DD, UTC
  std::string project_id, token_id;
  std::string model;  // '' when unknown
  std::int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0, cache_hits = 0;
};

/// One flush of the usage book: the token counters and the daily rows, written in one transaction.
struct UsageBatch {
  std::vector<UsageDelta> tokens;
  std::vector<DailyUsageDelta> daily;
  bool empty() const { return tokens.empty() && daily.empty(); }
};

enum class UsageGroupBy { day, model, token };

/// Filters of the usage series (GET /manage/usage). Empty optionals do not filter; the others match exactly.
struct UsageQuery {
  std::optional<std::string> project_id, token_id, model;
  std::optional<std::string> from_day, to_day;  // inclusive, YYYY-MM-DD
  UsageGroupBy group_by = UsageGroupBy::day;
};

/// One point of the usage series: the sums of the matching usage_daily rows with this key.
struct UsageRow {
  std::string key;  // the day (YYYY-MM-DD), the model or the token id
  std::int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0, cache_hits = 0;
};

/// Sums of the counters of a project's tokens.
struct UsageTotals {
  std::int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0, cache_hits = 0;
};

/// Filters of GET /manage/audit. Empty optionals do not filter; the others match exactly. `search` matches
/// (case-insensitively for ASCII) a substring of request_id, correlation_id, action, actor, method, reason, path,
/// client_ip, user_agent or metadata. Results are newest first (timestamp DESC, id DESC).
struct AuditFilter {
  std::optional<std::string> action, project_id, outcome, actor, request_id, client_ip, method, path, search,
      correlation_id;
  std::optional<TimePoint> start_time, end_time;  // inclusive bounds
  PageRequest page;
};

struct PoolStats {
  std::int64_t size = 0;     // configured maximum
  std::int64_t open = 0;     // open connections
  std::int64_t in_use = 0;   // checked out now
  std::int64_t idle = 0;     // open and not checked out
  std::int64_t waiting = 0;  // callers waiting for a connection now
  std::int64_t waits_total = 0;     // checkouts that had to wait
  std::int64_t failures_total = 0;  // failed connection attempts and checkout timeouts
};

struct HealthReport {
  bool up = false;
  double latency_ms = 0;
  std::string error;  // set when !up; never contains a password
  PoolStats pool;
};

}  // namespace llmproxy::db
