// util/token.hpp: the format of the tokens the proxy hands out, and their hints.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <string_view>

#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/token.hpp"

namespace util = llmproxy::util;

TEST_CASE("generate_token has the reference format", "[util][token]") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const auto token = util::generate_token();
    REQUIRE(token.size() == 25);
    CHECK(token.rfind("sk-", 0) == 0);
    const auto raw = util::base64url_decode(std::string_view(token).substr(3));
    REQUIRE(raw.has_value());
    CHECK(raw->size() == 16);
    CHECK(util::is_well_formed_token(token));
    seen.insert(token);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("is_well_formed_token rejects near misses", "[util][token]") {
  const std::string good = "sk-" + util::base64url_encode(std::string(16, '\x07'));
  REQUIRE(util::is_well_formed_token(good));
  CHECK_FALSE(util::is_well_formed_token(""));
  CHECK_FALSE(util::is_well_formed_token("sk-"));
  CHECK_FALSE(util::is_well_formed_token(good.substr(0, 24)));       // one char short
  CHECK_FALSE(util::is_well_formed_token(good + "A"));               // one char long
  CHECK_FALSE(util::is_well_formed_token("SK-" + good.substr(3)));   // prefix is case-sensitive
  CHECK_FALSE(util::is_well_formed_token("pk-" + good.substr(3)));
  CHECK_FALSE(util::is_well_formed_token("sk-" + std::string(21, 'A') + "+"));  // base64, not base64url
  CHECK_FALSE(util::is_well_formed_token("sk-" + std::string(21, 'A') + "="));
  CHECK_FALSE(util::is_well_formed_token("sk-" + std::string(21, 'A') + "B"));  // non-zero spare bits
  CHECK(util::is_well_formed_token("sk-" + std::string(21, 'A') + "Q"));
  CHECK(util::is_well_formed_token("sk-" + std::string(21, '_') + "w"));
}

TEST_CASE("token_hint shows the prefix and four characters at each end", "[util][token]") {
  CHECK(util::token_hint("sk-AbCdefghijklmnopqrwXyZ") == "sk-AbCd...wXyZ");
  const auto token = util::generate_token();
  const auto hint = util::token_hint(token);
  CHECK(hint.size() == 14);
  CHECK(hint == "sk-" + token.substr(3, 4) + "..." + token.substr(21, 4));
  CHECK(hint.find(token.substr(7, 14)) == std::string::npos);
  // Too short to hint without revealing most of it.
  CHECK(util::token_hint("sk-short") == "sk-...");
  CHECK(util::token_hint("") == "sk-...");
}

TEST_CASE("is_well_formed_token agrees with a strict decode of the random part", "[util][token]") {
  // Every byte value at every position of a valid token: well formed exactly when the random part decodes
  // (strictly) to 16 bytes.
  const std::string good = util::generate_token();
  int accepted = 0;
  for (std::size_t pos = 0; pos < good.size(); ++pos) {
    for (int b = 0; b < 256; ++b) {
      std::string t = good;
      t[pos] = static_cast<char>(b);
      const auto raw = util::base64url_decode(std::string_view(t).substr(3));
      const bool decodes = t.starts_with("sk-") && raw.has_value() && raw->size() == 16;
      INFO("position " << pos << ", byte " << b);
      CHECK(util::is_well_formed_token(t) == decodes);
      if (decodes) ++accepted;
    }
  }
  // The prefix's 3 positions take only their own byte, 21 positions any of 64 characters, the last any of the 4
  // with zero spare bits.
  CHECK(accepted == 3 + 21 * 64 + 4);
}
