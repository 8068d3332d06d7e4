#include "llmproxy/db/sqlite/detail/rows.hpp"

namespace llmproxy::db::sqlite::detail {

Project project_of(const Query& q, int first) {
  Project p;
  p.id = q.text(first + 0);
  p.name = q.text(first + 1);
  p.api_key = q.text(first + 2);
  p.is_active = q.boolean(first + 3);
  p.deactivated_at = q.opt_time(first + 4);
  p.created_at = q.time(first + 5);
  p.updated_at = q.time(first + 6);
  p.rate_limit_rpm = q.opt_int64(first + 7);
  return p;
}

Token token_of(const Query& q, int first) {
  Token t;
  t.id = q.text(first + 0);
  t.token_hash = q.text(first + 1);
  t.token_hint = q.text(first + 2);
  t.project_id = q.text(first + 3);
  t.expires_at = q.opt_time(first + 4);
  t.is_active = q.boolean(first + 5);
  t.deactivated_at = q.opt_time(first + 6);
  t.request_count = q.int64(first + 7);
  t.max_requests = q.opt_int64(first + 8);
  t.created_at = q.time(first + 9);
  t.last_used_at = q.opt_time(first + 10);
  t.cache_hit_count = q.int64(first + 11);
  t.prompt_tokens = q.int64(first + 12);
  t.completion_tokens = q.int64(first + 13);
  t.max_tokens = q.opt_int64(first + 14);
  t.rate_limit_rpm = q.opt_int64(first + 15);
  return t;
}

AuditEvent audit_event_of(const Query& q, int first) {
  AuditEvent e;
  e.id = q.text(first + 0);
  e.timestamp = q.time(first + 1);
  e.action = q.text(first + 2);
  e.actor = q.text(first + 3);
  e.outcome = q.text(first + 4);
  e.project_id = q.opt_text(first + 5);
  e.request_id = q.opt_text(first + 6);
  e.correlation_id = q.opt_text(first + 7);
  e.client_ip = q.opt_text(first + 8);
  e.method = q.opt_text(first + 9);
  e.path = q.opt_text(first + 10);
  e.user_agent = q.opt_text(first + 11);
  e.reason = q.opt_text(first + 12);
  e.token_id = q.opt_text(first + 13);
  e.metadata = q.opt_text(first + 14);
  return e;
}

UsageRow usage_row_of(const Query& q) {
  UsageRow r;
  r.key = q.text(0);
  r.requests = q.int64(1);
  r.prompt_tokens = q.int64(2);
  r.completion_tokens = q.int64(3);
  r.cache_hits = q.int64(4);
  return r;
}

migrate::AppliedMigration applied_of(const Query& q) {
  migrate::AppliedMigration m;
  m.version = q.int64(0);
  m.name = q.text(1);
  m.checksum = q.text(2);
  m.applied_at = q.time(3);
  m.execution_ms = q.int64(4);
  return m;
}

}  // namespace llmproxy::db::sqlite::detail
