#pragma once
/// Validates withering tokens on the hot path (SPEC §6.1, §6.3): token cache (LRU + TTL), negative cache,
/// project cache (active flag + decrypted key), exact quotas through the atomic conditional grant (coalesced per
/// token: one statement in flight per token, asking for every request waiting), and batched usage accounting for
/// unlimited tokens.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/lifecycle/readiness.hpp"

namespace llmproxy::ratelimit {
class Limiter;
}
#include "llmproxy/util/time.hpp"

namespace boost::asio {
class io_context;
}
namespace llmproxy::db {
class Database;
class Executor;
}  // namespace llmproxy::db
namespace llmproxy::util {
class Cipher;
}
namespace llmproxy::audit {
class Auditor;
}
namespace llmproxy::metrics {
class Registry;
}

namespace llmproxy::auth {

struct Options {
  std::chrono::milliseconds token_cache_ttl{30000};
  std::size_t token_cache_max = 100000;
  std::chrono::milliseconds negative_cache_ttl{5000};
  std::chrono::milliseconds project_cache_ttl{5000};
  /// While the database is unavailable, token, negative and project entries are served this long past their
  /// TTL (the last state the database confirmed; SPEC §6.3). 0: never.
  std::chrono::milliseconds cache_stale_if_error{3600000};
  /// Once stale entries are being served (an outage), they answer without trying the database first, except
  /// for one request per this interval, which probes it (so a hanging connect does not delay every request).
  std::chrono::milliseconds outage_probe_interval{1000};
  bool enforce_project_active = true;
  std::chrono::milliseconds usage_flush_interval{1000};
  /// The per-minute request limits of tokens and projects (SPEC §14); null: rate_limit_rpm is not enforced.
  std::shared_ptr<ratelimit::Limiter> limiter;
};

/// Outcome of authorize(), in pipeline order. Each maps to one row of SPEC §5.2.
enum class Outcome {
  authorized,
  invalid_token,        // 401 invalid_token: missing/malformed Authorization or token format
  token_not_found,      // 401
  token_inactive,       // 401
  token_expired,        // 401
  project_inactive,     // 403
  rate_limit_exceeded,  // 429: the token's max_requests are used up
  token_budget_exceeded,   // 429: the token's max_tokens (LLM tokens) are used up
  rate_limited,            // 429 rate_limit_exceeded with Retry-After: over the token's or project's rate_limit_rpm
  rate_limit_unavailable,  // 503: the rate limit store did not answer and RATE_LIMIT_FAIL_MODE=closed
  not_admitted,         // the caller's admission check refused the request (nothing counted)
  served_from_cache,    // the caller answers from its response cache: counted as a cache hit, not a request
  service_unavailable,  // 503: the database was needed and is unavailable
};

struct Authorization {
  Outcome outcome = Outcome::invalid_token;
  std::string message;     // human-readable reason for denials
  std::string token_id;    // set once the token is known
  std::string token_hint;  // set once the token is known
  std::string project_id;  // set once the token is known
  std::string api_key;     // decrypted project key; set only when authorized
  std::chrono::seconds retry_after{0};  // Outcome::rate_limited: when one more request would be allowed
  bool has_budget = false;  // the token has max_tokens: its usage goes to the budget (UsageRecord::has_budget)
};

/// What one finished request used (SPEC §14), recorded by the proxy once the answer is out.
struct UsageRecord {
  std::string_view token_id, project_id;  // views: record_usage() copies what it keeps
  std::string_view model;                 // '' when unknown
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
  bool cache_hit = false;  // answered from the response cache
  util::TimePoint at{};    // when the request arrived (its UTC day is the usage_daily row)
  bool has_budget = false;  // Authorization::has_budget
};

struct Stats {
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;     // token lookups sent to the database
  std::uint64_t shared_lookups = 0;   // cache misses that waited for a lookup already in flight (single-flight)
  std::uint64_t negative_hits = 0;
  std::uint64_t stale_served = 0;     // requests answered from entries past their TTL while the database was down
  std::size_t cached_tokens = 0;
  std::size_t pending_usage_tokens = 0;  // distinct tokens with unflushed usage
  std::int64_t pending_usage_requests = 0;
  double seconds_since_last_flush = 0;   // flush lag
  std::uint64_t flush_failures = 0;
  std::uint64_t quota_statements = 0;  // quota grant statements run (coalesced: one per batch)
  std::uint64_t quota_requests = 0;    // requests answered by those statements
  std::uint64_t quota_granted = 0;     // units granted
};

class TokenService {
 public:
  /// `db`, `executor`, `cipher` and `auditor` (may be null) must outlive the service.
  /// `now` is injectable for tests.
  TokenService(db::Database& db, db::Executor& executor, const util::Cipher& cipher, audit::Auditor* auditor,
               Options options, std::function<util::TimePoint()> now = &util::now);
  ~TokenService();
  TokenService(const TokenService&) = delete;
  TokenService& operator=(const TokenService&) = delete;

