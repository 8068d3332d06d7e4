#include "llmproxy/admin/detail/views.hpp"

#include <vector>

#include "llmproxy/util/time.hpp"

namespace llmproxy::admin::detail {

namespace {

Json time_or_null(const std::optional<util::TimePoint>& t) { return t ? Json(util::format_time(*t)) : Json(nullptr); }

Json text_or_null(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

/// Splits UTF-8 text into characters (a stray byte counts as one), so obfuscation never cuts a character.
std::vector<std::string_view> characters(std::string_view s) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::int64_t total_pages(const db::PageRequest& page, std::int64_t total_count) {
  return (total_count + page.page_size - 1) / page.page_size;
}

}  // namespace

std::string obfuscate_api_key(std::string_view api_key) {
  const auto chars = characters(api_key);
  const std::size_t n = chars.size();
  std::string out;
  const auto take = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) out += chars[i];
  };
  if (n <= 4) return std::string(n, '*');
  if (n <= 12) {
    take(0, 2);
    return out + std::string(n - 2, '*');
  }
  take(0, 8);
  out += "...";
  take(n - 4, n);
  return out;
}

Json project_json(const db::Project& project, const std::string& api_key) {
  Json j;
  j["id"] = project.id;
  j["name"] = project.name;
  j["api_key"] = api_key;
  j["is_active"] = project.is_active;
  j["deactivated_at"] = time_or_null(project.deactivated_at);
  j["created_at"] = util::format_time(project.created_at);
  j["updated_at"] = util::format_time(project.updated_at);
  j["rate_limit_rpm"] = project.rate_limit_rpm ? Json(*project.rate_limit_rpm) : Json(nullptr);
  return j;
}

std::string obfuscated_token(std::string_view hint) {
  constexpr std::string_view kPrefix = "sk-";
  constexpr std::string_view kGap = "...";
  constexpr std::size_t kRandomChars = 22;
  constexpr std::size_t kShown = 4;
  if (hint.size() != kPrefix.size() + 2 * kShown + kGap.size() || !hint.starts_with(kPrefix) ||
      hint.substr(kPrefix.size() + kShown, kGap.size()) != kGap) {
    return std::string(hint);
  }
  std::string out(hint.substr(0, kPrefix.size() + kShown));
  out.append(kRandomChars - 2 * kShown, '*');
  out += hint.substr(hint.size() - kShown);
  return out;
}

Json token_json(const db::Token& token) {
  Json j;
  j["id"] = token.id;
  j["token"] = obfuscated_token(token.token_hint);
  j["token_hint"] = token.token_hint;
  j["project_id"] = token.project_id;
  j["expires_at"] = time_or_null(token.expires_at);
  j["is_active"] = token.is_active;
  j["deactivated_at"] = time_or_null(token.deactivated_at);
  j["request_count"] = token.request_count;
  j["max_requests"] = token.max_requests ? Json(*token.max_requests) : Json(nullptr);
  j["created_at"] = util::format_time(token.created_at);
  j["last_used_at"] = time_or_null(token.last_used_at);
  j["cache_hit_count"] = token.cache_hit_count;
  j["prompt_tokens"] = token.prompt_tokens;
  j["completion_tokens"] = token.completion_tokens;
  j["total_tokens"] = token.prompt_tokens + token.completion_tokens;
  j["max_tokens"] = token.max_tokens ? Json(*token.max_tokens) : Json(nullptr);
  j["rate_limit_rpm"] = token.rate_limit_rpm ? Json(*token.rate_limit_rpm) : Json(nullptr);
  return j;
}

Json audit_json(const db::AuditEvent& e) {
  Json j;
  j["id"] = e.id;
  j["timestamp"] = util::format_time(e.timestamp);
  j["action"] = e.action;
  j["actor"] = e.actor;
  j["outcome"] = e.outcome;
  j["project_id"] = text_or_null(e.project_id);
  j["token_id"] = text_or_null(e.token_id);
  j["request_id"] = text_or_null(e.request_id);
  j["correlation_id"] = text_or_null(e.correlation_id);
  j["client_ip"] = text_or_null(e.client_ip);
  j["method"] = text_or_null(e.method);
  j["path"] = text_or_null(e.path);
  j["user_agent"] = text_or_null(e.user_agent);
  j["reason"] = text_or_null(e.reason);
  j["metadata"] = text_or_null(e.metadata);
  return j;
}

Json revoke_json(const db::RevokeResult& result) {
  Json j;
  j["revoked_count"] = result.revoked_count;
  j["already_revoked_count"] = result.already_revoked_count;
  j["total_tokens"] = result.total_tokens;
  return j;
}

Json pagination_json(const db::PageRequest& page, std::int64_t total_count) {
  const auto pages = total_pages(page, total_count);
  Json j;
  j["page"] = page.page;
  j["page_size"] = page.page_size;
  j["total_count"] = total_count;
  j["total_pages"] = pages;
  j["has_next"] = page.page < pages;
  j["has_prev"] = page.page > 1;
  return j;
}

void add_pagination_headers(server::Headers& headers, const std::optional<db::PageRequest>& page,
                            std::int64_t total_count) {
  headers.set("X-Total-Count", std::to_string(total_count));
  if (!page) return;
  headers.set("X-Page", std::to_string(page->page));
  headers.set("X-Page-Size", std::to_string(page->page_size));
  headers.set("X-Total-Pages", std::to_string(total_pages(*page, total_count)));
}

std::string json_text(const Json& body) {
  return body.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

server::Response json_response(int status, const Json& body) { return server::Response::json(status, json_text(body)); }

}  // namespace llmproxy::admin::detail
