#include "llmproxy/config/dotenv.hpp"

#include <fstream>
#include <sstream>

namespace llmproxy::config {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

[[noreturn]] void fail(std::string_view source, std::size_t line, std::string_view what) {
  throw ConfigError(std::string(source) + ":" + std::to_string(line) + ": " + std::string(what) +
                    " (expected KEY=VALUE, optionally quoted, or a # comment)");
}

/// Only spaces or a comment may follow a closing quote.
void expect_rest_empty(std::string_view rest, std::string_view source, std::size_t line) {
  rest = trim(rest);
  if (!rest.empty() && rest.front() != '#') fail(source, line, "unexpected text after the closing quote");
}

std::string parse_value(std::string_view raw, std::string_view source, std::size_t line) {
  std::string_view v = trim(raw);
  if (v.empty()) return {};
  if (v.front() == '\'') {
    const std::size_t close = v.find('\'', 1);
    if (close == std::string_view::npos) fail(source, line, "unterminated single-quoted value");
    expect_rest_empty(v.substr(close + 1), source, line);
    return std::string(v.substr(1, close - 1));
  }
  if (v.front() == '"') {
    std::string out;
    for (std::size_t i = 1; i < v.size(); ++i) {
      const char c = v[i];
      if (c == '"') {
        expect_rest_empty(v.substr(i + 1), source, line);
        return out;
      }
      if (c != '\\' || i + 1 == v.size()) {
        out += c;
        continue;
      }
      const char e = v[++i];
      switch (e) {
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        default: out += e; break;  // \" \\ \$ and any other escaped character stand for themselves
      }
    }
    fail(source, line, "unterminated double-quoted value");
  }
  // Unquoted: a '#' after a space or tab starts a comment.
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && is_space(v[i - 1])) {
      v = v.substr(0, i);
      break;
    }
  }
  return std::string(trim(v));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_dotenv(std::string_view text, std::string_view source) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export") && line.size() > 6 && is_space(line[6])) line = trim(line.substr(7));
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) fail(source, line_no, "no '=' on this line");
    const std::string_view key = trim(line.substr(0, eq));
    bool valid_key = !key.empty() && is_key_start(key.front());
    for (const char c : key) valid_key = valid_key && is_key_char(c);
    if (!valid_key) fail(source, line_no, "invalid variable name");
    out.emplace_back(std::string(key), parse_value(line.substr(eq + 1), source, line_no));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> load_dotenv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read the --env file \"" + path + "\"");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_dotenv(text.str(), path);
}

}  // namespace llmproxy::config
