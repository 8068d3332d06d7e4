#include "llmproxy/db/postgres/detail/connection.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <set>

#include "llmproxy/config/database_url.hpp"
#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::postgres::detail {

namespace {

constexpr std::string_view kMask = "***";

struct OptionsDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
using Options = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

struct ErrorDeleter {
  void operator()(char* message) const { PQfreemem(message); }
};
using ErrorText = std::unique_ptr<char, ErrorDeleter>;

// Newlines and tabs of multi-line libpq messages become single spaces; trailing whitespace goes.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != ' ' && c != ' ') out += ' ';
    space = false;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
}

// libpq's option names ("port", "sslmode", ...): quoting one of them never reveals a secret.
const std::set<std::string, std::less<>>& option_names() {
  static const std::set<std::string, std::less<>> names = [] {
    std::set<std::string, std::less<>> out;
    Options defaults{PQconndefaults()};
    if (defaults) {
      for (auto* o = defaults.get(); o->keyword != nullptr; ++o) out.emplace(o->keyword);
    }
    return out;
  }();
  return names;
}

bool safe_fragment(std::string_view fragment, std::string_view redacted) {
  if (fragment.empty() || redacted.find(fragment) != std::string_view::npos) return true;
  if (option_names().contains(fragment)) return true;
  // The separators libpq itself quotes ("missing \"=\" after ...", "matching \"]\" in IPv6 host").
  if (fragment == "=" || fragment == "]") return true;
  // A unix-domain socket path ("/run/postgresql/.s.PGSQL.5432") names a directory, not a credential.
  return fragment.starts_with('/') && fragment.find("/.s.PGSQL.") != std::string_view::npos;
}

}  // namespace

std::string with_connection_options(std::string_view url, std::chrono::milliseconds connect_timeout) {
  const auto ms = std::max<std::chrono::milliseconds::rep>(connect_timeout.count(), 1);
  const auto seconds = std::to_string((ms + 999) / 1000);
  std::string out{url};
  if (config::database_url_form(url) == config::DatabaseUrlForm::uri) {
    const auto query = url.find('?');
    if (query == std::string_view::npos) {
      out += '?';
    } else if (out.back() != '?' && out.back() != '&') {
      out += '&';
    }
    out += "connect_timeout=" + seconds + "&fallback_application_name=llm-proxy";
  } else {
    if (!out.empty()) out += ' ';
    out += "connect_timeout=" + seconds + " fallback_application_name=llm-proxy";
  }
  return out;
}

std::optional<std::string> conninfo_error(const std::string& conninfo, std::string_view redacted) {
  char* raw_error = nullptr;
  Options options{PQconninfoParse(conninfo.c_str(), &raw_error)};
  ErrorText error{raw_error};
  if (options) return std::nullopt;
  return scrub(error ? std::string_view{error.get()} : std::string_view{"cannot parse the connection string"},
               conninfo, redacted);
}

std::string scrub(std::string_view message, const std::string& conninfo, std::string_view redacted) {
  std::string out = one_line(message);

  char* raw_error = nullptr;
  Options options{PQconninfoParse(conninfo.c_str(), &raw_error)};
  ErrorText error{raw_error};
  if (options) {
    for (auto* o = options.get(); o->keyword != nullptr; ++o) {
      if (std::string_view{o->keyword} == "password" && o->val != nullptr) replace_all(out, o->val, kMask);
    }
  }

  // libpq quotes what it echoes ("invalid port number: \"...\"", or the whole URI). A quoted fragment that the
  // redacted target does not contain may hold the password, so it is masked.
  std::string scrubbed;
  scrubbed.reserve(out.size());
  std::size_t pos = 0;
  while (pos < out.size()) {
    const auto open = out.find('"', pos);
    if (open == std::string::npos) break;
    const auto close = out.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string_view fragment{out.data() + open + 1, close - open - 1};
    scrubbed.append(out, pos, open + 1 - pos);
    if (safe_fragment(fragment, redacted)) {
      scrubbed += fragment;
    } else {
      scrubbed += kMask;
    }
    scrubbed += '"';
    pos = close + 1;
  }
  scrubbed.append(out, pos, std::string::npos);
  return scrubbed;
}

std::unique_ptr<pqxx::connection> connect(const std::string& conninfo, const std::string& target) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const std::exception& e) {
    const std::string reason = scrub(e.what(), conninfo, target);
    // libpq checks some values only when it connects ("invalid integer value \"x\" for connection option
    // \"port\"", "invalid sslmode value", "could not match 2 port numbers to 3 hosts"): typos in DATABASE_URL
    // that no retry fixes, so they are not Unavailable.
    if (reason.starts_with("invalid ") || reason.starts_with("could not match ")) {
      throw db::Error("invalid DATABASE_URL " + target + ": " + reason);
    }
    throw db::Unavailable("cannot connect to PostgreSQL at " + target + ": " + reason);
  }
}

}  // namespace llmproxy::db::postgres::detail
