#include "llmproxy/db/sqlite/sqlite_database.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/detail/connection.hpp"
#include "llmproxy/db/sqlite/detail/errors.hpp"

namespace llmproxy::db::sqlite {

namespace {

using detail::Connection;
using detail::Query;
using detail::Role;
using detail::Value;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kMemoryPath = ":memory:";

// ---------------------------------------------------------------------------------------------------------------
// SQL. Written once with $n (see detail/placeholders.hpp); the decode_* functions read the column lists in order.

#define LLMPROXY_PROJECT_COLUMNS "id, name, api_key, is_active, deactivated_at, created_at, updated_at"
#define LLMPROXY_TOKEN_COLUMNS                                                                                   \
  "id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests, " \
  "created_at, last_used_at, cache_hit_count"
#define LLMPROXY_AUDIT_COLUMNS                                                                               \
  "id, timestamp, action, actor, outcome, project_id, request_id, correlation_id, client_ip, method, path, " \
  "user_agent, reason, token_id, metadata"

constexpr std::string_view kInsertProject =
    "INSERT INTO projects (" LLMPROXY_PROJECT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr std::string_view kSelectProject = "SELECT " LLMPROXY_PROJECT_COLUMNS " FROM projects WHERE id = $1";
constexpr std::string_view kListProjects =
    "SELECT " LLMPROXY_PROJECT_COLUMNS " FROM projects ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2";
constexpr std::string_view kCountProjects = "SELECT COUNT(*) FROM projects";
// $4 is the new is_active (NULL = unchanged); deactivated_at follows it: false -> now, true -> NULL.
constexpr std::string_view kUpdateProject =
    "UPDATE projects SET name = COALESCE($2, name), api_key = COALESCE($3, api_key), "
    "is_active = COALESCE($4, is_active), "
    "deactivated_at = CASE WHEN $4 IS NULL THEN deactivated_at WHEN $4 = 1 THEN NULL ELSE $5 END, "
    "updated_at = $5 WHERE id = $1 RETURNING " LLMPROXY_PROJECT_COLUMNS;
constexpr std::string_view kProjectExists = "SELECT 1 FROM projects WHERE id = $1";

constexpr std::string_view kInsertToken =
    "INSERT INTO tokens (" LLMPROXY_TOKEN_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
constexpr std::string_view kSelectToken = "SELECT " LLMPROXY_TOKEN_COLUMNS " FROM tokens WHERE id = $1";
constexpr std::string_view kSelectTokenByHash = "SELECT " LLMPROXY_TOKEN_COLUMNS " FROM tokens WHERE token_hash = $1";
constexpr std::string_view kListTokens =
    "SELECT " LLMPROXY_TOKEN_COLUMNS " FROM tokens ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2";
constexpr std::string_view kCountTokens = "SELECT COUNT(*) FROM tokens";
constexpr std::string_view kListProjectTokens =
    "SELECT " LLMPROXY_TOKEN_COLUMNS
    " FROM tokens WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";
constexpr std::string_view kCountProjectTokens = "SELECT COUNT(*) FROM tokens WHERE project_id = $1";
// $2 is the new is_active (NULL = unchanged), $3 now; $4 = 1 when max_requests is to be set to $5 (NULL =
// unlimited), so "set to unlimited" and "leave alone" stay distinct.
constexpr std::string_view kUpdateToken =
    "UPDATE tokens SET is_active = COALESCE($2, is_active), "
    "deactivated_at = CASE WHEN $2 IS NULL THEN deactivated_at WHEN $2 = 1 THEN NULL ELSE $3 END, "
    "max_requests = CASE WHEN $4 = 1 THEN $5 ELSE max_requests END "
    "WHERE id = $1 RETURNING " LLMPROXY_TOKEN_COLUMNS;
constexpr std::string_view kRevokeToken =
    "UPDATE tokens SET is_active = 0, deactivated_at = $2 WHERE id = $1 AND is_active = 1";
constexpr std::string_view kTokenExists = "SELECT 1 FROM tokens WHERE id = $1";
constexpr std::string_view kCountProjectTokensByState =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN is_active = 0 THEN 1 ELSE 0 END), 0) FROM tokens "
    "WHERE project_id = $1";
constexpr std::string_view kRevokeProjectTokens =
    "UPDATE tokens SET is_active = 0, deactivated_at = $2 WHERE project_id = $1 AND is_active = 1";
// The whole quota check is this one statement, so it is exact under any concurrency and across processes:
// SQLite serializes writers on the database file.
constexpr std::string_view kConsumeQuota =
    "UPDATE tokens SET request_count = request_count + 1, last_used_at = $2 "
    "WHERE id = $1 AND is_active = 1 AND (expires_at IS NULL OR expires_at > $2) "
    "AND (max_requests IS NULL OR request_count < max_requests) RETURNING " LLMPROXY_TOKEN_COLUMNS;
