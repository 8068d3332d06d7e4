#pragma once
/// The statements that differ from db/sql.hpp on SQLite, each with the reason. Everything else the driver runs
/// is in db/sql.hpp, shared with PostgreSQL.
#include <string>

#include "llmproxy/db/models.hpp"
#include "llmproxy/db/sql.hpp"

namespace llmproxy::db::sqlite::detail {

/// One token per statement ($1 id, $2 requests, $3 cache hits, $4 last used, $5 prompt tokens, $6 completion
/// tokens): SQLite has no arrays to batch with (PostgreSQL uses unnest), and a local write costs no round trip.
extern const sql::Statement kAddUsage;
/// One usage_daily upsert per statement ($1 day, $2 project_id, $3 token_id, $4 model, $5 requests, $6 prompt
/// tokens, $7 completion tokens, $8 cache hits), for the same reason.
extern const sql::Statement kAddDailyUsage;
/// The quota grant ($1 id, $2 now, $3 units): request_count += MIN(units, max_requests - request_count) under
/// the same conditions as ever (active, not expired at $2, request_count < max_requests); RETURNING the row, no
/// row when refused. SQLite's RETURNING sees neither the row before the update nor an UPDATE ... FROM table, so
/// the driver reads the count first (kQuotaCountBefore) in the same IMMEDIATE transaction (writers are
/// serialized on the file: nothing changes the row in between) and subtracts.
extern const sql::Statement kConsumeQuota;
/// $1 id: request_count now (inside the grant's transaction).
extern const sql::Statement kQuotaCountBefore;
/// SQLite's catalogue is sqlite_master (PostgreSQL: to_regclass).
extern const sql::Statement kSchemaMigrationsExists;
/// DDL differs per engine (column types).
extern const sql::Statement kCreateSchemaMigrations;
/// sql::project_list_text ordering names byte by byte: SQLite's default BINARY collation.
const sql::Statement& project_list();
/// sql::usage_query_text for one grouping (the BINARY collation orders byte by byte already).
const sql::Statement& usage_query(UsageGroupBy group_by);
/// sql::audit_list_text with LIKE (case-insensitive for ASCII in SQLite) and metadata stored as TEXT.
const sql::Statement& audit_list();

}  // namespace llmproxy::db::sqlite::detail
