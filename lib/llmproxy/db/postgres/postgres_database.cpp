#include "llmproxy/db/postgres/postgres_database.hpp"

#include <algorithm>
#include <chrono>
#include <pqxx/nontransaction>
#include <pqxx/prepared_statement>
#include <pqxx/result>
#include <pqxx/transaction>
#include <string>
#include <type_traits>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/connection.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"
#include "llmproxy/db/postgres/detail/migration_session.hpp"
#include "llmproxy/db/postgres/detail/params.hpp"
#include "llmproxy/db/postgres/detail/pool.hpp"
#include "llmproxy/db/postgres/detail/queries.hpp"
#include "llmproxy/db/postgres/detail/rows.hpp"
#include "llmproxy/db/rules.hpp"
#include "llmproxy/db/sql.hpp"

namespace llmproxy::db::postgres {

namespace {

using detail::Params;

/// One attempt of a repository call on a leased connection. Counts completed statements so that run() knows
/// whether a broken connection failed before anything reached the server.
struct Attempt {
  pqxx::connection& conn;
  int completed = 0;

  template <class Tx>
  pqxx::result exec(Tx& tx, const sql::Statement& statement, const Params& params) {
    const auto values = params.pointers();
    auto result = tx.exec_prepared(std::string(statement.name), pqxx::prepare::make_dynamic_params(values));
    ++completed;
    return result;
  }
};

class PostgresDatabase final : public Driver {
 public:
  PostgresDatabase(const config::DatabaseConfig& config, std::string conninfo, std::string target)
      : conninfo_(std::move(conninfo)), target_(std::move(target)), pool_(settings(config), setup(config)) {}

  /// Opens (and keeps idle) the first connection so a wrong URL or an unreachable server shows at once.
  void check_connection() { auto lease = pool_.acquire(); }

  std::string driver_name() const override { return "postgres"; }

  // ---- projects ----

  void create_project(const Project& p) override {
    run("create_project", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      c.exec(tx, sql::kInsertProject,
             Params()
                 .text(p.id)
                 .text(p.name)
                 .text(p.api_key)
                 .boolean(p.is_active)
                 .time(p.deactivated_at)
                 .time(p.created_at)
                 .time(p.updated_at)
                 .integer(p.rate_limit_rpm));
    });
  }

