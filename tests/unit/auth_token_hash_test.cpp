// auth/detail/token_hash.hpp: the per-thread memo of token digests must answer exactly what sha256_hex does.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "llmproxy/auth/detail/token_hash.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/token.hpp"

namespace detail = llmproxy::auth::detail;
namespace util = llmproxy::util;

TEST_CASE("token_hash is the token's SHA-256, first time and remembered", "[auth][token_hash]") {
  const std::string token = util::generate_token();
  const std::string expected = util::sha256_hex(token);
  CHECK(std::string(detail::token_hash(token)) == expected);
  CHECK(std::string(detail::token_hash(token)) == expected);
}

TEST_CASE("token_hash tells apart tokens that differ in one leading character", "[auth][token_hash]") {
  // Same last 8 bytes, so the same slot: the memo must compare the whole token, not just what picks the slot.
  const std::string a = util::generate_token();
  for (const char c : std::string_view("ABCDEFGHIJKLMNOP")) {
    std::string b = a;
    b[3] = (b[3] == c) ? 'z' : c;
    const std::string hash_a(detail::token_hash(a));
    const std::string hash_b(detail::token_hash(b));
    CHECK(hash_a == util::sha256_hex(a));
    CHECK(hash_b == util::sha256_hex(b));
    CHECK(hash_a != hash_b);
  }
}

TEST_CASE("token_hash stays right when many tokens share its slots", "[auth][token_hash]") {
  std::vector<std::string> tokens;
  for (int i = 0; i < 300; ++i) tokens.push_back(util::generate_token());
  // Also ones differing only in length: a prefix of a remembered token is another token.
  tokens.push_back(tokens[0].substr(0, 10));
  tokens.push_back(tokens[0] + "x");
  tokens.push_back(std::string(200, 'a'));  // longer than a slot holds
  for (int round = 0; round < 2; ++round) {
    for (const auto& t : tokens) REQUIRE(std::string(detail::token_hash(t)) == util::sha256_hex(t));
  }
}

TEST_CASE("token_hash answers each thread from its own memo", "[auth][token_hash]") {
  const std::string token = util::generate_token();
  const std::string expected = util::sha256_hex(token);
  std::string seen_there;
  std::thread other([&] {
    for (int i = 0; i < 100; ++i) (void)detail::token_hash(util::generate_token());
    seen_there = std::string(detail::token_hash(token));
  });
  const std::string seen_here(detail::token_hash(token));
  other.join();
  CHECK(seen_here == expected);
  CHECK(seen_there == expected);
}
