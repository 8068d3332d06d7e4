#pragma once
/// Repository interfaces. One implementation per driver (SqliteDatabase, PostgresDatabase), each implementing
/// every interface. All methods are blocking: call them only from the DB thread pool (db::Executor), never from
/// an I/O thread. All methods are safe to call concurrently from several pool threads. They throw db::Error
/// subclasses (errors.hpp) and nothing else.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmproxy/db/models.hpp"

namespace llmproxy::db {

class ProjectRepository {
 public:
  virtual ~ProjectRepository() = default;
  /// Inserts `p` as given (id, timestamps set by the caller). Conflict on duplicate name.
  virtual void create_project(const Project& p) = 0;
  /// NotFound if absent.
  virtual Project get_project(const std::string& id) = 0;
  /// Ordered by name (byte order, on every driver), then id, like the reference.
  virtual Page<Project> list_projects(PageRequest page) = 0;
  /// Applies the set fields, sets updated_at = now; returns the updated row. NotFound, Conflict (name).
  virtual Project update_project(const std::string& id, const ProjectUpdate& update, TimePoint now) = 0;
};

class TokenRepository {
 public:
  virtual ~TokenRepository() = default;
  /// Inserts `t` as given. Invalid if the project does not exist; Conflict on duplicate hash.
  virtual void create_token(const Token& t) = 0;
  /// NotFound if absent.
  virtual Token get_token(const std::string& id) = 0;
  /// The token with this SHA-256 hex hash, if any.
  virtual std::optional<Token> find_token_by_hash(const std::string& token_hash) = 0;
  /// Optionally filtered by project and by state; ordered by created_at DESC, id DESC.
  virtual Page<Token> list_tokens(const std::optional<std::string>& project_id, PageRequest page,
                                  std::optional<TokenStateFilter> state) = 0;
  /// Applies the set fields; returns the updated row. NotFound.
  virtual Token update_token(const std::string& id, const TokenUpdate& update, TimePoint now) = 0;
  /// Sets is_active = false, deactivated_at = now if active. Returns true if it was active. NotFound.
  virtual bool revoke_token(const std::string& id, TimePoint now) = 0;
  /// Revokes every active token of the project. NotFound if the project does not exist.
  virtual RevokeResult revoke_project_tokens(const std::string& project_id, TimePoint now) = 0;
  /// One atomic conditional grant of `units` requests (>= 1) to a token: request_count += min(units,
  /// max_requests - request_count) and last_used_at = now, only if the token is active, not expired at `now` and
  /// request_count < max_requests (a token without max_requests gets every unit). QuotaResult::granted says how
  /// many units were counted (0..units); a refusal (0) is explained (inactive, expired, exhausted, not_found).
  /// Exact under any concurrency, across processes: the units granted by all calls never exceed max_requests.
  /// Throws Invalid if units < 1. Blocking (the DB executor).
  virtual QuotaResult consume_quota(const std::string& token_id, std::int64_t units, TimePoint now) = 0;
  /// Writes one usage flush in one transaction. Token deltas: request_count += requests, cache_hit_count +=
  /// cache_hits, prompt_tokens += prompt_tokens, completion_tokens += completion_tokens, last_used_at =
  /// max(last_used_at, delta.last_used_at); deltas of tokens that no longer exist are ignored. Daily deltas: added
  /// to the usage_daily row of (day, project_id, token_id, model), which is created when missing (always written,
  /// whether the token still exists or not). All or nothing: on error nothing is applied. Invalid (and nothing
  /// written) for a day that is not a valid YYYY-MM-DD date or a negative count.
  virtual void add_usage(const UsageBatch& batch) = 0;
};

class UsageRepository {
 public:
  virtual ~UsageRepository() = default;
  /// The usage series: the usage_daily rows matching the set filters, summed per key (the day, the model or the
  /// token id, as q.group_by says), ordered by key ascending (byte order). Invalid for a from/to day that is not a
  /// valid YYYY-MM-DD date.
  virtual std::vector<UsageRow> query_usage(const UsageQuery& q) = 0;
  /// Sums of the counters of the project's tokens (request_count, prompt_tokens, completion_tokens,
  /// cache_hit_count); zeros for a project without tokens. NotFound for an unknown project.
  virtual UsageTotals project_usage_totals(const std::string& project_id) = 0;
};

class AuditRepository {
 public:
  virtual ~AuditRepository() = default;
  /// Inserts all events in one transaction.
  virtual void insert_audit_events(const std::vector<AuditEvent>& events) = 0;
  /// Filtered, paginated, newest first (timestamp DESC, id DESC), with the total count of matches.
  virtual Page<AuditEvent> list_audit_events(const AuditFilter& filter) = 0;
  /// NotFound if absent.
  virtual AuditEvent get_audit_event(const std::string& id) = 0;
};

/// A database: every repository plus health. Owned by main; shared by reference.
class Database : public ProjectRepository, public TokenRepository, public UsageRepository, public AuditRepository {
 public:
  /// "sqlite" or "postgres".
  virtual std::string driver_name() const = 0;
  /// A cheap round trip (SELECT 1) with its latency plus pool statistics. Never throws.
  virtual HealthReport health() = 0;
  /// Pool statistics without a round trip. Never throws, never blocks on the database.
  virtual PoolStats pool_stats() const = 0;
};

}  // namespace llmproxy::db
