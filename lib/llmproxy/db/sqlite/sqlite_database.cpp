#include "llmproxy/db/sqlite/sqlite_database.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/rules.hpp"
#include "llmproxy/db/sql.hpp"
#include "llmproxy/db/sqlite/detail/connection.hpp"
#include "llmproxy/db/sqlite/detail/errors.hpp"
#include "llmproxy/db/sqlite/detail/migration_session.hpp"
#include "llmproxy/db/sqlite/detail/pool.hpp"
#include "llmproxy/db/sqlite/detail/queries.hpp"
#include "llmproxy/db/sqlite/detail/rows.hpp"

namespace llmproxy::db::sqlite {

namespace {

using detail::Connection;
using detail::Query;
using Clock = std::chrono::steady_clock;

detail::PoolSettings pool_settings(const config::DatabaseConfig& config) {
  detail::PoolSettings s;
  s.path = config.path;
  s.readers = std::max(config.pool_size, 1);
  s.checkout_timeout = config.connect_timeout;
  s.busy_timeout = config.statement_timeout;
  return s;
}

/// Whether a statement of db/sql.hpp that looks a row up by its key found one.
bool exists(Connection& conn, const sql::Statement& statement, const std::string& key) {
  Query q(conn, statement);
  q.bind_all(key);
  return q.next();
}

class SqliteDatabase final : public Driver {
 public:
  explicit SqliteDatabase(const config::DatabaseConfig& config) : pool_(pool_settings(config)) {}

  // --- Database ---------------------------------------------------------------------------------------------

  std::string driver_name() const override { return "sqlite"; }

  HealthReport health() override {
    HealthReport report;
    const auto start = Clock::now();
    try {
      read("health check", [](Connection& conn) { Query(conn, sql::kSelectOne).next(); });
      report.up = true;
    } catch (const std::exception& e) {
      report.error = e.what();
    }
    report.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    report.pool = pool_stats();
    return report;
  }

  PoolStats pool_stats() const override { return pool_.stats(); }

  // --- Projects ---------------------------------------------------------------------------------------------

  void create_project(const Project& p) override {
    write("create project", [&](Connection& conn) {
      Query(conn, sql::kInsertProject)
          .bind_all(p.id, p.name, p.api_key, p.is_active, p.deactivated_at, p.created_at, p.updated_at,
                    p.rate_limit_rpm)
          .run();
    });
  }

  Project get_project(const std::string& id) override {
    return read("get project", [&](Connection& conn) {
      Query q(conn, sql::kGetProject);
      q.bind_all(id);
      if (!q.next()) throw NotFound("project " + id + " not found");
      return detail::project_of(q);
    });
  }

  Page<Project> list_projects(PageRequest page) override {
    return read("list projects", [&](Connection& conn) {
      Query q(conn, detail::project_list());
      q.bind_all(page_limit(page), page_offset(page));
      return detail::page_of<Project>(q, detail::project_of);
    });
  }

  Project update_project(const std::string& id, const ProjectUpdate& update, TimePoint now) override {
    return write("update project", [&](Connection& conn) {
      Query q(conn, sql::kUpdateProject);
      const bool set_rpm = update.rate_limit_rpm.has_value();
      q.bind_all(id, update.name, update.api_key, update.is_active, now, set_rpm,
                 set_rpm ? *update.rate_limit_rpm : std::nullopt);
      if (!q.next()) throw NotFound("project " + id + " not found");
      Project p = detail::project_of(q);
      q.run();  // finish the statement so a failing commit surfaces here
      return p;
    });
  }

  // --- Tokens -----------------------------------------------------------------------------------------------

  void create_token(const Token& t) override {
    write("create token", [&](Connection& conn) {
      Query(conn, sql::kInsertToken)
          .bind_all(t.id, t.token_hash, t.token_hint, t.project_id, t.expires_at, t.is_active, t.deactivated_at,
                    t.request_count, t.max_requests, t.created_at, t.last_used_at, t.cache_hit_count, t.prompt_tokens,
                    t.completion_tokens, t.max_tokens, t.rate_limit_rpm)
          .run();
    });
  }

  Token get_token(const std::string& id) override {
    return read("get token", [&](Connection& conn) {
      Query q(conn, sql::kGetToken);
      q.bind_all(id);
      if (!q.next()) throw NotFound("token " + id + " not found");
      return detail::token_of(q);
    });
  }

  std::optional<Token> find_token_by_hash(const std::string& token_hash) override {
    return read("find token", [&](Connection& conn) -> std::optional<Token> {
      Query q(conn, sql::kFindTokenByHash);
      q.bind_all(token_hash);
      if (!q.next()) return std::nullopt;
      return detail::token_of(q);
    });
  }