// Timestamps are fixed-width text, so `<` compares them as times.
constexpr std::string_view kAddUsage =
    "UPDATE tokens SET request_count = request_count + $2, cache_hit_count = cache_hit_count + $3, "
    "last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $4 THEN $4 ELSE last_used_at END "
    "WHERE id = $1";

constexpr std::string_view kInsertAuditEvent =
    "INSERT INTO audit_events (" LLMPROXY_AUDIT_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
constexpr std::string_view kSelectAuditEvent = "SELECT " LLMPROXY_AUDIT_COLUMNS " FROM audit_events WHERE id = $1";

constexpr std::string_view kSelectOne = "SELECT 1";

constexpr std::string_view kSchemaMigrationsExists =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
constexpr std::string_view kSelectApplied =
    "SELECT version, name, checksum, applied_at, execution_ms FROM schema_migrations ORDER BY version";
constexpr std::string_view kMigrationRecorded = "SELECT 1 FROM schema_migrations WHERE version = $1";
constexpr std::string_view kInsertMigration =
    "INSERT INTO schema_migrations (version, name, checksum, applied_at, execution_ms) VALUES ($1, $2, $3, $4, $5)";
constexpr std::string_view kDeleteMigration = "DELETE FROM schema_migrations WHERE version = $1";
const std::string kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, "
    "execution_ms INTEGER NOT NULL)";

constexpr std::string_view kAuditColumns = LLMPROXY_AUDIT_COLUMNS;  // the audit list builds its text at run time

#undef LLMPROXY_PROJECT_COLUMNS
#undef LLMPROXY_TOKEN_COLUMNS
#undef LLMPROXY_AUDIT_COLUMNS

// ---------------------------------------------------------------------------------------------------------------
// Rows

Project decode_project(const Query& q) {
  Project p;
  p.id = q.text(0);
  p.name = q.text(1);
  p.api_key = q.text(2);
  p.is_active = q.boolean(3);
  p.deactivated_at = q.opt_time(4);
  p.created_at = q.time(5);
  p.updated_at = q.time(6);
  return p;
}

Token decode_token(const Query& q) {
  Token t;
  t.id = q.text(0);
  t.token_hash = q.text(1);
  t.token_hint = q.text(2);
  t.project_id = q.text(3);
  t.expires_at = q.opt_time(4);
  t.is_active = q.boolean(5);
  t.deactivated_at = q.opt_time(6);
  t.request_count = q.int64(7);
  t.max_requests = q.opt_int64(8);
  t.created_at = q.time(9);
  t.last_used_at = q.opt_time(10);
  t.cache_hit_count = q.int64(11);
  return t;
}

AuditEvent decode_audit_event(const Query& q) {
  AuditEvent e;
  e.id = q.text(0);
  e.timestamp = q.time(1);
  e.action = q.text(2);
  e.actor = q.text(3);
  e.outcome = q.text(4);
  e.project_id = q.opt_text(5);
  e.request_id = q.opt_text(6);
  e.correlation_id = q.opt_text(7);
  e.client_ip = q.opt_text(8);
  e.method = q.opt_text(9);
  e.path = q.opt_text(10);
  e.user_agent = q.opt_text(11);
  e.reason = q.opt_text(12);
  e.token_id = q.opt_text(13);
  e.metadata = q.opt_text(14);
  return e;
}

std::int64_t page_limit(PageRequest page) { return std::max<std::int64_t>(page.page_size, 1); }

std::int64_t page_offset(PageRequest page) {
  const std::int64_t size = page_limit(page);
  const std::int64_t skipped_pages = std::max<std::int64_t>(page.page, 1) - 1;
  // A page far past the end must not overflow; it simply returns no rows.
  if (skipped_pages > std::numeric_limits<std::int64_t>::max() / size) return std::numeric_limits<std::int64_t>::max();
  return skipped_pages * size;
}

std::int64_t count(Connection& conn, std::string_view sql, const std::optional<std::string>& arg = std::nullopt) {
  Query q(conn, sql);
  if (arg) q.bind(1, *arg);
  q.next();
  return q.int64(0);
}

