#include "llmproxy/db/sqlite/detail/queries.hpp"

namespace llmproxy::db::sqlite::detail {

// Timestamps are fixed-width UTC text, so `<` compares them as times.
const sql::Statement kAddUsage{
    "add_usage",
    "UPDATE tokens SET request_count = request_count + $2, cache_hit_count = cache_hit_count + $3, "
    "last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $4 THEN $4 ELSE last_used_at END "
    "WHERE id = $1"};
// Scalar MIN(a, NULL) is NULL in SQLite: COALESCE gives an unlimited token all the units.
const sql::Statement kConsumeQuota{
    "consume_quota",
    "UPDATE tokens SET request_count = request_count + MIN($3, COALESCE(max_requests - request_count, $3)), "
    "last_used_at = $2 WHERE id = $1 AND is_active AND (expires_at IS NULL OR expires_at > $2) "
    "AND (max_requests IS NULL OR request_count < max_requests) RETURNING "
    "id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests, "
    "created_at, last_used_at, cache_hit_count"};
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

const sql::Statement& audit_list() {
  static const std::string text = sql::audit_list_text("LIKE", "metadata");
  static const sql::Statement statement{"list_audit_events", text};
  return statement;
}

}  // namespace llmproxy::db::sqlite::detail
