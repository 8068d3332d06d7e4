// Audit trail reads: /manage/audit[/{id}] (SPEC §7.3), newest first, filtered and paginated.
#include <algorithm>
#include <chrono>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/admin/detail/views.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::admin::detail {

namespace {

std::optional<util::TimePoint> time_filter(const server::Request& request, const char* name) {
  auto text = query_filter(request, name);
  if (!text) return std::nullopt;
  auto parsed = util::parse_time(*text);
  if (!parsed) {
    invalid(std::string("query parameter \"") + name +
            "\" must be an RFC 3339 time such as 2026-01-02T03:04:05Z or 2026-01-02T03:04:05.5+01:00");
  }
  // Any syntactically valid time is a valid filter. Times outside years 1-9999 (year 0, or year 9999 shifted
  // by an offset) are moved to the nearest end of that range: no stored event lies beyond it, so the result is
  // the same, and both drivers can compare with it (PostgreSQL has no year 0 and fails on such literals).
  using namespace std::chrono;
  static const util::TimePoint kEarliest = sys_days{year{1} / January / 1};
  static const util::TimePoint kLatest = sys_days{year{10000} / January / 1} - microseconds{1};
  return std::clamp(*parsed, kEarliest, kLatest);
}

}  // namespace

HandlerResult list_audit_events(RequestContext& ctx) {
  const auto& request = ctx.ex.request;
  db::AuditFilter filter;
  filter.page = parse_page(request);
  filter.action = query_filter(request, "action");
  filter.project_id = query_filter(request, "project_id");
  filter.outcome = query_filter(request, "outcome");
  filter.actor = query_filter(request, "actor");
  filter.request_id = query_filter(request, "request_id");
  filter.client_ip = query_filter(request, "client_ip");
  filter.method = query_filter(request, "method");
  filter.path = query_filter(request, "path");
  filter.search = query_filter(request, "search");
  filter.correlation_id = query_filter(request, "correlation_id");
  filter.start_time = time_filter(request, "start_time");
  filter.end_time = time_filter(request, "end_time");
  if (filter.outcome && *filter.outcome != "success" && *filter.outcome != "failure" &&
      *filter.outcome != "denied" && *filter.outcome != "error") {
    invalid("query parameter \"outcome\" must be one of success, failure, denied, error");
  }
  if (filter.start_time && filter.end_time && *filter.start_time > *filter.end_time) {
    invalid("query parameter \"start_time\" must not be after \"end_time\"");
  }

  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, filter] { return db->list_audit_events(filter); });
  auto rows = co_await std::move(pending);
  Json events = Json::array();
  for (const auto& e : rows.items) events.push_back(audit_json(e));
  Json body;
  body["events"] = std::move(events);
  body["pagination"] = pagination_json(filter.page, rows.total_count);
  co_return json_response(200, body);
}

HandlerResult get_audit_event(RequestContext& ctx) {
  if (!plausible_id(ctx.id)) not_found("audit event", ctx.id);
  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, id = ctx.id] { return db->get_audit_event(id); },
                        DbMessages::missing("audit event \"" + ctx.id + "\" not found"));
  auto event = co_await std::move(pending);
  co_return json_response(200, audit_json(event));
}

}  // namespace llmproxy::admin::detail
