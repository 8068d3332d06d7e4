#include "llmproxy/admin/detail/input.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "llmproxy/log/log.hpp"
#include "llmproxy/util/utf8.hpp"

namespace llmproxy::admin::detail {

namespace {

/// Request bodies are flat objects; anything nested deeper is refused while parsing, before it costs memory.
constexpr int kMaxDepth = 8;

struct TooDeep {};

/// Appended piece by piece: GCC 12 in C++20 mode reports a bogus -Wrestrict (a memcpy of 2^63 bytes) for
/// `"literal" + std::string&&`, which prepends into the temporary.
std::string in_quotes(std::string_view name) {
  std::string quoted;
  quoted.reserve(name.size() + 2);
  quoted += '"';
  quoted += name;
  quoted += '"';
  return quoted;
}

/// Number of characters (code points) of valid UTF-8 text.
std::size_t char_count(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

/// Parses a decimal query value (digits only) into [min, max]; nullopt otherwise.
std::optional<std::int64_t> parse_bounded(std::string_view text, std::int64_t min, std::int64_t max) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) return std::nullopt;
  return value;
}

/// An integer member as int64, or nullopt if the value is not an integer JSON number (floats such as 60.0 are
/// refused: a count or a duration in minutes is whole) or does not fit.
std::optional<std::int64_t> as_int64(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  return std::nullopt;
}

}  // namespace

void invalid(const std::string& message) { throw RequestError(400, "invalid_request", message); }

void not_found(std::string_view what, std::string_view id) {
  std::string message(what);
  if (plausible_id(id)) message += " " + in_quotes(id);
  throw RequestError(404, "not_found", message + " not found");
}

nlohmann::json parse_object(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw RequestError(400, "invalid_json", "invalid JSON: the request body is empty, expected a JSON object");
  }
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(body, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > kMaxDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    throw RequestError(400, "invalid_json",
                       "invalid JSON: nested more than " + std::to_string(kMaxDepth) + " levels deep");
  } catch (const nlohmann::json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."; keep the part after
    // the bracket. It may quote the input, so make it valid UTF-8 before it goes into a JSON error body.
    std::string_view what = e.what();
    if (auto close = what.find("] "); what.starts_with("[json.exception") && close != std::string_view::npos) {
      what.remove_prefix(close + 2);
    }
    throw RequestError(400, "invalid_json", "invalid JSON: " + clean_text(what, 300));
  }
  if (!parsed.is_object()) {
    invalid(std::string("the request body must be a JSON object, got ") + parsed.type_name());
  }
  return parsed;
}

void warn_unknown_fields(const RequestContext& ctx, const nlohmann::json& body,
                         std::initializer_list<std::string_view> allowed) {
  std::size_t unknown = 0;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    if (++unknown <= kMaxListedUnknownFields) names.push_back(clean_text(key, 64));
  }
  if (unknown == 0) return;
  log::write(log::Level::warn, "manage_unknown_fields",
             {{"request_id", ctx.ex.request.request_id},
              {"path", clean_text(ctx.ex.request.path(), 256)},
              {"fields", std::move(names)},
              {"count", unknown},
              {"message", "unknown fields in the request body were ignored (names only, values not logged)"}});
}

std::optional<std::string> string_field(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return std::nullopt;
  if (!it->is_string()) invalid("field " + in_quotes(name) + " must be a string");
  return it->get<std::string>();
}

std::optional<bool> bool_field(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return std::nullopt;
  if (!it->is_boolean()) invalid("field " + in_quotes(name) + " must be a boolean (true or false)");
  return it->get<bool>();
}

std::int64_t duration_minutes_field(const nlohmann::json& body) {
  const std::string expectation =
      "field \"duration_minutes\" must be an integer from 1 to " + std::to_string(kMaxDurationMinutes);
  auto it = body.find("duration_minutes");
  if (it == body.end()) invalid("field \"duration_minutes\" is required (an integer from 1 to " +
                                std::to_string(kMaxDurationMinutes) + ")");
  auto value = as_int64(*it);
  if (!value || *value < 1 || *value > kMaxDurationMinutes) invalid(expectation);
  return *value;
}

std::optional<std::optional<std::int64_t>> limit_field(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return std::nullopt;
  if (it->is_null()) return std::optional<std::int64_t>{};
  auto value = as_int64(*it);
  if (!value || *value < 0) {
    invalid("field " + in_quotes(name) + " must be an integer >= 0 or null (0 or null means unlimited)");
  }
  return *value == 0 ? std::optional<std::int64_t>{} : std::optional<std::int64_t>{*value};
}

void validate_name(const std::string& name, const char* field) {
  if (name.find_first_not_of(" \t") == std::string::npos) invalid("field " + in_quotes(field) + " must not be blank");
  if (has_control(name)) invalid("field " + in_quotes(field) + " must not contain control characters");
  if (char_count(name) > kMaxNameChars) {
    invalid("field " + in_quotes(field) + " must be at most " + std::to_string(kMaxNameChars) + " characters");
  }
}

void validate_api_key(const std::string& api_key, const char* field) {
  if (api_key.empty()) invalid("field " + in_quotes(field) + " must not be empty");
  if (api_key.size() > kMaxApiKeyBytes) {
    invalid("field " + in_quotes(field) + " must be at most " + std::to_string(kMaxApiKeyBytes) + " bytes");
  }
  if (has_control(api_key) || api_key.find(' ') != std::string::npos) {
    invalid("field " + in_quotes(field) + " must not contain spaces or control characters");
  }
  if (api_key.find("...") != std::string::npos || api_key.find("****") != std::string::npos) {
    invalid("field " + in_quotes(field) +
            " looks obfuscated (contains \"...\" or \"****\"): send the full key, not the value shown by a read");
  }
}

db::PageRequest parse_page(const server::Request& request) {
  db::PageRequest page;
  page.page_size = kDefaultPageSize;
  std::string value;
  if (request.query_param("page", value)) {
    // The bound keeps (page - 1) * page_size far from overflowing in the repositories' OFFSET.
    auto parsed = parse_bounded(value, 1, 1'000'000'000);
    if (!parsed) invalid("query parameter \"page\" must be an integer >= 1");
    page.page = *parsed;
  }
  if (request.query_param("page_size", value)) {
    auto parsed = parse_bounded(value, 1, kMaxPageSize);
    if (!parsed) {
      invalid("query parameter \"page_size\" must be an integer from 1 to " + std::to_string(kMaxPageSize));
    }
    page.page_size = *parsed;
  }
  return page;
}

std::optional<db::PageRequest> parse_optional_page(const server::Request& request) {
  std::string value;
  if (!request.query_param("page", value) && !request.query_param("page_size", value)) return std::nullopt;
  return parse_page(request);
}

std::optional<std::string> query_filter(const server::Request& request, std::string_view name) {
  std::string value;
  if (!request.query_param(name, value) || value.empty()) return std::nullopt;
  // Filters are bound as text parameters; PostgreSQL rejects invalid UTF-8, so refuse it here for both drivers.
  if (clean_text(value, value.size()) != value || value.find('\0') != std::string::npos) {
    invalid("query parameter " + in_quotes(name) + " must be valid UTF-8 text without NUL characters");
  }
  return value;
}

bool plausible_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

std::string clean_text(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = util::utf8_sequence(text.substr(i));
    const std::string_view piece = len ? text.substr(i, len) : std::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += len ? len : 1;
  }
  return out;
}

}  // namespace llmproxy::admin::detail