  Project get_project(const std::string& id) override {
    return run("get_project", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, sql::kGetProject, Params().text(id));
      if (r.empty()) throw NotFound("project " + id + " not found");
      return detail::project_of(r[0]);
    });
  }

  Page<Project> list_projects(PageRequest page) override {
    return run("list_projects", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, detail::project_list(), Params().integer(page_limit(page)).integer(page_offset(page)));
      return detail::page_of<Project>(r, detail::project_of);
    });
  }

  Project update_project(const std::string& id, const ProjectUpdate& u, TimePoint now) override {
    return run("update_project", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      Params params;
      params.text(id).text(u.name).text(u.api_key).boolean(u.is_active).time(now);
      params.boolean(u.rate_limit_rpm.has_value()).integer(u.rate_limit_rpm ? *u.rate_limit_rpm : std::nullopt);
      const auto r = c.exec(tx, sql::kUpdateProject, params);
      if (r.empty()) throw NotFound("project " + id + " not found");
      return detail::project_of(r[0]);
    });
  }

  // ---- tokens ----

  void create_token(const Token& t) override {
    run("create_token", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      c.exec(tx, sql::kInsertToken,
             Params()
                 .text(t.id)
                 .text(t.token_hash)
                 .text(t.token_hint)
                 .text(t.project_id)
                 .time(t.expires_at)
                 .boolean(t.is_active)
                 .time(t.deactivated_at)
                 .integer(t.request_count)
                 .integer(t.max_requests)
                 .time(t.created_at)
                 .time(t.last_used_at)
                 .integer(t.cache_hit_count)
                 .integer(t.prompt_tokens)
                 .integer(t.completion_tokens)
                 .integer(t.max_tokens)
                 .integer(t.rate_limit_rpm));
    });
  }

  Token get_token(const std::string& id) override {
    return run("get_token", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, sql::kGetToken, Params().text(id));
      if (r.empty()) throw NotFound("token " + id + " not found");
      return detail::token_of(r[0]);
    });
  }

  std::optional<Token> find_token_by_hash(const std::string& token_hash) override {
    return run("find_token_by_hash", [&](Attempt& c) -> std::optional<Token> {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, sql::kFindTokenByHash, Params().text(token_hash));
      if (r.empty()) return std::nullopt;
      return detail::token_of(r[0]);
    });
  }

  Page<Token> list_tokens(const std::optional<std::string>& project_id, PageRequest page,
                          std::optional<TokenStateFilter> state) override {
    return run("list_tokens", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      Params params;
      params.text(project_id).integer(page_limit(page)).integer(page_offset(page));
      params.boolean(state ? std::optional<bool>(state->usable) : std::nullopt).time(state ? state->now : TimePoint{});
      const auto r = c.exec(tx, sql::kListTokens, params);
      return detail::page_of<Token>(r, detail::token_of);
    });
  }

  Token update_token(const std::string& id, const TokenUpdate& u, TimePoint now) override {
    return run("update_token", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      Params params;
      params.text(id).boolean(u.is_active).time(now).boolean(u.max_requests.has_value());
      params.integer(u.max_requests ? *u.max_requests : std::nullopt);
      params.boolean(u.max_tokens.has_value()).integer(u.max_tokens ? *u.max_tokens : std::nullopt);
      params.boolean(u.rate_limit_rpm.has_value()).integer(u.rate_limit_rpm ? *u.rate_limit_rpm : std::nullopt);
      const auto r = c.exec(tx, sql::kUpdateToken, params);
      if (r.empty()) throw NotFound("token " + id + " not found");
      return detail::token_of(r[0]);
    });
  }

  bool revoke_token(const std::string& id, TimePoint now) override {
    return run("revoke_token", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      if (c.exec(tx, sql::kRevokeToken, Params().text(id).time(now)).affected_rows() > 0) return true;
      // No code path deletes a token on its own, so "exists" cannot change between the two statements.
      if (c.exec(tx, sql::kTokenExists, Params().text(id)).empty()) throw NotFound("token " + id + " not found");
      return false;
    });
  }

  RevokeResult revoke_project_tokens(const std::string& project_id, TimePoint now) override {
    return run("revoke_project_tokens", [&](Attempt& c) {
      pqxx::work tx(c.conn);
      if (c.exec(tx, sql::kProjectExists, Params().text(project_id)).empty()) {
        throw NotFound("project " + project_id + " not found");
      }
      RevokeResult result;
      result.total_tokens = detail::integer_of(c.exec(tx, sql::kCountProjectTokens, Params().text(project_id))[0][0]);
      result.revoked_count = c.exec(tx, sql::kRevokeProjectTokens, Params().text(project_id).time(now)).affected_rows();
      result.already_revoked_count = result.total_tokens - result.revoked_count;
      tx.commit();
      return result;
    });
  }

  QuotaResult consume_quota(const std::string& token_id, std::int64_t units, TimePoint now) override {
    return run("consume_quota", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto increment = [&]() -> std::optional<QuotaGrant> {
        const auto r = c.exec(tx, detail::kConsumeQuota, Params().text(token_id).time(now).integer(units));
        if (r.empty()) return std::nullopt;
        return QuotaGrant{detail::token_of(r[0]), detail::integer_of(r[0]["granted"])};
      };
      const auto current = [&]() -> std::optional<Token> {
        const auto r = c.exec(tx, sql::kGetToken, Params().text(token_id));
        if (r.empty()) return std::nullopt;
        return detail::token_of(r[0]);
      };
      return decide_quota(token_id, units, now, increment, current);
    });
  }

  void add_usage(const UsageBatch& batch) override {
    if (batch.empty()) return;
    // PostgreSQL's DATE would also take other spellings ('2026-1-2', 'Jan 2 2026'); SQLite's CHECK would not.
    for (const DailyUsageDelta& d : batch.daily) require_valid_day(d.day, "add_usage: day");
    const auto tokens = detail::usage_arrays(merge_usage(batch.tokens));
    const auto daily = detail::daily_usage_arrays(merge_daily_usage(batch.daily));
    // At most three statements whatever the batch size: lock the token rows, update them, upsert the days.
    run("add_usage", [&](Attempt& c) {
      pqxx::work tx(c.conn);
      if (!batch.tokens.empty()) {
        c.exec(tx, detail::kLockUsageTokens, Params().text(tokens.ids));
        c.exec(tx, detail::kAddUsage, tokens.update);
      }
      if (!batch.daily.empty()) c.exec(tx, detail::kAddDailyUsage, daily);
      tx.commit();
    });
  }

  // ---- usage ----

  std::vector<UsageRow> query_usage(const UsageQuery& q) override {
    if (q.from_day) require_valid_day(*q.from_day, "query_usage: from");
    if (q.to_day) require_valid_day(*q.to_day, "query_usage: to");
    Params params;
    params.text(q.project_id).text(q.token_id).text(q.model).text(q.from_day).text(q.to_day);
    return run("query_usage", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      std::vector<UsageRow> rows;
      for (const auto& row : c.exec(tx, detail::usage_query(q.group_by), params)) {
        rows.push_back(detail::usage_row_of(row));
      }
      return rows;
    });
  }

  UsageTotals project_usage_totals(const std::string& project_id) override {
    return run("project_usage_totals", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, sql::kProjectUsageTotals, Params().text(project_id));
      if (r.empty()) throw NotFound("project " + project_id + " not found");
      return detail::usage_totals_of(r[0]);
    });
  }

  // ---- audit ----

  void insert_audit_events(const std::vector<AuditEvent>& events) override {
    if (events.empty()) return;
    run("insert_audit_events", [&](Attempt& c) {
      pqxx::work tx(c.conn);
      for (const auto& e : events) {
        c.exec(tx, sql::kInsertAuditEvent,
               Params()
                   .text(e.id)
                   .time(e.timestamp)
                   .text(e.action)
                   .text(e.actor)
                   .text(e.outcome)
                   .text(e.project_id)
                   .text(e.request_id)
                   .text(e.correlation_id)
                   .text(e.client_ip)
                   .text(e.method)
                   .text(e.path)
                   .text(e.user_agent)
                   .text(e.reason)
                   .text(e.token_id)
                   .text(e.metadata));
      }
      tx.commit();
    });
  }

  Page<AuditEvent> list_audit_events(const AuditFilter& f) override {
    Params params;
    params.text(f.action).text(f.project_id).text(f.outcome).text(f.actor).text(f.request_id).text(f.client_ip);
    params.text(f.method).text(f.path).time(f.start_time).time(f.end_time);
    params.text(f.search ? std::optional<std::string>{like_contains_pattern(*f.search)} : std::nullopt);
    params.integer(page_limit(f.page)).integer(page_offset(f.page)).text(f.correlation_id);
    return run("list_audit_events", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      return detail::page_of<AuditEvent>(c.exec(tx, detail::audit_list(), params), detail::audit_event_of);
    });
  }

  AuditEvent get_audit_event(const std::string& id) override {
    return run("get_audit_event", [&](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, sql::kGetAuditEvent, Params().text(id));
      if (r.empty()) throw NotFound("audit event " + id + " not found");
      return detail::audit_event_of(r[0]);
    });
  }

  // ---- health ----

  HealthReport health() override {
    HealthReport report;
    const auto started = detail::Clock::now();
    try {
      run("health check", [](Attempt& c) {
        pqxx::nontransaction tx(c.conn);
        c.exec(tx, sql::kSelectOne, Params());
      });
      report.up = true;
    } catch (const std::exception& e) {
      report.error = e.what();
    } catch (...) {
      report.error = "unknown error";
    }
    report.latency_ms = std::chrono::duration<double, std::milli>(detail::Clock::now() - started).count();
    report.pool = pool_stats();
    return report;
  }

  PoolStats pool_stats() const override {
    try {
      return pool_.stats();
    } catch (...) {  // std::mutex::lock may in theory throw; statistics are not worth an exception
      PoolStats s;
      s.size = pool_.settings().size;
      return s;
    }
  }

  // ---- migrate::Backend ----

  std::vector<migrate::AppliedMigration> read_applied() override {
    return run("read_applied", [](Attempt& c) {
      pqxx::nontransaction tx(c.conn);
      std::vector<migrate::AppliedMigration> out;
      // to_regclass: look without creating anything (and without an error when the table is missing).
      const auto present = c.exec(tx, detail::kSchemaMigrationsExists, Params());
      if (!detail::bool_of(present[0][0])) return out;
      for (const auto& row : c.exec(tx, sql::kSelectApplied, Params())) out.push_back(detail::applied_of(row));
      return out;
    });
  }

  std::unique_ptr<migrate::Session> begin_session(std::chrono::milliseconds lock_timeout) override {
    return std::make_unique<detail::MigrationSession>(conninfo_, target_, lock_timeout);
  }

  const std::vector<migrate::MigrationFile>& files() const override { return migrate::embedded_postgres(); }

 private:
  static detail::PoolSettings settings(const config::DatabaseConfig& config);
  static detail::Pool::Setup setup(const config::DatabaseConfig& config);

  /// Runs `body` on a leased connection and translates every failure into db::Error. A reused connection
  /// that breaks before any statement completed went stale while idle (server restart, idle timeout, a NAT or
  /// firewall dropping the flow) and almost surely never delivered the statement, so the call is retried once on
  /// a new connection. No other failure is retried (a broken COMMIT is in doubt and reported as Unavailable).
  template <class Body>
  auto run(std::string_view what, Body&& body) -> std::invoke_result_t<Body&, Attempt&> {
    bool retried = false;
    for (;;) {
      auto lease = retried ? pool_.acquire_fresh() : pool_.acquire();
      Attempt attempt{lease.connection()};
      try {
        return body(attempt);
      } catch (...) {
        if (detail::current_exception_breaks_connection() || !lease.connection().is_open()) {
          lease.discard();
          if (!retried && lease.reused() && attempt.completed == 0) {
            retried = true;
            continue;
          }
        }
        detail::rethrow_as_db_error(what);
      }
    }
  }

  const std::string conninfo_;  // secret: holds the password; only ever passed to libpq
  const std::string target_;    // redacted, for messages
  detail::Pool pool_;
};