/// Escapes LIKE wildcards so the search text matches literally (with ESCAPE '\').
std::string like_contains_pattern(std::string_view text) {
  std::string pattern = "%";
  for (const char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

/// Statements of a migration file shown in errors: leading blank and `--` comment lines skipped, 200 chars max.
std::string statement_head(const std::string& statement) {
  std::size_t start = 0;
  while (start < statement.size()) {
    const auto first = statement.find_first_not_of(" \t\r\n", start);
    if (first == std::string::npos) return {};
    if (statement.compare(first, 2, "--") != 0) {
      start = first;
      break;
    }
    const auto nl = statement.find('\n', first);
    if (nl == std::string::npos) return {};
    start = nl + 1;
  }
  const auto last = statement.find_last_not_of(" \t\r\n");
  const std::string body = statement.substr(start, last + 1 - start);
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

std::string migration_file_name(const migrate::MigrationFile& file, bool up) {
  std::ostringstream name;
  name << std::setw(4) << std::setfill('0') << file.version << '_' << file.name << (up ? ".up.sql" : ".down.sql");
  return name.str();
}

bool is_busy(const SQLite::Exception& e) {
  const int primary = e.getErrorCode() & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// Connection-level failures after which a pooled reader is dropped rather than reused.
bool is_connection_failure(const SQLite::Exception& e) {
  const int primary = e.getErrorCode() & 0xff;
  return primary == SQLITE_IOERR || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_CANTOPEN;
}

/// Runs `fn`, translating whatever it throws into the db:: tree (the interface promises nothing else escapes).
template <class Fn>
auto translated(std::string_view operation, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    const int code = e.getExtendedErrorCode() > 0 ? e.getExtendedErrorCode() : e.getErrorCode();
    detail::throw_translated(code, operation, e.what());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("sqlite: " + std::string(operation) + ": " + e.what());
  }
}

/// Exclusive use of the writer connection with a bounded wait. A flag under a plain mutex + condition variable
/// rather than a timed_mutex: the "held" and "waiting" counts it needs for pool statistics come for free.
class WriterGate {
 public:
  /// Holds the writer for one scope; the destructor lets the next caller in.
  class Hold {
   public:
    explicit Hold(WriterGate* gate) : gate_(gate) {}
    Hold(Hold&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Hold& operator=(Hold&&) = delete;
    ~Hold() {
      if (gate_ != nullptr) gate_->release();
    }

   private:
    WriterGate* gate_;
  };

  /// Waits at most `timeout` for the writer; db::Unavailable naming `setting` after that (counted as a failure).
  Hold acquire(milliseconds timeout, std::string_view setting, std::atomic<std::int64_t>& waits_total,
               std::atomic<std::int64_t>& failures_total) {
    std::unique_lock lock(mutex_);
    if (held_) {
      waits_total.fetch_add(1, std::memory_order_relaxed);
      ++waiting_;
      const bool free = cv_.wait_for(lock, timeout, [&] { return !held_; });
      --waiting_;
      if (!free) {
        failures_total.fetch_add(1, std::memory_order_relaxed);
        throw Unavailable("sqlite: timed out after " + std::to_string(timeout.count()) +
                          "ms waiting for the writer connection (" + std::string(setting) + ")");
      }
    }
    held_ = true;
    return Hold(this);
  }

  /// {held (0/1), waiting}. Never waits for database work: the mutex only guards these two fields.
  std::pair<std::int64_t, std::int64_t> counts() const {
    std::lock_guard lock(mutex_);
    return {held_ ? 1 : 0, waiting_};
  }

 private:
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    cv_.notify_one();
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool held_ = false;
  std::int64_t waiting_ = 0;
};

/// BEGIN ... COMMIT by hand (BEGIN IMMEDIATE with retries for migrations); rolls back unless committed.
class ManualTransaction {
 public:
  explicit ManualTransaction(Connection& conn) : conn_(conn) {}
  ~ManualTransaction() {
    // Some errors (SQLITE_FULL, IOERR) already rolled back; then ROLLBACK fails harmlessly.
    if (open_) conn_.db().tryExec("ROLLBACK");
  }
  ManualTransaction(const ManualTransaction&) = delete;
  ManualTransaction& operator=(const ManualTransaction&) = delete;
  void commit() {
    conn_.exec("COMMIT");
    open_ = false;
  }

 private:
  Connection& conn_;
  bool open_ = true;
};

/// Sets a connection's busy timeout for one scope (migrations wait up to MIGRATION_LOCK_TIMEOUT).
class BusyTimeoutScope {
 public:
  BusyTimeoutScope(Connection& conn, milliseconds timeout) : conn_(conn), saved_(conn.busy_timeout()) {
    conn_.set_busy_timeout(timeout);
  }
  ~BusyTimeoutScope() {
    try {
      conn_.set_busy_timeout(saved_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): setting a busy handler cannot fail on an open connection
    }
  }
  BusyTimeoutScope(const BusyTimeoutScope&) = delete;
  BusyTimeoutScope& operator=(const BusyTimeoutScope&) = delete;

 private:
  Connection& conn_;
  milliseconds saved_;
};

std::vector<migrate::AppliedMigration> read_applied_rows(Connection& conn) {
  std::vector<migrate::AppliedMigration> rows;
  {
    Query exists(conn, kSchemaMigrationsExists);
    if (!exists.next()) return rows;
  }
  Query q(conn, kSelectApplied);
  while (q.next()) {
    migrate::AppliedMigration row;
    row.version = q.int64(0);
    row.name = q.text(1);
    row.checksum = q.text(2);
    row.applied_at = q.time(3);
    row.execution_ms = q.int64(4);
    rows.push_back(std::move(row));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------

class SqliteDatabase final : public Driver {
 public:
  explicit SqliteDatabase(const config::DatabaseConfig& config)
      : path_(config.path),
        memory_(config.path == kMemoryPath),
        pool_size_(std::max(config.pool_size, 1)),
        connect_timeout_(config.connect_timeout),
        statement_timeout_(config.statement_timeout) {
    if (!memory_) create_parent_directory();
    try {
      writer_ = std::make_unique<Connection>(path_, Role::writer, statement_timeout_);
    } catch (const SQLite::Exception& e) {
      throw Unavailable("sqlite: cannot open database " + path_ + ": " + e.what());
    }
  }

  // --- Database ---------------------------------------------------------------------------------------------

  std::string driver_name() const override { return "sqlite"; }

  HealthReport health() override {
    HealthReport report;
    const auto start = Clock::now();
    try {
      read("health check", [](Connection& conn) {
        Query q(conn, kSelectOne);
        q.next();
      });
      report.up = true;
    } catch (const std::exception& e) {
      report.error = e.what();
    } catch (...) {
      report.error = "sqlite: health check failed";
    }
    report.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    report.pool = pool_stats();
    return report;
  }

  PoolStats pool_stats() const override {
    // Counts cover every connection: the writer (the only one for ":memory:") plus the readers.
    PoolStats stats;
    const auto [writer_in_use, writer_waiting] = writer_gate_.counts();
    stats.waits_total = waits_total_.load(std::memory_order_relaxed);
    stats.failures_total = failures_total_.load(std::memory_order_relaxed);
    stats.waiting = writer_waiting;
    stats.size = 1;
    stats.open = 1;
    stats.in_use = writer_in_use;
    if (!memory_) {
      std::lock_guard lock(pool_mutex_);
      stats.size += pool_size_;
      stats.open += readers_open_;
      stats.in_use += readers_in_use_;
      stats.waiting += readers_waiting_;
    }
    stats.idle = stats.open - stats.in_use;
    return stats;
  }

  // --- Projects ---------------------------------------------------------------------------------------------

  void create_project(const Project& p) override {
    write("create project", [&](Connection& conn) {
      Query(conn, kInsertProject)
          .bind_all(p.id, p.name, p.api_key, p.is_active, p.deactivated_at, p.created_at, p.updated_at)
          .run();
    });
  }

  Project get_project(const std::string& id) override {
    return read("get project", [&](Connection& conn) {
      Query q(conn, kSelectProject);
      q.bind_all(id);
      if (!q.next()) throw NotFound("project not found: " + id);
      return decode_project(q);
    });
  }

  Page<Project> list_projects(PageRequest page) override {
    return read("list projects", [&](Connection& conn) {
      Page<Project> result;
      SQLite::Transaction snapshot(conn.db(), SQLite::TransactionBehavior::DEFERRED);  // count and page agree
      result.total_count = count(conn, kCountProjects);
      Query q(conn, kListProjects);
      q.bind_all(page_limit(page), page_offset(page));
      while (q.next()) result.items.push_back(decode_project(q));
      return result;
    });
  }

  Project update_project(const std::string& id, const ProjectUpdate& update, TimePoint now) override {
    return write("update project", [&](Connection& conn) {
      Query q(conn, kUpdateProject);
      q.bind_all(id, update.name, update.api_key, update.is_active, now);
      if (!q.next()) throw NotFound("project not found: " + id);
      Project p = decode_project(q);
      q.run();  // finish the statement so a failing commit surfaces here
      return p;
    });
  }

  // --- Tokens -----------------------------------------------------------------------------------------------

  void create_token(const Token& t) override {
    write("create token", [&](Connection& conn) {
      Query(conn, kInsertToken)
          .bind_all(t.id, t.token_hash, t.token_hint, t.project_id, t.expires_at, t.is_active, t.deactivated_at,
                    t.request_count, t.max_requests, t.created_at, t.last_used_at, t.cache_hit_count)
          .run();
    });
  }

  Token get_token(const std::string& id) override {
    return read("get token", [&](Connection& conn) {
      Query q(conn, kSelectToken);
      q.bind_all(id);
      if (!q.next()) throw NotFound("token not found: " + id);
      return decode_token(q);
    });
  }

  std::optional<Token> find_token_by_hash(const std::string& token_hash) override {
    return read("find token", [&](Connection& conn) -> std::optional<Token> {
      Query q(conn, kSelectTokenByHash);
      q.bind_all(token_hash);
      if (!q.next()) return std::nullopt;
      return decode_token(q);
    });
  }

  Page<Token> list_tokens(const std::optional<std::string>& project_id, PageRequest page) override {
    return read("list tokens", [&](Connection& conn) {
      Page<Token> result;
      SQLite::Transaction snapshot(conn.db(), SQLite::TransactionBehavior::DEFERRED);  // count and page agree
      std::optional<Query> q;
      if (project_id) {
        result.total_count = count(conn, kCountProjectTokens, project_id);
        q.emplace(conn, kListProjectTokens);
        q->bind_all(*project_id, page_limit(page), page_offset(page));
      } else {
        result.total_count = count(conn, kCountTokens);
        q.emplace(conn, kListTokens);
        q->bind_all(page_limit(page), page_offset(page));
      }
      while (q->next()) result.items.push_back(decode_token(*q));
      return result;
    });
  }

  Token update_token(const std::string& id, const TokenUpdate& update, TimePoint now) override {
    return write("update token", [&](Connection& conn) {
      Query q(conn, kUpdateToken);
      const bool set_max = update.max_requests.has_value();
      q.bind_all(id, update.is_active, now, set_max, set_max ? *update.max_requests : std::nullopt);
      if (!q.next()) throw NotFound("token not found: " + id);
      Token t = decode_token(q);
      q.run();
      return t;
    });
  }

  bool revoke_token(const std::string& id, TimePoint now) override {
    return write("revoke token", [&](Connection& conn) {
      if (Query(conn, kRevokeToken).bind_all(id, now).run() > 0) return true;
      // The writer lock keeps other writers of this process out between the two statements; no code path
      // deletes tokens, so "exists" cannot change under us.
      Query exists(conn, kTokenExists);
      exists.bind_all(id);
      if (!exists.next()) throw NotFound("token not found: " + id);
      return false;
    });
  }

  RevokeResult revoke_project_tokens(const std::string& project_id, TimePoint now) override {
    return write("revoke project tokens", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      {
        Query exists(conn, kProjectExists);
        exists.bind_all(project_id);
        if (!exists.next()) throw NotFound("project not found: " + project_id);
      }
      RevokeResult result;
      {
        Query counts(conn, kCountProjectTokensByState);
        counts.bind_all(project_id);
        counts.next();
        result.total_tokens = counts.int64(0);
        result.already_revoked_count = counts.int64(1);
      }
      result.revoked_count = Query(conn, kRevokeProjectTokens).bind_all(project_id, now).run();
      tx.commit();
      return result;
    });
  }

  QuotaResult consume_quota(const std::string& token_id, TimePoint now) override {
    return write("consume quota", [&](Connection& conn) {
      // A refusal is classified from a second read. Another process may change the row in between (re-activate
      // it, raise its limit); then the row looks acceptable and the increment is simply tried again.
      constexpr int kAttempts = 3;
      QuotaResult result;
      for (int attempt = 0; attempt < kAttempts; ++attempt) {
        {
          Query q(conn, kConsumeQuota);
          q.bind_all(token_id, now);
          if (q.next()) {
            result.outcome = QuotaOutcome::accepted;
            result.token = decode_token(q);
            q.run();
            return result;
          }
        }
        Query row(conn, kSelectToken);
        row.bind_all(token_id);
        if (!row.next()) return QuotaResult{QuotaOutcome::not_found, std::nullopt};
        result.token = decode_token(row);
        const Token& t = *result.token;
        if (!t.is_active) {
          result.outcome = QuotaOutcome::inactive;
        } else if (t.expires_at && *t.expires_at <= now) {
          result.outcome = QuotaOutcome::expired;
        } else if (t.max_requests && t.request_count >= *t.max_requests) {
          result.outcome = QuotaOutcome::exhausted;
        } else {
          continue;
        }
        return result;
      }
      // Changed under us on every attempt: refuse this one request rather than loop.
      result.outcome = QuotaOutcome::exhausted;
      return result;
    });
  }

  void add_usage(const std::vector<UsageDelta>& deltas) override {
    if (deltas.empty()) return;
    write("add usage", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      for (const UsageDelta& d : deltas) {
        Query(conn, kAddUsage).bind_all(d.token_id, d.requests, d.cache_hits, d.last_used_at).run();
      }
      tx.commit();
    });
  }

  // --- Audit ------------------------------------------------------------------------------------------------

  void insert_audit_events(const std::vector<AuditEvent>& events) override {
    if (events.empty()) return;
    write("insert audit events", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      for (const AuditEvent& e : events) {
        Query(conn, kInsertAuditEvent)
            .bind_all(e.id, e.timestamp, e.action, e.actor, e.outcome, e.project_id, e.request_id, e.correlation_id,
                      e.client_ip, e.method, e.path, e.user_agent, e.reason, e.token_id, e.metadata)
            .run();
      }
      tx.commit();
    });
  }

  Page<AuditEvent> list_audit_events(const AuditFilter& filter) override {
    // The WHERE clause is assembled from fixed fragments, one per filter that is set; only the values (bound)
    // come from the caller. Each shape is prepared per call: there are too many of them to cache.
    std::string where;
    std::vector<Value> values;
    const auto add = [&](std::string_view fragment_before, std::string_view fragment_after, Value value) {
      values.push_back(std::move(value));
      where += where.empty() ? " WHERE " : " AND ";
      where.append(fragment_before).append("$").append(std::to_string(values.size())).append(fragment_after);
    };
    const auto equals = [&](std::string_view column, const std::optional<std::string>& value) {
      if (value) add(std::string(column) + " = ", "", *value);
    };
    equals("action", filter.action);
    equals("project_id", filter.project_id);
    equals("outcome", filter.outcome);
    equals("actor", filter.actor);
    equals("request_id", filter.request_id);
    equals("client_ip", filter.client_ip);
    equals("method", filter.method);
    equals("path", filter.path);
    if (filter.start_time) add("timestamp >= ", "", util::format_time(*filter.start_time));
    if (filter.end_time) add("timestamp <= ", "", util::format_time(*filter.end_time));
    if (filter.search) {
      // SQLite's LIKE is case-insensitive for ASCII, as the filter promises. NULL columns simply do not match.
      values.push_back(like_contains_pattern(*filter.search));
      const std::string p = "$" + std::to_string(values.size());
      std::string clause = "(";
      const char* columns[] = {"action", "actor", "reason", "path", "client_ip", "user_agent", "metadata"};
      for (std::size_t i = 0; i < std::size(columns); ++i) {
        if (i > 0) clause += " OR ";
        clause.append(columns[i]).append(" LIKE ").append(p).append(" ESCAPE '\\'");
      }
      clause += ")";
      where += where.empty() ? " WHERE " : " AND ";
      where += clause;
    }
    const std::string count_sql = "SELECT COUNT(*) FROM audit_events" + where;
    const std::string limit = "$" + std::to_string(values.size() + 1);
    const std::string offset = "$" + std::to_string(values.size() + 2);
    const std::string page_sql = "SELECT " + std::string(kAuditColumns) + " FROM audit_events" + where +
                                 " ORDER BY timestamp DESC, id DESC LIMIT " + limit + " OFFSET " + offset;

    return read("list audit events", [&](Connection& conn) {
      Page<AuditEvent> result;
      SQLite::Transaction snapshot(conn.db(), SQLite::TransactionBehavior::DEFERRED);  // count and page agree
      {
        Query q = Query::uncached(conn, count_sql);
        for (std::size_t i = 0; i < values.size(); ++i) q.bind(static_cast<int>(i + 1), values[i]);
        q.next();
        result.total_count = q.int64(0);
      }
      Query q = Query::uncached(conn, page_sql);
      for (std::size_t i = 0; i < values.size(); ++i) q.bind(static_cast<int>(i + 1), values[i]);
      q.bind(static_cast<int>(values.size() + 1), page_limit(filter.page));
      q.bind(static_cast<int>(values.size() + 2), page_offset(filter.page));
      while (q.next()) result.items.push_back(decode_audit_event(q));
      return result;
    });
  }

  AuditEvent get_audit_event(const std::string& id) override {
    return read("get audit event", [&](Connection& conn) {
      Query q(conn, kSelectAuditEvent);
      q.bind_all(id);
      if (!q.next()) throw NotFound("audit event not found: " + id);
      return decode_audit_event(q);
    });
  }

  // --- migrate::Backend -------------------------------------------------------------------------------------

  std::vector<migrate::AppliedMigration> read_applied() override {
    return read("read applied migrations", [](Connection& conn) { return read_applied_rows(conn); });
  }

  std::unique_ptr<migrate::Session> begin_session(milliseconds lock_timeout) override;

  const std::vector<migrate::MigrationFile>& files() const override { return migrate::embedded_sqlite(); }

  /// apply_up (up = true, checksum set) and apply_down of a Session; see migrate::Session.
  bool apply_migration(const migrate::MigrationFile& file, const std::vector<std::string>& statements,
                       const std::string* checksum, milliseconds lock_timeout);

 private:
  void create_parent_directory() const {
    const auto parent = std::filesystem::path(path_).parent_path();
    if (parent.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw Unavailable("sqlite: cannot create directory " + parent.string() + ": " + ec.message());
  }

  /// Holds the writer, waiting at most `timeout` (db::Unavailable after that).
  WriterGate::Hold lock_writer(milliseconds timeout, std::string_view setting = "DATABASE_CONNECT_TIMEOUT") {
    return writer_gate_.acquire(timeout, setting, waits_total_, failures_total_);
  }

  /// Runs fn(writer connection) with the writer held; every write goes here, one at a time.
  template <class Fn>
  auto write(std::string_view operation, Fn&& fn) -> std::invoke_result_t<Fn&, Connection&> {
    return translated(operation, [&]() -> std::invoke_result_t<Fn&, Connection&> {
      auto hold = lock_writer(connect_timeout_);
      return fn(*writer_);
    });
  }

  /// Runs fn(reader connection); with ":memory:" the one shared connection.
  template <class Fn>
  auto read(std::string_view operation, Fn&& fn) -> std::invoke_result_t<Fn&, Connection&> {
    if (memory_) return write(operation, std::forward<Fn>(fn));
    return translated(operation, [&]() -> std::invoke_result_t<Fn&, Connection&> {
      ReaderLease lease(*this);
      try {
        return fn(lease.connection());
      } catch (const SQLite::Exception& e) {
        if (is_connection_failure(e)) lease.discard();
        throw;
      }
    });
  }

  /// A reader checked out of the pool; returned (or dropped, after a connection failure) by the destructor.
  class ReaderLease {
   public:
    explicit ReaderLease(SqliteDatabase& owner) : owner_(owner), conn_(owner.acquire_reader()) {}
    ~ReaderLease() { owner_.release_reader(std::move(conn_), discard_); }
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    Connection& connection() { return *conn_; }
    void discard() { discard_ = true; }

   private:
    SqliteDatabase& owner_;
    std::unique_ptr<Connection> conn_;
    bool discard_ = false;
  };

  std::unique_ptr<Connection> acquire_reader() {
    std::unique_lock lock(pool_mutex_);
    const auto deadline = Clock::now() + connect_timeout_;
    bool counted_wait = false;
    for (;;) {
      if (!idle_readers_.empty()) {
        auto conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        ++readers_in_use_;
        return conn;
      }
      if (readers_open_ < pool_size_) {
        // Reserve the slot, then open outside the lock: opening touches the file.
        ++readers_open_;
        ++readers_in_use_;
        lock.unlock();
        try {
          return std::make_unique<Connection>(path_, Role::reader, statement_timeout_);
        } catch (...) {
          lock.lock();
          --readers_open_;
          --readers_in_use_;
          failures_total_.fetch_add(1, std::memory_order_relaxed);
          lock.unlock();
          pool_cv_.notify_one();
          throw;
        }
      }
      if (!counted_wait) {
        counted_wait = true;
        waits_total_.fetch_add(1, std::memory_order_relaxed);
      }
      ++readers_waiting_;
      const bool ready =
          pool_cv_.wait_until(lock, deadline, [&] { return !idle_readers_.empty() || readers_open_ < pool_size_; });
      --readers_waiting_;
      if (!ready) {
        failures_total_.fetch_add(1, std::memory_order_relaxed);
        throw Unavailable("sqlite: timed out after " + std::to_string(connect_timeout_.count()) +
                          "ms waiting for a free reader connection (DATABASE_POOL_SIZE=" + std::to_string(pool_size_) +
                          ")");
      }
    }
  }

  void release_reader(std::unique_ptr<Connection> conn, bool discard) {
    std::unique_ptr<Connection> dropped;  // closed after the pool lock is released
    {
      std::lock_guard lock(pool_mutex_);
      --readers_in_use_;
      if (discard || !conn) {
        --readers_open_;
        dropped = std::move(conn);
      } else {
        idle_readers_.push_back(std::move(conn));
      }
    }
    pool_cv_.notify_one();
  }

  const std::string path_;
  const bool memory_;
  const std::int64_t pool_size_;
  const milliseconds connect_timeout_;
  const milliseconds statement_timeout_;

  // The writer: every write, and with ":memory:" every call. Used only while holding writer_gate_.
  WriterGate writer_gate_;
  std::unique_ptr<Connection> writer_;

  // Statistics: atomics, read by pool_stats() without any lock held by database work.
  std::atomic<std::int64_t> waits_total_{0};
  std::atomic<std::int64_t> failures_total_{0};

  // The reader pool. pool_mutex_ guards these fields only and is never held during database work. Declared after
  // writer_ so the readers close first.
  mutable std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  std::int64_t readers_open_ = 0;
  std::int64_t readers_in_use_ = 0;
  std::int64_t readers_waiting_ = 0;
};

/// SQLite has no session-long lock: each apply takes the database write lock with BEGIN IMMEDIATE, and checks the
/// version inside that transaction, so two processes never apply the same migration.
class SqliteSession final : public migrate::Session {
 public:
  SqliteSession(SqliteDatabase& db, milliseconds lock_timeout) : db_(db), lock_timeout_(lock_timeout) {}

  std::vector<migrate::AppliedMigration> applied() override { return db_.read_applied(); }

  bool apply_up(const migrate::MigrationFile& file, const std::vector<std::string>& statements,
                const std::string& checksum) override {
    return db_.apply_migration(file, statements, &checksum, lock_timeout_);
  }

  bool apply_down(const migrate::MigrationFile& file, const std::vector<std::string>& statements) override {
    return db_.apply_migration(file, statements, nullptr, lock_timeout_);
  }

 private:
  SqliteDatabase& db_;
  const milliseconds lock_timeout_;
};

std::string lock_timeout_message(milliseconds lock_timeout) {
  return "timed out after " + std::to_string(lock_timeout.count()) +
         "ms waiting for the SQLite write lock held by another process; stop it or raise MIGRATION_LOCK_TIMEOUT";
}

std::unique_ptr<migrate::Session> SqliteDatabase::begin_session(milliseconds lock_timeout) {
  try {
    auto hold = lock_writer(lock_timeout, "MIGRATION_LOCK_TIMEOUT");
    BusyTimeoutScope wait_for_lock(*writer_, lock_timeout);
    writer_->exec(kCreateSchemaMigrations);
  } catch (const SQLite::Exception& e) {
    if (is_busy(e))
      throw migrate::MigrationError("cannot create schema_migrations: " + lock_timeout_message(lock_timeout));
    throw migrate::MigrationError(std::string("cannot create schema_migrations: ") + e.what());
  } catch (const Unavailable& e) {
    throw migrate::MigrationError(std::string("cannot create schema_migrations: ") + e.what());
  }
  return std::make_unique<SqliteSession>(*this, lock_timeout);
}

bool SqliteDatabase::apply_migration(const migrate::MigrationFile& file, const std::vector<std::string>& statements,
                                     const std::string* checksum, milliseconds lock_timeout) {
  const bool up = checksum != nullptr;
  const std::string file_name = migration_file_name(file, up);
  const auto fail = [&](const std::string& what) -> migrate::MigrationError {
    return migrate::MigrationError("migration " + file_name + " failed: " + what +
                                   "; the transaction was rolled back, nothing of this file was applied");
  };

  // One deadline for both waits: for this process's writer, then for the database write lock.
  const auto deadline = Clock::now() + lock_timeout;
  std::optional<WriterGate::Hold> hold;
  try {
    hold.emplace(lock_writer(lock_timeout, "MIGRATION_LOCK_TIMEOUT"));
  } catch (const Unavailable& e) {
    throw migrate::MigrationError("migration " + file_name + ": " + e.what());
  }
  Connection& conn = *writer_;

  // BEGIN IMMEDIATE takes the database write lock now, before the version check; the busy handler waits for it,
  // and a BUSY it does not wait for (another process's deadlock avoidance) is retried until the deadline.
  for (;;) {
    const auto remaining = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    try {
      BusyTimeoutScope wait_for_lock(conn, remaining);
      conn.exec("BEGIN IMMEDIATE");
      break;
    } catch (const SQLite::Exception& e) {
      if (!is_busy(e)) throw fail(std::string("cannot begin the transaction: ") + e.what());
      if (Clock::now() >= deadline)
        throw migrate::MigrationError("migration " + file_name + ": " + lock_timeout_message(lock_timeout));
      std::this_thread::sleep_for(std::min(milliseconds(50), remaining));
    }
  }
  ManualTransaction tx(conn);

  try {
    bool recorded = false;
    {
      Query q(conn, kMigrationRecorded);
      q.bind_all(file.version);
      recorded = q.next();
    }
    if (recorded == up) return false;  // already in the requested state; tx rolls back the read

    const auto start = Clock::now();
    for (const std::string& statement : statements) {
      try {
        conn.exec(statement);
      } catch (const SQLite::Exception& e) {
        throw fail(std::string(e.what()) + "; statement: " + statement_head(statement));
      }
    }
    const auto execution_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();

    if (up) {
      Query(conn, kInsertMigration)
          .bind_all(file.version, file.name, *checksum, util::now(), static_cast<std::int64_t>(execution_ms))
          .run();
    } else {
      Query(conn, kDeleteMigration).bind_all(file.version).run();
    }
    tx.commit();
    return true;
  } catch (const migrate::MigrationError&) {
    throw;
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
}

}  // namespace

std::unique_ptr<Driver> open(const config::DatabaseConfig& config) { return std::make_unique<SqliteDatabase>(config); }

}  // namespace llmproxy::db::sqlite
