#pragma once
/// RFC 9110 token characters (methods, field names, transfer codings, connection options), as a table: HTTP heads
/// are checked against it byte by byte on every request, by the parser and by the upstream request writer.
#include <array>
#include <cstddef>

namespace llmproxy::server {

inline constexpr std::array<bool, 256> kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (unsigned char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'}) t[c] = true;
  return t;
}();

}  // namespace llmproxy::server
