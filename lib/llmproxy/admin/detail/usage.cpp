// Usage reads: GET /manage/usage (SPEC §14): the usage_daily series, filtered and grouped.
#include <chrono>
#include <string>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/admin/detail/views.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/db/rules.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::admin::detail {

namespace {

/// The longest range one request may ask for: a year and a day (a chart of a year; anything longer is paged by
/// asking again).
constexpr int kMaxDays = 366;
/// The range when none is given: the last 30 days, today included.
constexpr int kDefaultDays = 30;

using Days = std::chrono::sys_days;

Days day_of(const std::string& text, const char* name) {
  if (!db::valid_day(text)) {
    invalid(std::string("query parameter \"") + name + "\" must be a date such as 2026-12-03 (YYYY-MM-DD, UTC)");
  }
  const auto parsed = util::parse_time(text + "T00:00:00Z");
  if (!parsed) invalid(std::string("query parameter \"") + name + "\" must be a valid date");
  return std::chrono::floor<std::chrono::days>(*parsed);
}

std::string text_of(Days day) { return util::format_time(util::TimePoint{day}).substr(0, 10); }

Json counters_json(std::int64_t requests, std::int64_t prompt, std::int64_t completion, std::int64_t cache_hits) {
  Json j;
  j["requests"] = requests;
  j["prompt_tokens"] = prompt;
  j["completion_tokens"] = completion;
  j["total_tokens"] = prompt + completion;
  j["cache_hits"] = cache_hits;
  return j;
}

}  // namespace

HandlerResult get_usage(RequestContext& ctx) {
  const auto& request = ctx.ex.request;
  db::UsageQuery query;
  query.project_id = query_filter(request, "project_id");
  query.token_id = query_filter(request, "token_id");
  query.model = query_filter(request, "model");
  const std::string group = query_filter(request, "group_by").value_or("day");
  const char* key_name = "day";
  if (group == "day") {
    query.group_by = db::UsageGroupBy::day;
  } else if (group == "model") {
    query.group_by = db::UsageGroupBy::model;
    key_name = "model";
  } else if (group == "token") {
    query.group_by = db::UsageGroupBy::token;
    key_name = "token_id";
  } else {
    invalid("query parameter \"group_by\" must be one of day, model, token");
  }
  const Days today = std::chrono::floor<std::chrono::days>(util::now());
  const auto to_text = query_filter(request, "to");
  const auto from_text = query_filter(request, "from");
  const Days to = to_text ? day_of(*to_text, "to") : today;
  const Days from = from_text ? day_of(*from_text, "from") : to - std::chrono::days(kDefaultDays - 1);
  if (from > to) invalid("query parameter \"from\" must not be after \"to\"");
  if (to - from >= std::chrono::days(kMaxDays)) {
    invalid("the range from \"from\" to \"to\" must be at most " + std::to_string(kMaxDays) + " days");
  }
  query.from_day = text_of(from);
  query.to_day = text_of(to);

  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, query] { return db->query_usage(query); });
  const std::vector<db::UsageRow> rows = co_await std::move(pending);

  Json series = Json::array();
  std::int64_t requests = 0, prompt = 0, completion = 0, hits = 0;
  const auto add = [&](const std::string& key, const db::UsageRow* row) {
    Json item = row ? counters_json(row->requests, row->prompt_tokens, row->completion_tokens, row->cache_hits)
                    : counters_json(0, 0, 0, 0);
    item[key_name] = key;
    series.push_back(std::move(item));
  };
  for (const db::UsageRow& r : rows) {
    requests += r.requests;
    prompt += r.prompt_tokens;
    completion += r.completion_tokens;
    hits += r.cache_hits;
  }
  if (query.group_by == db::UsageGroupBy::day) {
    // Every day of the range, quiet days as zeros (rows come ordered by day): ready to draw.
    std::size_t next = 0;
    for (Days d = from; d <= to; d += std::chrono::days(1)) {
      const std::string key = text_of(d);
      const bool has = next < rows.size() && rows[next].key == key;
      add(key, has ? &rows[next] : nullptr);
      if (has) ++next;
    }
  } else {
    for (const db::UsageRow& r : rows) add(r.key, &r);
  }

  Json body;
  body["group_by"] = group;
  body["from"] = *query.from_day;
  body["to"] = *query.to_day;
  body["project_id"] = query.project_id ? Json(*query.project_id) : Json(nullptr);
  body["token_id"] = query.token_id ? Json(*query.token_id) : Json(nullptr);
  body["model"] = query.model ? Json(*query.model) : Json(nullptr);
  body["series"] = std::move(series);
  body["totals"] = counters_json(requests, prompt, completion, hits);
  co_return json_response(200, body);
}

}  // namespace llmproxy::admin::detail
