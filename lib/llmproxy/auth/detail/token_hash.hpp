#pragma once
/// The key a token is known by: the SHA-256 of the token, in lowercase hex, as the database stores it.
#include <string_view>

namespace llmproxy::auth::detail {

/// util::sha256_hex(token), remembered per thread for recently seen tokens, so a client's requests after its
/// first cost a lookup instead of a digest (hashing was about 8% of a proxied request's instructions). A
/// direct-mapped table of 64 slots chosen from the token's random part; a slot is answered from only if its
/// token equals `token` in full (a constant-time comparison), so two tokens sharing a slot just take turns.
/// The view stays valid until the next call on the same thread: copy it before anything that may suspend.
/// The table holds the raw tokens seen last, in this process's memory only, next to the project keys the token
/// cache holds anyway; nothing of it is logged or stored.
std::string_view token_hash(std::string_view token);

}  // namespace llmproxy::auth::detail
