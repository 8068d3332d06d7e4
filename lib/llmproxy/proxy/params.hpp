#pragma once
/// The `param_whitelist` check of a request body (SPEC §5.1, §5.5 "cost before trust"). Runs only after the
/// token and its project were accepted. Bounded: a streaming (SAX) JSON parse that looks at top-level fields
/// only, with at most kMaxJsonDepth levels of nesting, over a body MAX_REQUEST_SIZE already bounds; memory is
/// O(depth) plus the largest single string. Fails closed: a body that cannot be checked is refused.
/// Pure functions: no I/O, total on arbitrary bytes (a libFuzzer target), any thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmproxy::proxy {

/// Top-level field -> glob patterns (config::Provider::param_whitelist).
using ParamWhitelist = std::vector<std::pair<std::string, std::vector<std::string>>>;

/// Deepest nesting of arrays/objects accepted in a checked JSON body (the top-level object is depth 1).
/// Real API payloads stay far below (chat messages with tool schemas nest ~10 deep).
inline constexpr std::size_t kMaxJsonDepth = 64;

/// Checks `body` against `whitelist`; returns "" when it passes, else the reason (for a 400 param_not_allowed).
/// Passes: an empty whitelist, an empty body, a body where no whitelisted field is present. Otherwise:
///  - `Content-Type: multipart/form-data; boundary=...`: every form field named like a whitelisted field (e.g.
///    `Content-Disposition: form-data; name="model"`) must match; malformed multipart is refused;
///  - anything else is read as JSON: it must be one object, nested at most kMaxJsonDepth deep, and every
///    top-level occurrence of a whitelisted field must be a string that matches one of its patterns.
/// Never throws except std::bad_alloc.
std::string check_params(const ParamWhitelist& whitelist, std::string_view content_type, std::string_view body);

}  // namespace llmproxy::proxy
