#pragma once
/// The statements that differ from db/sql.hpp on PostgreSQL, each with the reason, and the list of every
/// statement a pooled connection prepares. libpqxx registers each name at connect and sends PREPARE on the
/// connection's first use of it, so a connection opened before the migrations ran still works.
#include <vector>

#include "llmproxy/db/models.hpp"
#include "llmproxy/db/sql.hpp"

namespace llmproxy::db::postgres::detail {

/// Locks the rows of a usage batch in id order ($1 text[] of ids) before kAddUsage updates them, so two
/// instances flushing overlapping batches queue up instead of deadlocking. SQLite serializes writers instead.
extern const sql::Statement kLockUsageTokens;
/// A whole usage batch in one statement from parallel arrays ($1 ids, $2 requests, $3 cache hits, $4 last used,
/// $5 prompt tokens, $6 completion tokens): one round trip per flush instead of one per token. SQLite has no
/// arrays and updates row by row.
extern const sql::Statement kAddUsage;
/// Every usage_daily upsert of a flush in one statement from parallel arrays ($1 days, $2 project ids, $3 token
/// ids, $4 models, $5 requests, $6 prompt tokens, $7 completion tokens, $8 cache hits; one entry per key, see
/// db::merge_daily_usage: ON CONFLICT may not touch a row twice). SQLite upserts row by row.
extern const sql::Statement kAddDailyUsage;
/// The quota grant ($1 id, $2 now, $3 units): request_count += LEAST(units, max_requests - request_count) under
/// the same conditions as ever (active, not expired at $2, request_count < max_requests); RETURNING the row
/// and, last, the units granted. RETURNING sees only the row after the update, so the count before it comes
/// from a subquery that locks the row first (FOR UPDATE: under concurrency it waits and reads the latest
/// version, which the update then starts from). One statement, one round trip. No row: refused.
extern const sql::Statement kConsumeQuota;
/// PostgreSQL's catalogue lookup (to_regclass; SQLite: sqlite_master). Creates nothing, fails on nothing.
extern const sql::Statement kSchemaMigrationsExists;
/// DDL differs per engine (column types).
extern const sql::Statement kCreateSchemaMigrations;
/// sql::project_list_text ordering names byte by byte: COLLATE "C" (not the cluster's locale).
const sql::Statement& project_list();
/// sql::usage_query_text for one grouping (the day formatted with to_char; text keys in byte order).
const sql::Statement& usage_query(UsageGroupBy group_by);
/// sql::audit_list_text with ILIKE (PostgreSQL's LIKE is case-sensitive) and metadata::text (JSONB).
const sql::Statement& audit_list();

/// Every statement prepared on a pooled connection: db/sql.hpp's and the overrides above.
const std::vector<const sql::Statement*>& prepared_statements();

}  // namespace llmproxy::db::postgres::detail
