#include "llmproxy/db/sql.hpp"

namespace llmproxy::db::sql {

// Column lists in the order the drivers' row decoders read them. Macros so that every statement below is one
// string literal (constant-initialized: usable from any static initializer).
#define PROJECT_COLUMNS "id, name, api_key, is_active, deactivated_at, created_at, updated_at, rate_limit_rpm"
#define TOKEN_COLUMNS                                                                                            \
  "id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests, " \
  "created_at, last_used_at, cache_hit_count, prompt_tokens, completion_tokens, max_tokens, rate_limit_rpm"
// "timestamp" is quoted: it is a type name in PostgreSQL.
#define AUDIT_COLUMNS                                                                                          \
  "id, \"timestamp\", action, actor, outcome, project_id, request_id, correlation_id, client_ip, method, path, " \
  "user_agent, reason, token_id, metadata"
// A page and the total in one statement (one round trip, one snapshot): the count row is joined with the page,
// so an empty page still yields one row carrying the total.
#define PAGED(count_from, page_select, order) \
  "SELECT c.total, p.* FROM (SELECT count(*) AS total FROM " count_from ") AS c LEFT JOIN (" page_select \
  ") AS p ON true ORDER BY " order

const Statement kInsertProject{"insert_project", "INSERT INTO projects (" PROJECT_COLUMNS
                                                 ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"};
const Statement kGetProject{"get_project", "SELECT " PROJECT_COLUMNS " FROM projects WHERE id = $1"};
const Statement kUpdateProject{
    "update_project",
    "UPDATE projects SET name = COALESCE($2, name), api_key = COALESCE($3, api_key), "
    "is_active = COALESCE($4, is_active), "
    "deactivated_at = CASE WHEN $4 IS NULL THEN deactivated_at WHEN $4 THEN NULL ELSE $5 END, "
    "rate_limit_rpm = CASE WHEN $6 THEN $7 ELSE rate_limit_rpm END, "
    "updated_at = $5 WHERE id = $1 RETURNING " PROJECT_COLUMNS};
const Statement kProjectExists{"project_exists", "SELECT 1 FROM projects WHERE id = $1"};

const Statement kInsertToken{
    "insert_token",
    "INSERT INTO tokens (" TOKEN_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"};
const Statement kGetToken{"get_token", "SELECT " TOKEN_COLUMNS " FROM tokens WHERE id = $1"};
const Statement kFindTokenByHash{"find_token_by_hash", "SELECT " TOKEN_COLUMNS " FROM tokens WHERE token_hash = $1"};
// "Usable": active, and unexpired or without an expiry (tokens imported from the reference may have none).
#define TOKEN_LIST_WHERE                                                                   \
  "(project_id = $1 OR $1 IS NULL) AND "                                                   \
  "((is_active AND (expires_at IS NULL OR expires_at > $5)) = $4 OR $4 IS NULL)"
const Statement kListTokens{"list_tokens",
                            PAGED("tokens WHERE " TOKEN_LIST_WHERE,
                                  "SELECT " TOKEN_COLUMNS " FROM tokens WHERE " TOKEN_LIST_WHERE
                                  " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                                  "p.created_at DESC, p.id DESC")};
// Where a parameter may be NULL, a use that fixes its type comes first (PostgreSQL types a parameter at its
// first use; `$n IS NULL` alone gives it none): `project_id = $1 OR $1 IS NULL`, `COALESCE($2, is_active)`.
// $4 says whether max_requests is set at all, $5 is the new limit (NULL: unlimited): "set to unlimited" and
// "leave alone" stay distinct; $6/$7 and $8/$9 do the same for max_tokens and rate_limit_rpm.
const Statement kUpdateToken{
    "update_token",
    "UPDATE tokens SET is_active = COALESCE($2, is_active), "
    "deactivated_at = CASE WHEN $2 IS NULL THEN deactivated_at WHEN $2 THEN NULL ELSE $3 END, "
    "max_requests = CASE WHEN $4 THEN $5 ELSE max_requests END, "
    "max_tokens = CASE WHEN $6 THEN $7 ELSE max_tokens END, "
    "rate_limit_rpm = CASE WHEN $8 THEN $9 ELSE rate_limit_rpm END "
    "WHERE id = $1 RETURNING " TOKEN_COLUMNS};
const Statement kRevokeToken{"revoke_token",
                             "UPDATE tokens SET is_active = false, deactivated_at = $2 WHERE id = $1 AND is_active"};
const Statement kTokenExists{"token_exists", "SELECT 1 FROM tokens WHERE id = $1"};
const Statement kCountProjectTokens{"count_project_tokens", "SELECT count(*) FROM tokens WHERE project_id = $1"};
const Statement kRevokeProjectTokens{
    "revoke_project_tokens",
    "UPDATE tokens SET is_active = false, deactivated_at = $2 WHERE project_id = $1 AND is_active"};
const Statement kInsertAuditEvent{"insert_audit_event",
                                  "INSERT INTO audit_events (" AUDIT_COLUMNS
                                  ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"};
const Statement kGetAuditEvent{"get_audit_event", "SELECT " AUDIT_COLUMNS " FROM audit_events WHERE id = $1"};

// Sums are cast to BIGINT: PostgreSQL's sum(bigint) is numeric. LEFT JOIN: a project without tokens gives one
// row of zeros, an unknown project no row.
const Statement kProjectUsageTotals{
    "project_usage_totals",
    "SELECT CAST(COALESCE(sum(t.request_count), 0) AS BIGINT) AS requests, "
    "CAST(COALESCE(sum(t.prompt_tokens), 0) AS BIGINT) AS prompt_tokens, "
    "CAST(COALESCE(sum(t.completion_tokens), 0) AS BIGINT) AS completion_tokens, "
    "CAST(COALESCE(sum(t.cache_hit_count), 0) AS BIGINT) AS cache_hits "
    "FROM projects AS p LEFT JOIN tokens AS t ON t.project_id = p.id WHERE p.id = $1 GROUP BY p.id"};

const Statement kSelectOne{"select_one", "SELECT 1"};
const Statement kSelectApplied{
    "select_applied", "SELECT version, name, checksum, applied_at, execution_ms FROM schema_migrations ORDER BY version"};
const Statement kMigrationRecorded{"migration_recorded", "SELECT 1 FROM schema_migrations WHERE version = $1"};
const Statement kInsertMigration{
    "insert_migration",
    "INSERT INTO schema_migrations (version, name, checksum, applied_at, execution_ms) VALUES ($1, $2, $3, $4, $5)"};
const Statement kDeleteMigration{"delete_migration", "DELETE FROM schema_migrations WHERE version = $1"};

std::string project_list_text(std::string_view name_order) {
  const std::string collate(name_order);
  return "SELECT c.total, p.* FROM (SELECT count(*) AS total FROM projects) AS c LEFT JOIN (SELECT " PROJECT_COLUMNS
         " FROM projects ORDER BY name" +
         collate + ", id LIMIT $1 OFFSET $2) AS p ON true ORDER BY p.name" + collate + ", p.id";
}

std::string audit_list_text(std::string_view ilike, std::string_view metadata_text) {
  std::string search;
  for (const std::string_view column :
       {"request_id", "correlation_id", "action", "actor", "method", "reason", "path", "client_ip", "user_agent"}) {
    search.append(column).append(" ").append(ilike).append(" $11 ESCAPE '!' OR ");
  }
  search.append(metadata_text).append(" ").append(ilike).append(" $11 ESCAPE '!' OR $11 IS NULL");
  // Each parameter is compared with its column before `IS NULL` looks at it: PostgreSQL takes a parameter's type
  // from its first use, and `$n IS NULL` alone gives it none.
  const std::string where =
      "(action = $1 OR $1 IS NULL) AND (project_id = $2 OR $2 IS NULL) AND (outcome = $3 OR $3 IS NULL) "
      "AND (actor = $4 OR $4 IS NULL) AND (request_id = $5 OR $5 IS NULL) AND (client_ip = $6 OR $6 IS NULL) "
      "AND (method = $7 OR $7 IS NULL) AND (path = $8 OR $8 IS NULL) "
      "AND (correlation_id = $14 OR $14 IS NULL) "
      "AND (\"timestamp\" >= $9 OR $9 IS NULL) AND (\"timestamp\" <= $10 OR $10 IS NULL) AND (" +
      search + ")";
  return "SELECT c.total, p.* FROM (SELECT count(*) AS total FROM audit_events WHERE " + where +
         ") AS c LEFT JOIN (SELECT " AUDIT_COLUMNS " FROM audit_events WHERE " + where +
         " ORDER BY \"timestamp\" DESC, id DESC LIMIT $12 OFFSET $13) AS p ON true "
         "ORDER BY p.\"timestamp\" DESC, p.id DESC";
}

std::string usage_query_text(std::string_view group_column, std::string_view key, std::string_view order) {
  const std::string column(group_column);
  // Each parameter is compared with its column before `IS NULL` looks at it (PostgreSQL types a parameter at its
  // first use: $4 and $5 become dates there).
  return "SELECT " + std::string(key) +
         " AS usage_key, CAST(sum(requests) AS BIGINT) AS requests, "
         "CAST(sum(prompt_tokens) AS BIGINT) AS prompt_tokens, "
         "CAST(sum(completion_tokens) AS BIGINT) AS completion_tokens, CAST(sum(cache_hits) AS BIGINT) AS cache_hits "
         "FROM usage_daily WHERE (project_id = $1 OR $1 IS NULL) AND (token_id = $2 OR $2 IS NULL) "
         "AND (model = $3 OR $3 IS NULL) AND (day >= $4 OR $4 IS NULL) AND (day <= $5 OR $5 IS NULL) "
         "GROUP BY " +
         column + " ORDER BY " + column + std::string(order);
}

#undef PROJECT_COLUMNS
#undef TOKEN_COLUMNS
#undef AUDIT_COLUMNS
#undef PAGED

}  // namespace llmproxy::db::sql
