#pragma once
/// Opening one libpq connection: the options every connection needs, the connection string validated with libpq,
/// and the password kept out of every message built from libpq's text. The form rules of DATABASE_URL itself
/// (URI or key=value, redaction) are config/database_url.hpp's. The twin of db/sqlite/detail/connection.hpp.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/connection>

namespace llmproxy::db::postgres::detail {

/// `url` plus `connect_timeout=<seconds>` (rounded up, at least 1) and `fallback_application_name=llm-proxy`
/// in the syntax of its form (URI query parameters or `key=value` pairs). A later keyword wins in libpq, so the
/// configured timeout replaces one written in the URL.
std::string with_connection_options(std::string_view url, std::chrono::milliseconds connect_timeout);

/// Why libpq rejects `conninfo` (already scrubbed), or nullopt when it parses.
std::optional<std::string> conninfo_error(const std::string& conninfo, std::string_view redacted);

/// A libpq message on one line, safe to show: the password (when `conninfo` parses) and every quoted fragment
/// that does not occur in the redacted target are replaced by `***`.
std::string scrub(std::string_view message, const std::string& conninfo, std::string_view redacted);

/// Opens one connection (libpq's connect_timeout is inside `conninfo`). Throws db::Unavailable naming the
/// redacted `target` and libpq's scrubbed reason (never the password), or db::Error when libpq rejects a value
/// of the connection string while connecting (e.g. a non-numeric port).
std::unique_ptr<pqxx::connection> connect(const std::string& conninfo, const std::string& target);

}  // namespace llmproxy::db::postgres::detail
