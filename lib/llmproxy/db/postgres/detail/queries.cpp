#include "llmproxy/db/postgres/detail/queries.hpp"

#include <string>

namespace llmproxy::db::postgres::detail {

const sql::Statement kLockUsageTokens{"lock_usage_tokens",
                                      "SELECT id FROM tokens WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE"};
const sql::Statement kAddUsage{
    "add_usage",
    "UPDATE tokens AS t SET request_count = t.request_count + d.requests, "
    "cache_hit_count = t.cache_hit_count + d.cache_hits, "
    "last_used_at = GREATEST(COALESCE(t.last_used_at, d.last_used_at), d.last_used_at), "
    "prompt_tokens = t.prompt_tokens + d.prompt_tokens, completion_tokens = t.completion_tokens + d.completion_tokens "
    "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[], $6::bigint[]) "
    "AS d (id, requests, cache_hits, last_used_at, prompt_tokens, completion_tokens) WHERE t.id = d.id"};
const sql::Statement kAddDailyUsage{
    "add_daily_usage",
    "INSERT INTO usage_daily AS u (day, project_id, token_id, model, requests, prompt_tokens, completion_tokens, "
    "cache_hits) SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], "
    "$7::bigint[], $8::bigint[]) "
    "ON CONFLICT (day, project_id, token_id, model) DO UPDATE SET requests = u.requests + excluded.requests, "
    "prompt_tokens = u.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = u.completion_tokens + excluded.completion_tokens, "
    "cache_hits = u.cache_hits + excluded.cache_hits"};
// The quota check and the grant are one statement, so the quota is exact under any concurrency and across
// processes: callers queue on the row lock (taken by the subquery) and each evaluates the WHERE clause against
// the row as the previous one left it. LEAST skips NULLs in PostgreSQL; COALESCE still says "all the units"
// for an unlimited token explicitly.
const sql::Statement kConsumeQuota{
    "consume_quota",
    "UPDATE tokens AS t SET request_count = t.request_count + "
    "LEAST($3::bigint, COALESCE(t.max_requests - t.request_count, $3::bigint)), last_used_at = $2 "
    "FROM (SELECT id AS locked_id, request_count AS count_before FROM tokens WHERE id = $1 FOR UPDATE) AS b "
    "WHERE t.id = b.locked_id AND t.is_active AND (t.expires_at IS NULL OR t.expires_at > $2) "
    "AND (t.max_requests IS NULL OR t.request_count < t.max_requests) "
    "RETURNING t.id, t.token_hash, t.token_hint, t.project_id, t.expires_at, t.is_active, t.deactivated_at, "
    "t.request_count, t.max_requests, t.created_at, t.last_used_at, t.cache_hit_count, t.prompt_tokens, "
    "t.completion_tokens, t.max_tokens, t.rate_limit_rpm, "
    "t.request_count - b.count_before AS granted"};
const sql::Statement kSchemaMigrationsExists{"schema_migrations_exists",
                                             "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"};
const sql::Statement kCreateSchemaMigrations{
    "create_schema_migrations",
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL, execution_ms BIGINT NOT NULL)"};

const sql::Statement& project_list() {
  static const std::string text = sql::project_list_text(" COLLATE \"C\"");
  static const sql::Statement statement{"list_projects", text};
  return statement;
}

namespace {

// day is a DATE: to_char gives the key as YYYY-MM-DD, and it sorts as a date (no collation applies to it). Model
// names and token ids sort byte by byte with COLLATE "C", like SQLite.
const sql::Statement& usage_by_day() {
  static const std::string text = sql::usage_query_text("day", "to_char(day, 'YYYY-MM-DD')", "");
  static const sql::Statement statement{"usage_by_day", text};
  return statement;
}
const sql::Statement& usage_by_model() {
  static const std::string text = sql::usage_query_text("model", "model", " COLLATE \"C\"");
  static const sql::Statement statement{"usage_by_model", text};
  return statement;
}
const sql::Statement& usage_by_token() {
  static const std::string text = sql::usage_query_text("token_id", "token_id", " COLLATE \"C\"");
  static const sql::Statement statement{"usage_by_token", text};
  return statement;
}

}  // namespace

const sql::Statement& usage_query(UsageGroupBy group_by) {
  switch (group_by) {
    case UsageGroupBy::model: return usage_by_model();
    case UsageGroupBy::token: return usage_by_token();
    case UsageGroupBy::day: break;
  }
  return usage_by_day();
}

const sql::Statement& audit_list() {
  static const std::string text = sql::audit_list_text("ILIKE", "metadata::text");
  static const sql::Statement statement{"list_audit_events", text};
  return statement;
}

const std::vector<const sql::Statement*>& prepared_statements() {
  static const std::vector<const sql::Statement*> statements = {
      &sql::kInsertProject,     &sql::kGetProject,         &project_list(),        &sql::kUpdateProject,
      &sql::kProjectExists,     &sql::kInsertToken,        &sql::kGetToken,            &sql::kFindTokenByHash,
      &sql::kListTokens,        &sql::kUpdateToken,        &sql::kRevokeToken,         &sql::kTokenExists,
      &sql::kCountProjectTokens, &sql::kRevokeProjectTokens, &kConsumeQuota,      &sql::kInsertAuditEvent,
      &sql::kGetAuditEvent,     &sql::kSelectOne,          &sql::kSelectApplied,       &kLockUsageTokens,
      &kAddUsage,               &kSchemaMigrationsExists,  &audit_list(),              &kAddDailyUsage,
      &sql::kProjectUsageTotals, &usage_by_day(),          &usage_by_model(),          &usage_by_token()};
  return statements;
}

}  // namespace llmproxy::db::postgres::detail
