#include "llmproxy/util/token.hpp"

#include "llmproxy/util/crypto.hpp"

namespace llmproxy::util {

namespace {

constexpr std::string_view kPrefix = "sk-";
constexpr std::size_t kRandomBytes = 16;
constexpr std::size_t kRandomChars = 22;  // base64url of 16 bytes, unpadded
constexpr std::size_t kHintChars = 4;

}  // namespace

std::string generate_token() { return std::string{kPrefix} + base64url_encode(random_bytes(kRandomBytes)); }

bool is_well_formed_token(std::string_view token) {
  // Checked on every proxied request, so without decoding (no allocation); the same answer as a strict
  // base64url_decode of the random part giving kRandomBytes bytes (a unit test compares the two).
  if (token.size() != kPrefix.size() + kRandomChars || !token.starts_with(kPrefix)) return false;
  // One table lookup per character and one branch for the whole token: a character outside the alphabet is
  // 0xff, so it leaves the high bit set (a valid value is at most 63).
  unsigned any = 0;
  unsigned last = 0;
  for (const char c : token.substr(kPrefix.size())) {
    last = kBase64urlValue[static_cast<unsigned char>(c)];
    any |= last;
  }
  if ((any & 0x80) != 0) return false;
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
