#pragma once
/// DATABASE_URL, parsed by one set of rules for every module: which form it has, how it is shown (password
/// masked) and which password spellings must be scrubbed from driver messages. Pure functions; any thread.
#include <string>
#include <string_view>
#include <vector>

namespace llmproxy::config {

/// The two forms libpq accepts.
enum class DatabaseUrlForm {
  uri,        // postgres://user:password@host:5432/db?sslmode=require
  key_value,  // host=db user=app password='...' dbname=llmproxy
  invalid,    // neither: it cannot be told apart from a password, so none of it is ever shown
};

/// The one rule: a URI starts with `postgresql://` or `postgres://`, matched case-sensitively as libpq matches
/// it (`POSTGRES://...` is not a URI to libpq either); anything else must follow libpq's key=value grammar
/// (values bare or single-quoted with backslash escapes) with at least one pair.
DatabaseUrlForm database_url_form(std::string_view url);

/// `url` with the password masked as `***`: the userinfo password and any `password=` query parameter of a URI,
/// the `password` pair of the key=value form. `<redacted>` for an invalid value.
std::string redact_database_url(std::string_view url);

/// Every spelling of the password(s) `url` carries (raw and percent-decoded for a URI), for scrubbing driver
/// messages as a second line of defence. Empty when there is none.
std::vector<std::string> database_url_passwords(std::string_view url);

/// `message` with every spelling of a password of `url` replaced by `***`.
std::string scrub_database_url_passwords(std::string message, std::string_view url);

}  // namespace llmproxy::config
