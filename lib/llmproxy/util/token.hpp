#pragma once
/// Withering token format (SPEC §6.1): `sk-` + 22 base64url chars encoding 16 CSPRNG bytes.
#include <string>
#include <string_view>

namespace llmproxy::util {

/// A new random token.
std::string generate_token();
/// True if `token` has the exact format (prefix, length, alphabet, decodes to 16 bytes).
bool is_well_formed_token(std::string_view token);
/// Display hint `sk-AbCd...wXyZ`: prefix + first 4 and last 4 chars of the random part.
std::string token_hint(std::string_view token);

}  // namespace llmproxy::util