detail::PoolSettings PostgresDatabase::settings(const config::DatabaseConfig& config) {
  detail::PoolSettings s;
  s.conninfo = detail::with_connection_options(config.url, config.connect_timeout);
  s.target = config::redact_database_url(config.url);
  s.size = std::max(config.pool_size, 1);
  s.max_idle = std::max(config.max_idle_conns, 0);
  s.max_lifetime = config.conn_max_lifetime;
  s.checkout_timeout = config.connect_timeout;
  return s;
}

detail::Pool::Setup PostgresDatabase::setup(const config::DatabaseConfig& config) {
  const auto statement_timeout_ms = std::max<std::chrono::milliseconds::rep>(config.statement_timeout.count(), 0);
  return [statement_timeout_ms](pqxx::connection& conn) {
    // set_variable (not a bare SET) so libpqxx would restore them if it ever re-opened the session itself.
    conn.set_variable("statement_timeout", std::to_string(statement_timeout_ms));
    conn.set_variable("TimeZone", "'UTC'");
    conn.set_variable("DateStyle", "'ISO'");
    for (const sql::Statement* statement : detail::prepared_statements()) {
      conn.prepare(std::string(statement->name), std::string(statement->text));
    }
  };
}

}  // namespace

std::unique_ptr<Driver> open(const config::DatabaseConfig& config) {
  const std::string target = config::redact_database_url(config.url);
  const std::string conninfo = detail::with_connection_options(config.url, config.connect_timeout);
  if (auto error = detail::conninfo_error(conninfo, target)) {
    throw Error("invalid DATABASE_URL " + target + ": " + *error);
  }
  auto database = std::make_unique<PostgresDatabase>(config, conninfo, target);
  database->check_connection();
  return database;
}

}  // namespace llmproxy::db::postgres
