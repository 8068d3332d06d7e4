#include "llmproxy/db/postgres/detail/queries.hpp"

namespace llmproxy::db::postgres::detail {

namespace {

const std::string kProjectColumns = "id, name, api_key, is_active, deactivated_at, created_at, updated_at";

const std::string kTokenColumns =
    "id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests, "
    "created_at, last_used_at, cache_hit_count";

// metadata is JSONB; it is read back as text (JSONB normalizes whitespace and key order).
const std::string kAuditColumns =
    "id, \"timestamp\", action, actor, outcome, project_id, request_id, correlation_id, client_ip, method, path, "
    "user_agent, reason, token_id, metadata::text AS metadata";

// $1..$8 exact matches, $9/$10 inclusive time range, $11 an ILIKE pattern whose %, _ and ! are escaped with !
// (not a backslash, so the text means the same whatever standard_conforming_strings says).
const std::string kAuditWhere =
    "($1::text IS NULL OR action = $1::text) "
    "AND ($2::text IS NULL OR project_id = $2::text) "
    "AND ($3::text IS NULL OR outcome = $3::text) "
    "AND ($4::text IS NULL OR actor = $4::text) "
    "AND ($5::text IS NULL OR request_id = $5::text) "
    "AND ($6::text IS NULL OR client_ip = $6::text) "
    "AND ($7::text IS NULL OR method = $7::text) "
    "AND ($8::text IS NULL OR path = $8::text) "
    "AND ($9::timestamptz IS NULL OR \"timestamp\" >= $9::timestamptz) "
    "AND ($10::timestamptz IS NULL OR \"timestamp\" <= $10::timestamptz) "
    "AND ($11::text IS NULL OR action ILIKE $11::text ESCAPE '!' OR actor ILIKE $11::text ESCAPE '!' "
    "OR reason ILIKE $11::text ESCAPE '!' OR path ILIKE $11::text ESCAPE '!' "
    "OR client_ip ILIKE $11::text ESCAPE '!' OR user_agent ILIKE $11::text ESCAPE '!' "
    "OR metadata::text ILIKE $11::text ESCAPE '!')";

// A page and the total in one statement (one round trip, one snapshot): the count row is joined with the page,
// so an empty page still yields one row carrying the total and NULL columns.
std::string paged(const std::string& count_from, const std::string& page_select, const std::string& order) {
  return "SELECT c.total, p.* FROM (SELECT count(*) AS total FROM " + count_from + ") AS c LEFT JOIN (" +
         page_select + ") AS p ON true ORDER BY " + order;
}

std::vector<NamedQuery> build() {
  std::vector<NamedQuery> out;
  out.push_back({q::kInsertProject,
                 "INSERT INTO projects (" + kProjectColumns +
                     ") VALUES ($1, $2, $3, $4::boolean, $5::timestamptz, $6::timestamptz, $7::timestamptz)"});
  out.push_back({q::kGetProject, "SELECT " + kProjectColumns + " FROM projects WHERE id = $1"});
  out.push_back({q::kListProjects,
                 paged("projects",
                       "SELECT " + kProjectColumns +
                           " FROM projects ORDER BY created_at DESC, id DESC LIMIT $1::bigint OFFSET $2::bigint",
                       "p.created_at DESC, p.id DESC")});
  // $4 is_active (NULL: unchanged); deactivated_at follows it: false sets it to now ($5), true clears it.
  out.push_back({q::kUpdateProject,
                 "UPDATE projects SET name = COALESCE($2::text, name), api_key = COALESCE($3::text, api_key), "
                 "is_active = COALESCE($4::boolean, is_active), "
                 "deactivated_at = CASE WHEN $4::boolean IS NULL THEN deactivated_at "
                 "WHEN $4::boolean THEN NULL ELSE $5::timestamptz END, "
                 "updated_at = $5::timestamptz WHERE id = $1 RETURNING " +
                     kProjectColumns});

  out.push_back({q::kInsertToken,
                 "INSERT INTO tokens (" + kTokenColumns +
                     ") VALUES ($1, $2, $3, $4, $5::timestamptz, $6::boolean, $7::timestamptz, $8::bigint, "
                     "$9::bigint, $10::timestamptz, $11::timestamptz, $12::bigint)"});
  out.push_back({q::kGetToken, "SELECT " + kTokenColumns + " FROM tokens WHERE id = $1"});
  out.push_back({q::kFindTokenByHash, "SELECT " + kTokenColumns + " FROM tokens WHERE token_hash = $1"});
  out.push_back({q::kListTokens,
                 paged("tokens WHERE ($1::text IS NULL OR project_id = $1::text)",
                       "SELECT " + kTokenColumns +
                           " FROM tokens WHERE ($1::text IS NULL OR project_id = $1::text) "
                           "ORDER BY created_at DESC, id DESC LIMIT $2::bigint OFFSET $3::bigint",
                       "p.created_at DESC, p.id DESC")});
  // $2 is_active (NULL: unchanged), $3 now, $4 whether max_requests is set, $5 the new limit (NULL: unlimited).
  out.push_back({q::kUpdateToken,
                 "UPDATE tokens SET is_active = COALESCE($2::boolean, is_active), "
                 "deactivated_at = CASE WHEN $2::boolean IS NULL THEN deactivated_at "
                 "WHEN $2::boolean THEN NULL ELSE $3::timestamptz END, "
                 "max_requests = CASE WHEN $4::boolean THEN $5::bigint ELSE max_requests END "
                 "WHERE id = $1 RETURNING " +
                     kTokenColumns});
  // The outer SELECT sees the snapshot from before the UPDATE, so `found` is true for a token that was already
  // inactive. One round trip either way.
  out.push_back({q::kRevokeToken,
                 "WITH revoked AS (UPDATE tokens SET is_active = false, deactivated_at = $2::timestamptz "
                 "WHERE id = $1 AND is_active RETURNING id) "
                 "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1) AS found, "
                 "EXISTS (SELECT 1 FROM revoked) AS revoked"});
  out.push_back({q::kRevokeProjectTokens,
                 "WITH revoked AS (UPDATE tokens SET is_active = false, deactivated_at = $2::timestamptz "
                 "WHERE project_id = $1 AND is_active RETURNING id) "
                 "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1) AS found, "
                 "(SELECT count(*) FROM revoked) AS revoked, "
                 "(SELECT count(*) FROM tokens WHERE project_id = $1) AS total"});
  // The quota check and the increment are one statement: concurrent callers serialize on the row lock and each
  // re-evaluates the WHERE clause against the row as the previous one left it, so exactly max_requests succeed.
  out.push_back({q::kConsumeQuota,
                 "UPDATE tokens SET request_count = request_count + 1, last_used_at = $2::timestamptz "
                 "WHERE id = $1 AND is_active AND (expires_at IS NULL OR expires_at > $2::timestamptz) "
                 "AND (max_requests IS NULL OR request_count < max_requests) RETURNING " +
                     kTokenColumns});
  // Locks the rows of a usage batch in id order before updating them, so two instances flushing overlapping
  // batches queue up instead of deadlocking.
  out.push_back({q::kLockUsageTokens, "SELECT id FROM tokens WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE"});
  out.push_back({q::kAddUsage,
                 "UPDATE tokens AS t SET request_count = t.request_count + d.requests, "
                 "cache_hit_count = t.cache_hit_count + d.cache_hits, "
                 "last_used_at = GREATEST(COALESCE(t.last_used_at, d.last_used_at), d.last_used_at) "
                 "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[]) "
                 "AS d (id, requests, cache_hits, last_used_at) WHERE t.id = d.id"});

  out.push_back({q::kInsertAuditEvent,
                 "INSERT INTO audit_events (id, \"timestamp\", action, actor, outcome, project_id, request_id, "
                 "correlation_id, client_ip, method, path, user_agent, reason, token_id, metadata) "
                 "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)"});
  out.push_back({q::kGetAuditEvent, "SELECT " + kAuditColumns + " FROM audit_events WHERE id = $1"});
  out.push_back({q::kListAuditEvents,
                 paged("audit_events WHERE " + kAuditWhere,
                       "SELECT " + kAuditColumns + " FROM audit_events WHERE " + kAuditWhere +
                           " ORDER BY \"timestamp\" DESC, id DESC LIMIT $12::bigint OFFSET $13::bigint",
                       "p.\"timestamp\" DESC, p.id DESC")});

  out.push_back({q::kSchemaMigrationsExists, "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"});
  out.push_back({q::kReadApplied, kSelectApplied});
  return out;
}

}  // namespace

const std::vector<NamedQuery>& named_queries() {
  static const std::vector<NamedQuery> queries = build();
  return queries;
}

}  // namespace llmproxy::db::postgres::detail
