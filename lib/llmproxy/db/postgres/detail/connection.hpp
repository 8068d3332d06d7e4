#pragma once
/// DATABASE_URL handling: appending the options every connection needs, validating the string with libpq and
/// keeping the password out of every message built from libpq's text.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace llmproxy::db::postgres::detail {

/// True for the URI form (`postgres://` or `postgresql://`), false for the `key=value` form.
bool is_uri(std::string_view url);

/// `url` plus `connect_timeout=<seconds>` (rounded up, at least 1) and `fallback_application_name=llm-proxy`
/// in the syntax of its form (URI query parameters or `key=value` pairs). A later keyword wins in libpq, so the
/// configured timeout replaces one written in the URL.
std::string with_connection_options(std::string_view url, std::chrono::milliseconds connect_timeout);

/// Why libpq rejects `conninfo` (already scrubbed), or nullopt when it parses.
std::optional<std::string> conninfo_error(const std::string& conninfo, std::string_view redacted);

/// A libpq message on one line, safe to show: the password (when `conninfo` parses) and every quoted fragment
/// that does not occur in the redacted target are replaced by `***`.
std::string scrub(std::string_view message, const std::string& conninfo, std::string_view redacted);

}  // namespace llmproxy::db::postgres::detail
