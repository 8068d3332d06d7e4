#pragma once
/// The statements of the repository layer, written once with $1..$n for both engines (SPEC §4.1: no SQL date
/// functions, every value bound). PostgreSQL prepares each under its name once per connection and infers the
/// parameter types from the columns they meet; SQLite rewrites $n to ?n and caches each per connection.
/// A statement that must differ per engine is not here: it lives in the driver's detail/queries.cpp with a
/// comment saying why.
///
/// Row layout: every SELECT and RETURNING lists the columns of its table in one order (PROJECT_COLUMNS,
/// TOKEN_COLUMNS, AUDIT_COLUMNS in sql.cpp), which the drivers' detail/rows decode. Paged lists return `total`
/// first and the row columns after it, one row per item; an empty page still returns one row whose item columns
/// are NULL.
#include <string>
#include <string_view>

namespace llmproxy::db::sql {

struct Statement {
  std::string_view name;  // PostgreSQL's prepared-statement name
  std::string_view text;
};

// Projects. $4 of update_project is the new is_active (NULL: unchanged); deactivated_at follows it.
extern const Statement kInsertProject;       // $1..$8 in column order
extern const Statement kGetProject;          // $1 id
// $1 id, $2 name?, $3 api_key?, $4 is_active?, $5 now, $6 set rate_limit_rpm?, $7 limit?; RETURNING
extern const Statement kUpdateProject;
extern const Statement kProjectExists;       // $1 id

// Tokens.
extern const Statement kInsertToken;         // $1..$16 in column order
extern const Statement kGetToken;            // $1 id
extern const Statement kFindTokenByHash;     // $1 token_hash
extern const Statement kListTokens;          // $1 project_id? (NULL: all), $2 limit, $3 offset (paged),
                                             // $4 usable? (NULL: any state), $5 now
// $1 id, $2 is_active?, $3 now, $4 set max_requests?, $5 limit?, $6 set max_tokens?, $7 budget?,
// $8 set rate_limit_rpm?, $9 limit?; RETURNING
extern const Statement kUpdateToken;
extern const Statement kRevokeToken;         // $1 id, $2 now; changes 0 rows if absent or inactive already
extern const Statement kTokenExists;         // $1 id
extern const Statement kCountProjectTokens;  // $1 project_id
extern const Statement kRevokeProjectTokens;  // $1 project_id, $2 now; changes the active tokens only
// The quota grant (consume_quota) differs per engine: each driver's detail/queries.hpp has it.

// Usage. add_usage differs per engine (SQLite: row by row; PostgreSQL: arrays): each driver's detail/queries.hpp.
// $1 project_id: requests, prompt_tokens, completion_tokens, cache_hits summed over its tokens; no row if the
// project does not exist.
extern const Statement kProjectUsageTotals;

// Audit.
extern const Statement kInsertAuditEvent;    // $1..$15 in column order
extern const Statement kGetAuditEvent;       // $1 id

// Health and migrations.
extern const Statement kSelectOne;
extern const Statement kSelectApplied;       // version, name, checksum, applied_at, execution_ms by version
extern const Statement kMigrationRecorded;   // $1 version
extern const Statement kInsertMigration;     // $1..$5 = version, name, checksum, applied_at, execution_ms
extern const Statement kDeleteMigration;     // $1 version

/// The project list (paged, by name then id, like the reference): $1 limit, $2 offset. `name_order` follows
/// `name` in the ORDER BY: the engines must compare names byte by byte (SQLite's default BINARY collation: "";
/// PostgreSQL: ` COLLATE "C"`, else the order would depend on the cluster's locale).
std::string project_list_text(std::string_view name_order);

/// The audit list (paged, newest first): $1..$8 exact matches of action, project_id, outcome, actor, request_id,
/// client_ip, method, path; $9/$10 an inclusive time range; $11 a like_contains_pattern matched case-insensitively
/// against request_id, correlation_id, action, actor, method, reason, path, client_ip, user_agent and metadata
/// (the reference's search columns plus user_agent); $12 limit, $13 offset; $14 an exact match of correlation_id.
/// NULL parameters do not filter. The engines differ only in the case-insensitive match (`ilike`: SQLite's LIKE is
/// case-insensitive for ASCII, PostgreSQL needs ILIKE) and in how metadata reads as text (`metadata_text`:
/// JSONB needs a cast on PostgreSQL).
std::string audit_list_text(std::string_view ilike, std::string_view metadata_text);

/// The usage series: usage_daily rows filtered by $1 project_id, $2 token_id, $3 model (exact; NULL: all) and an
/// inclusive day range $4..$5 (NULL: open), summed per `group_column` (day, model or token_id) and ordered by it.
/// Columns: usage_key, requests, prompt_tokens, completion_tokens, cache_hits. The engines differ in how the key reads
/// as text (`key`: PostgreSQL formats its DATE with to_char) and in the byte-order collation (`order`, as in
/// project_list_text).
std::string usage_query_text(std::string_view group_column, std::string_view key, std::string_view order);

}  // namespace llmproxy::db::sql
