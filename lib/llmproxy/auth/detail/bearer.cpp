#include "llmproxy/auth/detail/bearer.hpp"

#include <cstring>

namespace llmproxy::auth::detail {

namespace {

constexpr bool is_space(char c) { return c == ' ' || c == '\t'; }

constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> bearer_credentials(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  header = trim(header);
  if (header.size() <= kScheme.size() || !is_space(header[kScheme.size()])) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (lower(header[i]) != kScheme[i]) return std::nullopt;
  }
  const std::string_view credentials = trim(header.substr(kScheme.size()));
  if (credentials.empty()) return std::nullopt;
  // Two vectorised scans instead of a byte loop: this runs on every proxied request.
  if (std::memchr(credentials.data(), ' ', credentials.size()) != nullptr ||
      std::memchr(credentials.data(), '\t', credentials.size()) != nullptr)
    return std::nullopt;
  return credentials;
}

}  // namespace llmproxy::auth::detail
