#include "llmproxy/config/database_url.hpp"

#include <optional>

#include "llmproxy/util/crypto.hpp"

namespace llmproxy::config {

namespace {

constexpr std::string_view kMask = "***";
constexpr std::string_view kRedacted = "<redacted>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_password_key(std::string_view key) {
  // libpq keywords are lowercase, but masking a differently spelled one costs nothing.
  if (key.size() != 8) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i] >= 'A' && key[i] <= 'Z' ? static_cast<char>(key[i] - 'A' + 'a') : key[i];
    if (c != "password"[i]) return false;
  }
  return true;
}

/// One `key = value` pair of the key=value form; `value` is unquoted and unescaped, [value_begin, value_end) is
/// where the raw value stands in the text.
struct Pair {
  std::string_view key;
  std::size_t value_begin = 0;
  std::size_t value_end = 0;
  std::string value;
};

/// The pairs of the key=value form, or nullopt when the text does not follow the grammar.
std::optional<std::vector<Pair>> scan_key_value(std::string_view s) {
  std::vector<Pair> pairs;
  std::size_t i = 0;
  const std::size_t n = s.size();
  const auto skip_spaces = [&] {
    while (i < n && is_space(s[i])) ++i;
  };
  for (;;) {
    skip_spaces();
    if (i >= n) break;
    Pair pair;
    const std::size_t key_start = i;
    while (i < n && s[i] != '=' && !is_space(s[i])) ++i;
    pair.key = s.substr(key_start, i - key_start);
    if (pair.key.empty()) return std::nullopt;
    skip_spaces();
    if (i >= n || s[i] != '=') return std::nullopt;
    ++i;
    skip_spaces();
    pair.value_begin = i;
    if (i < n && s[i] == '\'') {
      bool closed = false;
      for (++i; i < n; ++i) {
        if (s[i] == '\\' && i + 1 < n) {
          pair.value += s[++i];
        } else if (s[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          pair.value += s[i];
        }
      }
      if (!closed) return std::nullopt;
    } else {
      while (i < n && !is_space(s[i])) {
        if (s[i] == '\\' && i + 1 < n) ++i;
        pair.value += s[i++];
      }
    }
    pair.value_end = i;
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

/// The parts of a URI that may hold a password: [begin, end) of the userinfo password and of every
/// `password=` query parameter value.
std::vector<std::pair<std::size_t, std::size_t>> uri_password_spans(std::string_view url) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  const std::size_t start = url.find("://") + 3;
  std::size_t query = url.find_first_of("?#", start);
  if (query == std::string_view::npos) query = url.size();
  // The last '@' before the query ends the userinfo: a password may contain an unencoded '@' or '/', and
  // masking too much is better than leaking. The first ':' of the userinfo separates user from password.
  const std::size_t at = url.substr(0, query).rfind('@');
  if (at != std::string_view::npos && at >= start) {
    const std::size_t colon = url.find(':', start);
    if (colon != std::string_view::npos && colon < at) spans.emplace_back(colon + 1, at);
  }
  // Query parameters, `&`-separated; libpq accepts every key=value keyword there, password included.
  for (std::size_t i = query; i < url.size();) {
    ++i;  // '?', '&' or '#'
    std::size_t end = url.find_first_of("&#", i);
    if (end == std::string_view::npos) end = url.size();
    const std::string_view param = url.substr(i, end - i);
    const std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && is_password_key(param.substr(0, eq))) spans.emplace_back(i + eq + 1, end);
    i = end;
  }
  return spans;
}

/// `text` with each [begin, end) span (ascending, disjoint) replaced by the mask.
std::string masked(std::string_view text, const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  std::string out;
  std::size_t pos = 0;
  for (const auto& [begin, end] : spans) {
    out.append(text.substr(pos, begin - pos)).append(kMask);
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

DatabaseUrlForm database_url_form(std::string_view url) {
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) return DatabaseUrlForm::uri;
  const auto pairs = scan_key_value(url);
  return pairs && !pairs->empty() ? DatabaseUrlForm::key_value : DatabaseUrlForm::invalid;
}

std::string redact_database_url(std::string_view url) {
  switch (database_url_form(url)) {
    case DatabaseUrlForm::uri:
      return masked(url, uri_password_spans(url));
    case DatabaseUrlForm::key_value: {
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      const auto pairs = scan_key_value(url);  // a local: a range-for over *temporary would dangle
      for (const auto& pair : *pairs) {
        if (is_password_key(pair.key)) spans.emplace_back(pair.value_begin, pair.value_end);
      }
      return masked(url, spans);
    }
    case DatabaseUrlForm::invalid:
      break;
  }
  return std::string{kRedacted};
}

std::vector<std::string> database_url_passwords(std::string_view url) {
  std::vector<std::string> out;
  const auto add = [&out](std::string value) {
    if (!value.empty()) out.push_back(std::move(value));
  };
  switch (database_url_form(url)) {
    case DatabaseUrlForm::uri:
      for (const auto& [begin, end] : uri_password_spans(url)) {
        const std::string_view raw = url.substr(begin, end - begin);
        add(std::string{raw});
        if (auto decoded = util::percent_decode(raw); decoded != raw) add(std::move(decoded));
      }
      break;
    case DatabaseUrlForm::key_value: {
      auto pairs = scan_key_value(url);  // a local: a range-for over *temporary would dangle
      for (auto& pair : *pairs) {
        if (is_password_key(pair.key)) add(std::move(pair.value));
      }
      break;
    }
    case DatabaseUrlForm::invalid:
      // Nothing can be told apart; callers never show such a value at all.
      break;
  }
  return out;
}

std::string scrub_database_url_passwords(std::string message, std::string_view url) {
  for (const auto& secret : database_url_passwords(url)) {
    for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret, pos + kMask.size())) {
      message.replace(pos, secret.size(), kMask);
    }
  }
  return message;
}

}  // namespace llmproxy::config
