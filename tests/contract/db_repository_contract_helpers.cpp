#include "contract/db_repository_contract_helpers.hpp"

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::contract {

using db::TimePoint;
using std::chrono::microseconds;

std::unique_ptr<db::Driver> open_fresh(const MakeFresh& make_fresh) {
  auto owned = make_fresh();
  REQUIRE(owned != nullptr);
  return owned;
}

TimePoint utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int us) {
  const auto day = std::chrono::sys_days{std::chrono::year{y} / mo / d};
  return std::chrono::time_point_cast<microseconds>(day) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s) + microseconds(us);
}

TimePoint at(microseconds offset) { return utc(2026, 1, 2, 3, 4, 5, 123456) + offset; }

std::string show(const std::optional<TimePoint>& t) {
  if (!t) return "null";
  return std::to_string(t->time_since_epoch().count()) + " (" + util::format_time(*t) + ")";
}
std::string show(const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : "null"; }
std::string show(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "null"; }

db::Project make_project(const std::string& name, TimePoint created) {
  db::Project p;
  p.id = util::uuid_v4();
  p.name = name;
  p.api_key = "sk-upstream-" + util::uuid_v4();
  p.created_at = created;
  p.updated_at = created;
  return p;
}

db::Token make_token(const std::string& project_id, TimePoint created,
                     std::optional<std::int64_t> max_requests, std::optional<TimePoint> expires_at) {
  db::Token t;
  t.id = util::uuid_v4();
  t.token_hash = util::sha256_hex(t.id);
  t.token_hint = "sk-AbCd...wXyZ";
  t.project_id = project_id;
  t.expires_at = expires_at;
  t.max_requests = max_requests;
  t.created_at = created;
  return t;
}

db::AuditEvent make_event(TimePoint ts, const std::string& action, const std::string& outcome) {
  db::AuditEvent e;
  e.id = util::uuid_v4();
  e.timestamp = ts;
  e.action = action;
  e.actor = "management";
  e.outcome = outcome;
  return e;
}

void check_same(const db::Project& got, const db::Project& want) {
  CHECK(got.id == want.id);
  CHECK(got.name == want.name);
  CHECK(got.api_key == want.api_key);
  CHECK(got.is_active == want.is_active);
  CHECK(show(got.deactivated_at) == show(want.deactivated_at));
  CHECK(show(got.created_at) == show(want.created_at));
  CHECK(show(got.updated_at) == show(want.updated_at));
  CHECK(show(got.rate_limit_rpm) == show(want.rate_limit_rpm));
}

void check_same(const db::Token& got, const db::Token& want) {
  CHECK(got.id == want.id);
  CHECK(got.token_hash == want.token_hash);
  CHECK(got.token_hint == want.token_hint);
  CHECK(got.project_id == want.project_id);
  CHECK(show(got.expires_at) == show(want.expires_at));
  CHECK(got.is_active == want.is_active);
  CHECK(show(got.deactivated_at) == show(want.deactivated_at));
  CHECK(got.request_count == want.request_count);
  CHECK(show(got.max_requests) == show(want.max_requests));
  CHECK(show(got.created_at) == show(want.created_at));
  CHECK(show(got.last_used_at) == show(want.last_used_at));
  CHECK(got.cache_hit_count == want.cache_hit_count);
  CHECK(got.prompt_tokens == want.prompt_tokens);
  CHECK(got.completion_tokens == want.completion_tokens);
  CHECK(show(got.max_tokens) == show(want.max_tokens));
  CHECK(show(got.rate_limit_rpm) == show(want.rate_limit_rpm));
}

void check_same(const db::AuditEvent& got, const db::AuditEvent& want) {
  CHECK(got.id == want.id);
  CHECK(show(got.timestamp) == show(want.timestamp));
  CHECK(got.action == want.action);
  CHECK(got.actor == want.actor);
  CHECK(got.outcome == want.outcome);
  CHECK(show(got.project_id) == show(want.project_id));
  CHECK(show(got.request_id) == show(want.request_id));
  CHECK(show(got.correlation_id) == show(want.correlation_id));
  CHECK(show(got.client_ip) == show(want.client_ip));
  CHECK(show(got.method) == show(want.method));
  CHECK(show(got.path) == show(want.path));
  CHECK(show(got.user_agent) == show(want.user_agent));
  CHECK(show(got.reason) == show(want.reason));
  CHECK(show(got.token_id) == show(want.token_id));
  // JSONB (PostgreSQL) normalizes whitespace and key order: compare the JSON value, not the text.
  REQUIRE(got.metadata.has_value() == want.metadata.has_value());
  if (want.metadata) CHECK(nlohmann::json::parse(*got.metadata) == nlohmann::json::parse(*want.metadata));
}

std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t from, std::size_t n) {
  if (from >= v.size()) return {};
  return {v.begin() + static_cast<std::ptrdiff_t>(from),
          v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), from + n))};
}

Names name_events(const std::vector<std::pair<std::string, const db::AuditEvent*>>& named) {
  Names out;
  for (const auto& [name, e] : named) out[e->id] = name;
  return out;
}

std::string listed(db::Database& d, db::AuditFilter f, const Names& names) {
  if (f.page.page == 1 && f.page.page_size == 20) f.page.page_size = 100;
  const auto page = d.list_audit_events(f);
  std::string out;
  for (const auto& e : page.items) {
    const auto it = names.find(e.id);
    out += (it == names.end() ? e.id : it->second) + " ";
  }
  return out + "(total " + std::to_string(page.total_count) + ")";
}

db::AuditFilter search_for(const std::string& text) {
  db::AuditFilter f;
  f.search = text;
  return f;
}

}  // namespace llmproxy::contract
