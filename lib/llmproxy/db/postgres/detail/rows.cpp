#include "llmproxy/db/postgres/detail/rows.hpp"

#include <charconv>
#include <pqxx/field>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::postgres::detail {

util::TimePoint time_of(const pqxx::field& f) {
  const auto t = util::parse_time(f.is_null() ? "" : f.c_str());
  if (!t) {
    throw db::Error("unexpected timestamp in column " + std::string{f.name()} + ": '" +
                    std::string{f.is_null() ? "NULL" : f.c_str()} + "'");
  }
  return *t;
}

std::optional<util::TimePoint> optional_time_of(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return time_of(f);
}

std::optional<std::string> optional_text_of(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return std::string{f.c_str(), f.size()};
}

bool bool_of(const pqxx::field& f) {
  // PostgreSQL's text form of a boolean is exactly "t" or "f".
  return !f.is_null() && f.c_str()[0] == 't';
}

std::int64_t integer_of(const pqxx::field& f) {
  if (f.is_null()) throw db::Error("unexpected NULL in column " + std::string{f.name()});
  std::int64_t value = 0;
  const char* text = f.c_str();
  const char* end = text + f.size();
  const auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc{} || ptr != end) {
    throw db::Error("unexpected integer in column " + std::string{f.name()});
  }
  return value;
}

Project project_of(const pqxx::row& r) {
  Project p;
  p.id = r["id"].c_str();
  p.name = r["name"].c_str();
  p.api_key = r["api_key"].c_str();
  p.is_active = bool_of(r["is_active"]);
  p.deactivated_at = optional_time_of(r["deactivated_at"]);
  p.created_at = time_of(r["created_at"]);
  p.updated_at = time_of(r["updated_at"]);
  if (!r["rate_limit_rpm"].is_null()) p.rate_limit_rpm = integer_of(r["rate_limit_rpm"]);
  return p;
}

Token token_of(const pqxx::row& r) {
  Token t;
  t.id = r["id"].c_str();
  t.token_hash = r["token_hash"].c_str();
  t.token_hint = r["token_hint"].c_str();
  t.project_id = r["project_id"].c_str();
  t.expires_at = optional_time_of(r["expires_at"]);
  t.is_active = bool_of(r["is_active"]);
  t.deactivated_at = optional_time_of(r["deactivated_at"]);
  t.request_count = integer_of(r["request_count"]);
  if (!r["max_requests"].is_null()) t.max_requests = integer_of(r["max_requests"]);
  t.created_at = time_of(r["created_at"]);
  t.last_used_at = optional_time_of(r["last_used_at"]);
  t.cache_hit_count = integer_of(r["cache_hit_count"]);
  t.prompt_tokens = integer_of(r["prompt_tokens"]);
  t.completion_tokens = integer_of(r["completion_tokens"]);
  if (!r["max_tokens"].is_null()) t.max_tokens = integer_of(r["max_tokens"]);
  if (!r["rate_limit_rpm"].is_null()) t.rate_limit_rpm = integer_of(r["rate_limit_rpm"]);
  return t;
}

AuditEvent audit_event_of(const pqxx::row& r) {
  AuditEvent e;
  e.id = r["id"].c_str();
  e.timestamp = time_of(r["timestamp"]);
  e.action = r["action"].c_str();
  e.actor = r["actor"].c_str();
  e.outcome = r["outcome"].c_str();
  e.project_id = optional_text_of(r["project_id"]);
  e.request_id = optional_text_of(r["request_id"]);
  e.correlation_id = optional_text_of(r["correlation_id"]);
  e.client_ip = optional_text_of(r["client_ip"]);
  e.method = optional_text_of(r["method"]);
  e.path = optional_text_of(r["path"]);
  e.user_agent = optional_text_of(r["user_agent"]);
  e.reason = optional_text_of(r["reason"]);
  e.token_id = optional_text_of(r["token_id"]);
  e.metadata = optional_text_of(r["metadata"]);
  return e;
}

UsageRow usage_row_of(const pqxx::row& r) {
  UsageRow u;
  u.key = std::string{r["usage_key"].c_str(), r["usage_key"].size()};
  u.requests = integer_of(r["requests"]);
  u.prompt_tokens = integer_of(r["prompt_tokens"]);
  u.completion_tokens = integer_of(r["completion_tokens"]);
  u.cache_hits = integer_of(r["cache_hits"]);
  return u;
}

UsageTotals usage_totals_of(const pqxx::row& r) {
  return UsageTotals{integer_of(r["requests"]), integer_of(r["prompt_tokens"]), integer_of(r["completion_tokens"]),
                     integer_of(r["cache_hits"])};
}

migrate::AppliedMigration applied_of(const pqxx::row& r) {
  migrate::AppliedMigration m;
  m.version = integer_of(r["version"]);
  m.name = r["name"].c_str();
  m.checksum = r["checksum"].c_str();
  m.applied_at = time_of(r["applied_at"]);
  m.execution_ms = integer_of(r["execution_ms"]);
  return m;
}

}  // namespace llmproxy::db::postgres::detail