  Page<Token> list_tokens(const std::optional<std::string>& project_id, PageRequest page,
                          std::optional<TokenStateFilter> state) override {
    return read("list tokens", [&](Connection& conn) {
      Query q(conn, sql::kListTokens);
      q.bind_all(project_id, page_limit(page), page_offset(page),
                 state ? std::optional<bool>(state->usable) : std::nullopt, state ? state->now : TimePoint{});
      return detail::page_of<Token>(q, detail::token_of);
    });
  }

  Token update_token(const std::string& id, const TokenUpdate& update, TimePoint now) override {
    return write("update token", [&](Connection& conn) {
      Query q(conn, sql::kUpdateToken);
      const bool set_max = update.max_requests.has_value();
      const bool set_budget = update.max_tokens.has_value();
      const bool set_rpm = update.rate_limit_rpm.has_value();
      q.bind_all(id, update.is_active, now, set_max, set_max ? *update.max_requests : std::nullopt, set_budget,
                 set_budget ? *update.max_tokens : std::nullopt, set_rpm,
                 set_rpm ? *update.rate_limit_rpm : std::nullopt);
      if (!q.next()) throw NotFound("token " + id + " not found");
      Token t = detail::token_of(q);
      q.run();
      return t;
    });
  }

  bool revoke_token(const std::string& id, TimePoint now) override {
    return write("revoke token", [&](Connection& conn) {
      if (Query(conn, sql::kRevokeToken).bind_all(id, now).run() > 0) return true;
      // No code path deletes a token on its own, so "exists" cannot change between the two statements.
      if (!exists(conn, sql::kTokenExists, id)) throw NotFound("token " + id + " not found");
      return false;
    });
  }

  RevokeResult revoke_project_tokens(const std::string& project_id, TimePoint now) override {
    return write("revoke project tokens", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      if (!exists(conn, sql::kProjectExists, project_id)) throw NotFound("project " + project_id + " not found");
      RevokeResult result;
      {
        Query count(conn, sql::kCountProjectTokens);
        count.bind_all(project_id);
        count.next();
        result.total_tokens = count.int64(0);
      }
      result.revoked_count = Query(conn, sql::kRevokeProjectTokens).bind_all(project_id, now).run();
      result.already_revoked_count = result.total_tokens - result.revoked_count;
      tx.commit();
      return result;
    });
  }

  QuotaResult consume_quota(const std::string& token_id, std::int64_t units, TimePoint now) override {
    return write("consume quota", [&](Connection& conn) {
      // IMMEDIATE: the file's write lock first, so the count read before the grant is the one it starts from,
      // also against other processes on the same file.
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      const auto increment = [&]() -> std::optional<QuotaGrant> {
        std::int64_t count_before = 0;
        {
          Query before(conn, detail::kQuotaCountBefore);
          before.bind_all(token_id);
          if (!before.next()) return std::nullopt;
          count_before = before.int64(0);
        }
        Query q(conn, detail::kConsumeQuota);
        q.bind_all(token_id, now, units);
        if (!q.next()) return std::nullopt;
        Token counted = detail::token_of(q);
        q.run();  // finish the statement before the commit
        const std::int64_t granted = counted.request_count - count_before;
        return QuotaGrant{std::move(counted), granted};
      };
      const auto current = [&]() -> std::optional<Token> {
        Query q(conn, sql::kGetToken);
        q.bind_all(token_id);
        if (!q.next()) return std::nullopt;
        return detail::token_of(q);
      };
      QuotaResult result = decide_quota(token_id, units, now, increment, current);
      tx.commit();  // a failing commit surfaces here: nothing was counted, the caller gets the error
      return result;
    });
  }

  void add_usage(const UsageBatch& batch) override {
    if (batch.empty()) return;
    for (const DailyUsageDelta& d : batch.daily) require_valid_day(d.day, "add usage: day");
    const std::vector<UsageDelta> tokens = merge_usage(batch.tokens);
    const std::vector<DailyUsageDelta> daily = merge_daily_usage(batch.daily);
    write("add usage", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      for (const UsageDelta& d : tokens) {
        Query(conn, detail::kAddUsage)
            .bind_all(d.token_id, d.requests, d.cache_hits, d.last_used_at, d.prompt_tokens, d.completion_tokens)
            .run();
      }
      for (const DailyUsageDelta& d : daily) {
        Query(conn, detail::kAddDailyUsage)
            .bind_all(d.day, d.project_id, d.token_id, d.model, d.requests, d.prompt_tokens, d.completion_tokens,
                      d.cache_hits)
            .run();
      }
      tx.commit();
    });
  }

