#include "llmproxy/util/token.hpp"

#include <array>
#include <cstdint>

#include "llmproxy/util/crypto.hpp"

namespace llmproxy::util {

namespace {

constexpr std::string_view kPrefix = "sk-";
constexpr std::size_t kRandomBytes = 16;
constexpr std::size_t kRandomChars = 22;  // base64url of 16 bytes, unpadded
constexpr std::size_t kHintChars = 4;

/// The 6-bit value of each byte as a base64url character, or -1: one lookup per character of every proxied
/// request's token.
constexpr std::array<std::int8_t, 256> kBase64urlValue = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - 'A');
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - 'a' + 26);
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - '0' + 52);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}();

}  // namespace

std::string generate_token() { return std::string{kPrefix} + base64url_encode(random_bytes(kRandomBytes)); }

bool is_well_formed_token(std::string_view token) {
  // Checked on every proxied request, so without decoding (no allocation); the same answer as a strict
  // base64url_decode of the random part giving kRandomBytes bytes (a unit test compares the two).
  if (token.size() != kPrefix.size() + kRandomChars || !token.starts_with(kPrefix)) return false;
  int any_bad = 0;  // the sign bit of any value: one branch for the whole token
  int last = 0;
  for (const char c : token.substr(kPrefix.size())) {
    last = kBase64urlValue[static_cast<unsigned char>(c)];
    any_bad |= last;
  }
  if (any_bad < 0) return false;
  // 22 characters carry 132 bits, of which the token's 128: the last character's low 4 bits must be zero, so
  // each token has one spelling.
  static_assert(kRandomChars * 6 - kRandomBytes * 8 == 4);
  return (last & 0x0F) == 0;
}

std::string token_hint(std::string_view token) {
  std::string_view body = token;
  if (body.starts_with(kPrefix)) body.remove_prefix(kPrefix.size());
  // Below 3x the shown part a hint would reveal most of the value; show only the prefix then.
  if (body.size() < 3 * kHintChars) return std::string{kPrefix} + "...";
  return std::string{kPrefix} + std::string{body.substr(0, kHintChars)} + "..." +
         std::string{body.substr(body.size() - kHintChars)};
}

}  // namespace llmproxy::util
