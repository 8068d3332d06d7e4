#pragma once
/// JSON views of the repository rows, with the field names of the reference service. They never contain a
/// token secret or hash; a project's api_key is whatever string the caller passes (obfuscated for reads).
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/db/models.hpp"

namespace llmproxy::admin::detail {

/// The reference's display form of an API key, by characters: up to 4 -> all `*`; 5..12 -> first 2 then `*`;
/// longer -> first 8 + "..." + last 4 (`sk-proj-...wxyz`).
std::string obfuscate_api_key(std::string_view api_key);

/// `id, name, api_key, is_active, deactivated_at, created_at, updated_at`; `api_key` as given.
Json project_json(const db::Project& project, const std::string& api_key);
/// The reference's obfuscated token (`sk-` + first 4 + `*` for the hidden middle + last 4 of the random part),
/// derived from our stored hint `sk-AbCd...wXyZ`: our tokens (and the reference's) have 22 random characters,
/// so the middle is 14 `*`. A hint of another shape is returned as it is (it shows no more than the hint).
std::string obfuscated_token(std::string_view token_hint);

/// `id, token, token_hint, project_id, expires_at, is_active, deactivated_at, request_count, max_requests,
/// created_at, last_used_at, cache_hit_count`; `token` is obfuscated_token(hint); absent times and an unlimited
/// quota are null.
Json token_json(const db::Token& token);
/// Every audit column; absent ones null; `metadata` is the stored JSON text (a string, like the reference).
Json audit_json(const db::AuditEvent& event);
/// `revoked_count, already_revoked_count, total_tokens`.
Json revoke_json(const db::RevokeResult& result);

/// The reference's pagination object: `page, page_size, total_count, total_pages, has_next, has_prev`.
Json pagination_json(const db::PageRequest& page, std::int64_t total_count);
/// The same numbers as headers, for lists whose body is a bare array: X-Total-Count, X-Page, X-Page-Size,
/// X-Total-Pages. For an unpaged list (`page` nullopt: every row) only X-Total-Count.
void add_pagination_headers(server::Headers& headers, const std::optional<db::PageRequest>& page,
                            std::int64_t total_count);

/// A JSON response; invalid UTF-8 in stored text is replaced rather than failing the response.
server::Response json_response(int status, const Json& body);
/// The text json_response sends, for bodies serialised off the I/O thread (long lists).
std::string json_text(const Json& body);
/// `[item(rows[0]),item(rows[1]),...]` as json_text writes it, one item at a time: no JSON tree of the whole list.
template <class Rows, class Item>
std::string json_array_text(const Rows& rows, const Item& item) {
  std::string out = "[";
  for (const auto& row : rows) {
    if (out.size() > 1) out += ',';
    out += json_text(item(row));
  }
  out += ']';
  return out;
}

}  // namespace llmproxy::admin::detail
