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
  if (token.size() != kPrefix.size() + kRandomChars || !token.starts_with(kPrefix)) return false;
  // Strict decoding also rejects a last character with non-zero spare bits, so each token has one spelling.
  const auto raw = base64url_decode(token.substr(kPrefix.size()));
  return raw && raw->size() == kRandomBytes;
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
