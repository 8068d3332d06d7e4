#include "llmproxy/db/sqlite/detail/queries.hpp"

namespace llmproxy::db::sqlite::detail {

// Timestamps are fixed-width UTC text, so `<` compares them as times.
const sql::Statement kAddUsage{
    "add_usage",
    "UPDATE tokens SET request_count = request_count + $2, cache_hit_count = cache_hit_count + $3, "
    "last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $4 THEN $4 ELSE last_used_at END, "
    "prompt_tokens = prompt_tokens + $5, completion_tokens = completion_tokens + $6 "
    "WHERE id = $1"};
const sql::Statement kAddDailyUsage{
    "add_daily_usage",
    "INSERT INTO usage_daily (day, project_id, token_id, model, requests, prompt_tokens, completion_tokens, "
    "cache_hits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (day, project_id, token_id, model) DO UPDATE "
    "SET requests = usage_daily.requests + excluded.requests, "
    "prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, "
    "cache_hits = usage_daily.cache_hits + excluded.cache_hits"};
// Scalar MIN(a, NULL) is NULL in SQLite: COALESCE gives an unlimited token all the units.
const sql::Statement kConsumeQuota{
    "consume_quota",
    "UPDATE tokens SET request_count = request_count + MIN($3, COALESCE(max_requests - request_count, $3)), "
    "last_used_at = $2 WHERE id = $1 AND is_active AND (expires_at IS NULL OR expires_at > $2) "
    "AND (max_requests IS NULL OR request_count < max_requests) RETURNING "
    "id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests, "
    "created_at, last_used_at, cache_hit_count, prompt_tokens, completion_tokens, max_tokens, rate_limit_rpm"};
const sql::Statement kQuotaCountBefore{"quota_count_before", "SELECT request_count FROM tokens WHERE id = $1"};
const sql::Statement kSchemaMigrationsExists{
    "schema_migrations_exists", "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"};
const sql::Statement kCreateSchemaMigrations{
    "create_schema_migrations",
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at TEXT NOT NULL, execution_ms INTEGER NOT NULL)"};

const sql::Statement& project_list() {
  static const std::string text = sql::project_list_text("");
  static const sql::Statement statement{"list_projects", text};
  return statement;
}

const sql::Statement& usage_query(UsageGroupBy group_by) {
  // `day` is YYYY-MM-DD text: it reads as the key unchanged and sorts as a date.
  static const std::string by_day = sql::usage_query_text("day", "day", "");
  static const std::string by_model = sql::usage_query_text("model", "model", "");
  static const std::string by_token = sql::usage_query_text("token_id", "token_id", "");
  static const sql::Statement day{"usage_by_day", by_day};
  static const sql::Statement model{"usage_by_model", by_model};
  static const sql::Statement token{"usage_by_token", by_token};
  switch (group_by) {
    case UsageGroupBy::model: return model;
    case UsageGroupBy::token: return token;
    case UsageGroupBy::day: break;
  }
  return day;
}

const sql::Statement& audit_list() {
  static const std::string text = sql::audit_list_text("LIKE", "metadata");
  static const sql::Statement statement{"list_audit_events", text};
  return statement;
}

}  // namespace llmproxy::db::sqlite::detail