  // --- Usage ------------------------------------------------------------------------------------------------

  std::vector<UsageRow> query_usage(const UsageQuery& uq) override {
    if (uq.from_day) require_valid_day(*uq.from_day, "query usage: from");
    if (uq.to_day) require_valid_day(*uq.to_day, "query usage: to");
    return read("query usage", [&](Connection& conn) {
      Query q(conn, detail::usage_query(uq.group_by));
      q.bind_all(uq.project_id, uq.token_id, uq.model, uq.from_day, uq.to_day);
      std::vector<UsageRow> rows;
      while (q.next()) rows.push_back(detail::usage_row_of(q));
      return rows;
    });
  }

  UsageTotals project_usage_totals(const std::string& project_id) override {
    return read("project usage totals", [&](Connection& conn) {
      Query q(conn, sql::kProjectUsageTotals);
      q.bind_all(project_id);
      if (!q.next()) throw NotFound("project " + project_id + " not found");
      return UsageTotals{q.int64(0), q.int64(1), q.int64(2), q.int64(3)};
    });
  }

  // --- Audit ------------------------------------------------------------------------------------------------

  void insert_audit_events(const std::vector<AuditEvent>& events) override {
    if (events.empty()) return;
    write("insert audit events", [&](Connection& conn) {
      SQLite::Transaction tx(conn.db(), SQLite::TransactionBehavior::IMMEDIATE);
      for (const AuditEvent& e : events) {
        Query(conn, sql::kInsertAuditEvent)
            .bind_all(e.id, e.timestamp, e.action, e.actor, e.outcome, e.project_id, e.request_id, e.correlation_id,
                      e.client_ip, e.method, e.path, e.user_agent, e.reason, e.token_id, e.metadata)
            .run();
      }
      tx.commit();
    });
  }

  Page<AuditEvent> list_audit_events(const AuditFilter& f) override {
    std::optional<std::string> search;
    if (f.search) search = like_contains_pattern(*f.search);
    return read("list audit events", [&](Connection& conn) {
      Query q(conn, detail::audit_list());
      q.bind_all(f.action, f.project_id, f.outcome, f.actor, f.request_id, f.client_ip, f.method, f.path, f.start_time,
                 f.end_time, search, page_limit(f.page), page_offset(f.page), f.correlation_id);
      return detail::page_of<AuditEvent>(q, detail::audit_event_of);
    });
  }

  AuditEvent get_audit_event(const std::string& id) override {
    return read("get audit event", [&](Connection& conn) {
      Query q(conn, sql::kGetAuditEvent);
      q.bind_all(id);
      if (!q.next()) throw NotFound("audit event " + id + " not found");
      return detail::audit_event_of(q);
    });
  }

  // --- migrate::Backend -------------------------------------------------------------------------------------

  std::vector<migrate::AppliedMigration> read_applied() override {
    return read("read applied migrations", [](Connection& conn) { return detail::read_applied(conn); });
  }

  std::unique_ptr<migrate::Session> begin_session(std::chrono::milliseconds lock_timeout) override {
    return std::make_unique<detail::MigrationSession>(pool_, lock_timeout);
  }

  const std::vector<migrate::MigrationFile>& files() const override { return migrate::embedded_sqlite(); }

 private:
  /// Runs fn(writer connection) with the writer held (every write, one at a time); errors as db::Error.
  template <class Fn>
  auto write(std::string_view operation, Fn&& fn) -> std::invoke_result_t<Fn&, Connection&> {
    try {
      auto writer = pool_.writer();
      return fn(writer.connection());
    } catch (...) {
      detail::rethrow_as_db_error(operation);
    }
  }

  /// Runs fn(reader connection) (":memory:": the writer); a reader whose file handle failed is closed.
  template <class Fn>
  auto read(std::string_view operation, Fn&& fn) -> std::invoke_result_t<Fn&, Connection&> {
    try {
      auto reader = pool_.reader();
      try {
        return fn(reader.connection());
      } catch (...) {
        if (detail::current_exception_breaks_connection()) reader.discard();
        throw;
      }
    } catch (...) {
      detail::rethrow_as_db_error(operation);
    }
  }

  detail::Pool pool_;
};

}  // namespace

std::unique_ptr<Driver> open(const config::DatabaseConfig& config) { return std::make_unique<SqliteDatabase>(config); }

}  // namespace llmproxy::db::sqlite
