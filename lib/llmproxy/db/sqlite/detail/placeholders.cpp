#include "llmproxy/db/sqlite/detail/placeholders.hpp"

namespace llmproxy::db::sqlite::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Both SQLite and PostgreSQL allow `$` inside an identifier (`price$1`); that is not a parameter.
bool is_identifier_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Index just past the quoted run that starts at `start` (the opening quote), or sql.size() if it never closes.
// A doubled closing quote ('' or "") is an escaped quote inside the run, not its end.
std::size_t skip_quoted(std::string_view sql, std::size_t start, char close) {
  std::size_t i = start + 1;
  while (i < sql.size()) {
    if (sql[i] == close) {
      if (close != ']' && i + 1 < sql.size() && sql[i + 1] == close) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return sql.size();
}

}  // namespace

std::string rewrite_placeholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    std::size_t end = i + 1;  // end of the run copied unchanged
    if (c == '\'' || c == '"' || c == '`') {
      end = skip_quoted(sql, i, c);
    } else if (c == '[') {
      end = skip_quoted(sql, i, ']');
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const auto nl = sql.find('\n', i);
      end = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const auto close = sql.find("*/", i + 2);
      end = close == std::string_view::npos ? sql.size() : close + 2;
    } else if (c == '$' && i + 1 < sql.size() && is_digit(sql[i + 1]) && (i == 0 || !is_identifier_char(sql[i - 1]))) {
      out += '?';
      ++i;
      continue;  // the digits are copied by the following iterations
    }
    out.append(sql.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace llmproxy::db::sqlite::detail
