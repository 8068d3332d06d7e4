#pragma once
/// Validation of what a management client sends: JSON bodies, their fields, query parameters and path ids.
/// Every function throws RequestError (400) with a message naming the field or parameter, so handlers can
/// validate everything before they touch the database. Pure functions; any thread.
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/db/models.hpp"
#include "llmproxy/server/http_types.hpp"

namespace llmproxy::admin::detail {

inline constexpr std::int64_t kMaxDurationMinutes = 525600;  // one year
inline constexpr std::int64_t kDefaultPageSize = 20;
inline constexpr std::int64_t kMaxPageSize = 100;
inline constexpr std::size_t kMaxNameChars = 256;
inline constexpr std::size_t kMaxApiKeyBytes = 4096;

/// The body as a JSON object. 400 invalid_json for an empty body, a syntax error (with line/column) or nesting
/// deeper than a flat request needs; 400 invalid_request for valid JSON that is not an object.
nlohmann::json parse_object(std::string_view body);

/// Members of `body` not in `allowed` are ignored, like the reference does (its clients may send fields we do
/// not know); each request that has some logs one warning `manage_unknown_fields` with their names (cleaned,
/// at most kMaxListedUnknownFields of them, never their values), its request id and path. Known fields keep
/// their strict type checks in the *_field functions.
void warn_unknown_fields(const RequestContext& ctx, const nlohmann::json& body,
                         std::initializer_list<std::string_view> allowed);
inline constexpr std::size_t kMaxListedUnknownFields = 16;

/// The string member `name`; nullopt when absent. Wrong type (null included) -> 400.
std::optional<std::string> string_field(const nlohmann::json& body, const char* name);
/// The boolean member `name`; nullopt when absent. Wrong type (null included) -> 400.
std::optional<bool> bool_field(const nlohmann::json& body, const char* name);
/// `duration_minutes`: required, an integer from 1 to kMaxDurationMinutes.
std::int64_t duration_minutes_field(const nlohmann::json& body);
/// A limit member such as `max_requests`, `max_tokens` or `rate_limit_rpm`: absent -> nullopt; null or 0 ->
/// no limit (inner nullopt); > 0 -> the limit; anything else (negative, fractional, other types) -> 400.
std::optional<std::optional<std::int64_t>> limit_field(const nlohmann::json& body, const char* name);
inline std::optional<std::optional<std::int64_t>> max_requests_field(const nlohmann::json& body) {
  return limit_field(body, "max_requests");
}

/// A project name: non-blank, at most kMaxNameChars characters, no control characters. Stored verbatim.
void validate_name(const std::string& name, const char* field);
/// An upstream API key: non-empty, bounded, no whitespace or control characters (it becomes a header value),
/// and not an obfuscated value copied back from a read (contains "..." or "****").
void validate_api_key(const std::string& api_key, const char* field);

/// `page` (>= 1, default 1) and `page_size` (1..kMaxPageSize, default kDefaultPageSize) from the query.
db::PageRequest parse_page(const server::Request& request);
/// For the project and token lists: nullopt (every row, like the reference) when the query has neither `page`
/// nor `page_size`, else parse_page.
std::optional<db::PageRequest> parse_optional_page(const server::Request& request);
/// The PageRequest that returns every row in one page.
inline constexpr db::PageRequest kEveryRow{1, std::numeric_limits<std::int64_t>::max()};
/// A query parameter used as a filter; nullopt when absent or empty.
std::optional<std::string> query_filter(const server::Request& request, std::string_view name);

/// True if `id` could be one of our ids (printable ASCII, 1..128 chars). Anything else cannot exist, so the
/// handlers answer 404 without a database round trip (and never store such bytes in audit rows).
bool plausible_id(std::string_view id);

/// `text` as valid UTF-8 (invalid bytes replaced by U+FFFD), cut to at most `max_bytes` on a character
/// boundary. For request data copied into audit rows and messages.
std::string clean_text(std::string_view text, std::size_t max_bytes);

/// Throws RequestError(400, "invalid_request", message).
[[noreturn]] void invalid(const std::string& message);
/// Throws RequestError(404, "not_found", "<what> \"<id>\" not found") (the id only when plausible).
[[noreturn]] void not_found(std::string_view what, std::string_view id);

}  // namespace llmproxy::admin::detail
