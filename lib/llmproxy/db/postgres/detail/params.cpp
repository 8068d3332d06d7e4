#include "llmproxy/db/postgres/detail/params.hpp"

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::postgres::detail {

Params& Params::text(const std::string& value) {
  if (value.find('\0') != std::string::npos) throw db::Invalid("text value contains a NUL byte");
  values_.emplace_back(value);
  return *this;
}

Params& Params::text(const std::optional<std::string>& value) { return value ? text(*value) : null(); }

Params& Params::boolean(bool value) {
  values_.emplace_back(value ? "true" : "false");
  return *this;
}

Params& Params::boolean(std::optional<bool> value) { return value ? boolean(*value) : null(); }

Params& Params::integer(std::int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

Params& Params::integer(std::optional<std::int64_t> value) { return value ? integer(*value) : null(); }

Params& Params::time(util::TimePoint value) {
  values_.emplace_back(util::format_time(value));
  return *this;
}

Params& Params::time(const std::optional<util::TimePoint>& value) { return value ? time(*value) : null(); }

Params& Params::null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

std::string array_literal(const std::vector<std::string>& elements) {
  std::string out = "{";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].find('\0') != std::string::npos) throw db::Invalid("text value contains a NUL byte");
    if (i > 0) out += ',';
    out += '"';
    for (char c : elements[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

UsageArrays usage_arrays(const std::vector<UsageDelta>& deltas) {
  std::vector<std::string> ids, requests, cache_hits, last_used, prompt, completion;
  for (const auto& d : deltas) {
    ids.push_back(d.token_id);
    requests.push_back(std::to_string(d.requests));
    cache_hits.push_back(std::to_string(d.cache_hits));
    last_used.push_back(util::format_time(d.last_used_at));
    prompt.push_back(std::to_string(d.prompt_tokens));
    completion.push_back(std::to_string(d.completion_tokens));
  }
  UsageArrays out;
  out.ids = array_literal(ids);
  out.update.text(out.ids).text(array_literal(requests)).text(array_literal(cache_hits)).text(array_literal(last_used));
  out.update.text(array_literal(prompt)).text(array_literal(completion));
  return out;
}

Params daily_usage_arrays(const std::vector<DailyUsageDelta>& deltas) {
  std::vector<std::string> days, projects, tokens, models, requests, prompt, completion, cache_hits;
  for (const auto& d : deltas) {
    days.push_back(d.day);
    projects.push_back(d.project_id);
    tokens.push_back(d.token_id);
    models.push_back(d.model);
    requests.push_back(std::to_string(d.requests));
    prompt.push_back(std::to_string(d.prompt_tokens));
    completion.push_back(std::to_string(d.completion_tokens));
    cache_hits.push_back(std::to_string(d.cache_hits));
  }
  Params out;
  out.text(array_literal(days)).text(array_literal(projects)).text(array_literal(tokens)).text(array_literal(models));
  out.text(array_literal(requests)).text(array_literal(prompt)).text(array_literal(completion));
  out.text(array_literal(cache_hits));
  return out;
}

}  // namespace llmproxy::db::postgres::detail
