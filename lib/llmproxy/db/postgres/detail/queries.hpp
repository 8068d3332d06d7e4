#pragma once
/// Every statement of the PostgreSQL repository, written once with $1..$n and prepared once per connection
/// (libpqxx registers the name at connect and sends PREPARE on the connection's first use of it, so a
/// connection opened before the migrations ran still works).
#include <string>
#include <vector>

namespace llmproxy::db::postgres::detail {

struct NamedQuery {
  const char* name;
  std::string sql;
};

/// All named queries, built once.
const std::vector<NamedQuery>& named_queries();

namespace q {
inline constexpr const char* kInsertProject = "insert_project";
inline constexpr const char* kGetProject = "get_project";
inline constexpr const char* kListProjects = "list_projects";
inline constexpr const char* kUpdateProject = "update_project";
inline constexpr const char* kInsertToken = "insert_token";
inline constexpr const char* kGetToken = "get_token";
inline constexpr const char* kFindTokenByHash = "find_token_by_hash";
inline constexpr const char* kListTokens = "list_tokens";
inline constexpr const char* kUpdateToken = "update_token";
inline constexpr const char* kRevokeToken = "revoke_token";
inline constexpr const char* kRevokeProjectTokens = "revoke_project_tokens";
inline constexpr const char* kConsumeQuota = "consume_quota";
inline constexpr const char* kLockUsageTokens = "lock_usage_tokens";
inline constexpr const char* kAddUsage = "add_usage";
inline constexpr const char* kInsertAuditEvent = "insert_audit_event";
inline constexpr const char* kGetAuditEvent = "get_audit_event";
inline constexpr const char* kListAuditEvents = "list_audit_events";
inline constexpr const char* kSchemaMigrationsExists = "schema_migrations_exists";
inline constexpr const char* kReadApplied = "read_applied";
}  // namespace q

/// SQL run on the migration connection (not prepared: that connection is used once).
inline constexpr const char* kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL, execution_ms BIGINT NOT NULL)";
inline constexpr const char* kSelectApplied =
    "SELECT version, name, checksum, applied_at, execution_ms FROM schema_migrations ORDER BY version";

}  // namespace llmproxy::db::postgres::detail