  /// Validates `authorization_header` (the raw `Authorization` value, `Bearer sk-...`): well-formed -> known ->
  /// active -> not expired -> project active -> quota (one atomic DB statement per batch of concurrent requests
  /// of a quota token; zero DB round trips for a cached unlimited token). Counts usage of unlimited tokens in
  /// memory. Any I/O thread.
  /// Denials caused by state (inactive project, revoked token seen in the database) are audited.
  /// Floods: denials are remembered (unknown: NEGATIVE_CACHE_TTL; revoked: the longer of TOKEN_CACHE_TTL and
  /// NEGATIVE_CACHE_TTL; expired: until evicted, expiry is final), and concurrent misses of one token share one
  /// lookup. While the database is unavailable, entries past their TTL by less than cache_stale_if_error answer.
  /// `admit`, if set, runs once the token and its project were accepted and before any quota or usage is counted
  /// (the proxy's param whitelist: cost before trust, SPEC §5.5); a non-empty answer ends authorization with
  /// Outcome::not_admitted and that answer as the message, and nothing is counted.
  /// `cached`, if set, runs next with the token's project id (after `admit` accepted, before any quota or usage
  /// is counted): true means the caller will answer from its response cache (SPEC §13), so no quota is consumed;
  /// the token's cache_hit_count goes up instead (batched like usage) and the outcome is
  /// Outcome::served_from_cache.
  using CachedAnswer = std::function<boost::asio::awaitable<bool>(const std::string& project_id)>;
  boost::asio::awaitable<Authorization> authorize(std::string_view authorization_header,
                                                  std::function<std::string()> admit = {}, CachedAnswer cached = {});

  /// Adds one finished request of an authorized (or served_from_cache) token to the usage book: its LLM tokens
  /// to the token's columns, one request or one cache hit and the LLM tokens to its usage_daily row. Written by
  /// the periodic flush with the request counts, under the same no-loss rules. Any thread, never blocks on I/O.
  void record_usage(const UsageRecord& record);

  /// Drops cached state of a token / a project at once (after a management change on this instance).
  void invalidate_token(const std::string& token_id);
  void invalidate_project(const std::string& project_id);

  /// Starts the periodic usage flush (every usage_flush_interval) on `io`.
  void start(boost::asio::io_context& io);
  /// Stops the timer and flushes the remaining usage synchronously (blocking; call after the I/O threads
  /// stopped). Returns false if the database refused the final flush (deltas are then logged as lost, with counts).
  bool stop_and_flush();
  /// One flush now, blocking (tests and shutdown). Deltas are kept and retried if it fails.
  bool flush_blocking();

  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Registers the token cache, stale-if-error, quota grant and usage metrics (llm_proxy_token_cache_*,
/// llm_proxy_token_lookups_shared_total, llm_proxy_stale_served_total, llm_proxy_quota_grant_*_total,
/// llm_proxy_quota_granted_total, llm_proxy_usage_*), sampled from stats(); they read 0 until `tokens` is
/// published.
void register_metrics(metrics::Registry& registry, lifecycle::Published<const TokenService> tokens);

}  // namespace llmproxy::auth
