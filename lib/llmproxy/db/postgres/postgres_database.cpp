#include "llmproxy/db/postgres/postgres_database.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <pqxx/nontransaction>
#include <pqxx/prepared_statement>
#include <pqxx/result>
#include <pqxx/transaction>
#include <string>
#include <type_traits>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/conninfo.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"
#include "llmproxy/db/postgres/detail/migration_session.hpp"
#include "llmproxy/db/postgres/detail/params.hpp"
#include "llmproxy/db/postgres/detail/pool.hpp"
#include "llmproxy/db/postgres/detail/queries.hpp"
#include "llmproxy/db/postgres/detail/rows.hpp"

namespace llmproxy::db::postgres {

namespace {

namespace q = detail::q;
using detail::Params;

/// One repository call's use of a leased connection. Counts completed statements so that run() knows whether
/// a broken connection failed before anything reached the server.
struct Call {
  pqxx::connection& conn;
  int completed = 0;

  template <class Tx>
  pqxx::result exec(Tx& tx, const char* name, const Params& params) {
    const auto values = params.pointers();
    auto result = tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(values));
    ++completed;
    return result;
  }
};

std::int64_t offset_of(PageRequest page) { return std::max<std::int64_t>(page.page - 1, 0) * page.page_size; }

// ILIKE pattern for a substring search, with '!' as the escape character.
std::string contains_pattern(const std::string& needle) {
  std::string out = "%";
  for (char c : needle) {
    if (c == '%' || c == '_' || c == '!') out += '!';
    out += c;
  }
  out += '%';
  return out;
}

class PostgresDatabase final : public Driver {
 public:
  PostgresDatabase(const config::DatabaseConfig& config, std::string conninfo, std::string target)
      : conninfo_(std::move(conninfo)), target_(std::move(target)), pool_(settings(config), setup(config)) {}

  /// Opens (and keeps idle) the first connection so a wrong URL or an unreachable server shows at once.
  void check_connection() { auto lease = pool_.acquire(); }

  std::string driver_name() const override { return "postgres"; }

  // ---- projects ----

  void create_project(const Project& p) override {
    run("create_project", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      c.exec(tx, q::kInsertProject,
             Params()
                 .text(p.id)
                 .text(p.name)
                 .text(p.api_key)
                 .boolean(p.is_active)
                 .time(p.deactivated_at)
                 .time(p.created_at)
                 .time(p.updated_at));
    });
  }

  Project get_project(const std::string& id) override {
    return run("get_project", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kGetProject, Params().text(id));
      if (r.empty()) throw NotFound("project " + id + " not found");
      return detail::project_of(r[0]);
    });
  }

  Page<Project> list_projects(PageRequest page) override {
    return run("list_projects", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kListProjects, Params().integer(page.page_size).integer(offset_of(page)));
      return page_of<Project>(r, detail::project_of);
    });
  }

  Project update_project(const std::string& id, const ProjectUpdate& u, TimePoint now) override {
    return run("update_project", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kUpdateProject,
                            Params().text(id).text(u.name).text(u.api_key).boolean(u.is_active).time(now));
      if (r.empty()) throw NotFound("project " + id + " not found");
      return detail::project_of(r[0]);
    });
  }

  // ---- tokens ----

  void create_token(const Token& t) override {
    run("create_token", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      c.exec(tx, q::kInsertToken,
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
                 .integer(t.cache_hit_count));
    });
  }

  Token get_token(const std::string& id) override {
    return run("get_token", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kGetToken, Params().text(id));
      if (r.empty()) throw NotFound("token " + id + " not found");
      return detail::token_of(r[0]);
    });
  }

  std::optional<Token> find_token_by_hash(const std::string& token_hash) override {
    return run("find_token_by_hash", [&](Call& c) -> std::optional<Token> {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kFindTokenByHash, Params().text(token_hash));
      if (r.empty()) return std::nullopt;
      return detail::token_of(r[0]);
    });
  }

  Page<Token> list_tokens(const std::optional<std::string>& project_id, PageRequest page) override {
    return run("list_tokens", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kListTokens,
                            Params().text(project_id).integer(page.page_size).integer(offset_of(page)));
      return page_of<Token>(r, detail::token_of);
    });
  }

  Token update_token(const std::string& id, const TokenUpdate& u, TimePoint now) override {
    return run("update_token", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      Params params;
      params.text(id).boolean(u.is_active).time(now).boolean(u.max_requests.has_value());
      params.integer(u.max_requests ? *u.max_requests : std::nullopt);
      const auto r = c.exec(tx, q::kUpdateToken, params);
      if (r.empty()) throw NotFound("token " + id + " not found");
      return detail::token_of(r[0]);
    });
  }

  bool revoke_token(const std::string& id, TimePoint now) override {
    return run("revoke_token", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kRevokeToken, Params().text(id).time(now));
      if (!detail::bool_of(r[0]["found"])) throw NotFound("token " + id + " not found");
      return detail::bool_of(r[0]["revoked"]);
    });
  }

  RevokeResult revoke_project_tokens(const std::string& project_id, TimePoint now) override {
    return run("revoke_project_tokens", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kRevokeProjectTokens, Params().text(project_id).time(now));
      if (!detail::bool_of(r[0]["found"])) throw NotFound("project " + project_id + " not found");
      RevokeResult out;
      out.revoked_count = detail::integer_of(r[0]["revoked"]);
      out.total_tokens = detail::integer_of(r[0]["total"]);
      out.already_revoked_count = out.total_tokens - out.revoked_count;
      return out;
    });
  }

  QuotaResult consume_quota(const std::string& token_id, TimePoint now) override {
    return run("consume_quota", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      // The increment is one atomic statement; the read after a refusal only explains it. If the row changed
      // in between so that nothing explains the refusal (reactivated, limit raised), the increment is retried.
      for (int attempt = 0; attempt < 3; ++attempt) {
        const auto updated = c.exec(tx, q::kConsumeQuota, Params().text(token_id).time(now));
        if (!updated.empty()) return QuotaResult{QuotaOutcome::accepted, detail::token_of(updated[0])};
        const auto current = c.exec(tx, q::kGetToken, Params().text(token_id));
        if (current.empty()) return QuotaResult{QuotaOutcome::not_found, std::nullopt};
        Token t = detail::token_of(current[0]);
        if (!t.is_active) return QuotaResult{QuotaOutcome::inactive, std::move(t)};
        if (t.expires_at && *t.expires_at <= now) return QuotaResult{QuotaOutcome::expired, std::move(t)};
        if (t.max_requests && t.request_count >= *t.max_requests) {
          return QuotaResult{QuotaOutcome::exhausted, std::move(t)};
        }
      }
      throw Error("consume_quota: token " + token_id + " kept changing concurrently");
    });
  }

  void add_usage(const std::vector<UsageDelta>& deltas) override {
    if (deltas.empty()) return;
    // Merged per token and sorted by id (std::map): one row per token in the arrays, locked in id order.
    std::map<std::string, UsageDelta> merged;
    for (const auto& d : deltas) {
      auto [it, inserted] = merged.try_emplace(d.token_id, d);
      if (!inserted) {
        it->second.requests += d.requests;
        it->second.cache_hits += d.cache_hits;
        it->second.last_used_at = std::max(it->second.last_used_at, d.last_used_at);
      }
    }
    std::vector<std::string> ids, requests, cache_hits, last_used;
    for (const auto& [id, d] : merged) {
      ids.push_back(id);
      requests.push_back(std::to_string(d.requests));
      cache_hits.push_back(std::to_string(d.cache_hits));
      last_used.push_back(util::format_time(d.last_used_at));
    }
    const std::string ids_array = detail::array_literal(ids);
    const Params update = Params()
                              .text(ids_array)
                              .text(detail::array_literal(requests))
                              .text(detail::array_literal(cache_hits))
                              .text(detail::array_literal(last_used));
    run("add_usage", [&](Call& c) {
      pqxx::work tx(c.conn);
      c.exec(tx, q::kLockUsageTokens, Params().text(ids_array));
      c.exec(tx, q::kAddUsage, update);
      tx.commit();
    });
  }

  // ---- audit ----

  void insert_audit_events(const std::vector<AuditEvent>& events) override {
    if (events.empty()) return;
    run("insert_audit_events", [&](Call& c) {
      pqxx::work tx(c.conn);
      for (const auto& e : events) {
        c.exec(tx, q::kInsertAuditEvent,
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
    params.text(f.search ? std::optional<std::string>{contains_pattern(*f.search)} : std::nullopt);
    params.integer(f.page.page_size).integer(offset_of(f.page));
    return run("list_audit_events", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      return page_of<AuditEvent>(c.exec(tx, q::kListAuditEvents, params), detail::audit_event_of);
    });
  }

  AuditEvent get_audit_event(const std::string& id) override {
    return run("get_audit_event", [&](Call& c) {
      pqxx::nontransaction tx(c.conn);
      const auto r = c.exec(tx, q::kGetAuditEvent, Params().text(id));
      if (r.empty()) throw NotFound("audit event " + id + " not found");
      return detail::audit_event_of(r[0]);
    });
  }

  // ---- health ----

  HealthReport health() override {
    HealthReport report;
    const auto started = detail::Clock::now();
    try {
      run("health check", [](Call& c) {
        pqxx::nontransaction tx(c.conn);
        tx.exec("SELECT 1");
        ++c.completed;
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
    return run("read_applied", [](Call& c) {
      pqxx::nontransaction tx(c.conn);
      std::vector<migrate::AppliedMigration> out;
      // to_regclass: look without creating anything (and without an error when the table is missing).
      const auto present = c.exec(tx, q::kSchemaMigrationsExists, Params());
      if (!detail::bool_of(present[0][0])) return out;
      for (const auto& row : c.exec(tx, q::kReadApplied, Params())) out.push_back(detail::applied_of(row));
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

  template <class T, class Convert>
  static Page<T> page_of(const pqxx::result& r, Convert convert) {
    Page<T> page;
    if (r.empty()) return page;
    page.total_count = detail::integer_of(r[0]["total"]);
    for (const auto& row : r) {
      if (!row["id"].is_null()) page.items.push_back(convert(row));
    }
    return page;
  }

  /// Runs `body` on a leased connection and translates every failure into db::Error. A reused connection
  /// that breaks before any statement completed went stale while idle (server restart, idle timeout, a NAT or
  /// firewall dropping the flow) and almost surely never delivered the statement, so the call is retried once on
  /// a new connection. No other failure is retried (a broken COMMIT is in doubt and reported as Unavailable).
  template <class Body>
  auto run(std::string_view what, Body&& body) -> std::invoke_result_t<Body&, Call&> {
    bool retried = false;
    for (;;) {
      auto lease = retried ? pool_.acquire_fresh() : pool_.acquire();
      Call call{lease.connection()};
      try {
        return body(call);
      } catch (...) {
        if (detail::current_exception_breaks_connection() || !lease.connection().is_open()) {
          lease.discard();
          if (!retried && lease.reused() && call.completed == 0) {
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
    for (const auto& query : detail::named_queries()) conn.prepare(query.name, query.sql);
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
