// util/crypto.hpp: hashing, randomness, constant-time comparison, uuids, base64, and the Cipher for keys at rest.
#include <catch2/catch.hpp>
#include <cstddef>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "llmproxy/util/crypto.hpp"

namespace util = llmproxy::util;

namespace {

bool is_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("sha256_hex matches known vectors", "[util][crypto]") {
  CHECK(util::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(util::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(util::sha256_hex(std::string("a\0b", 3)) != util::sha256_hex("ab"));
}

TEST_CASE("random_bytes returns the requested amount of distinct data", "[util][crypto]") {
  CHECK(util::random_bytes(0).empty());
  const auto a = util::random_bytes(32);
  const auto b = util::random_bytes(32);
  CHECK(a.size() == 32);
  CHECK(b.size() == 32);
  CHECK(a != b);
}

TEST_CASE("constant_time_equal compares contents", "[util][crypto]") {
  CHECK(util::constant_time_equal("", ""));
  CHECK(util::constant_time_equal("secret-token", "secret-token"));
  CHECK_FALSE(util::constant_time_equal("secret-token", "secret-tokeN"));
  CHECK_FALSE(util::constant_time_equal("Secret-token", "secret-token"));
  CHECK_FALSE(util::constant_time_equal("secret", "secret-token"));
  CHECK_FALSE(util::constant_time_equal("", "x"));
  CHECK(util::constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(util::constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("uuid_v4 is canonical version 4 variant 1 and unique", "[util][crypto]") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const auto id = util::uuid_v4();
    REQUIRE(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[13] == '-');
    CHECK(id[18] == '-');
    CHECK(id[23] == '-');
    CHECK(id[14] == '4');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    std::string hex = id;
    std::erase(hex, '-');
    CHECK(hex.size() == 32);
    CHECK(is_hex(hex));
    seen.insert(id);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("uuid_v4 stays unique across its per-thread random batches and across threads", "[util][crypto]") {
  // 2 x 3000 ids: each thread refills its batch (256 ids) several times.
  std::vector<std::string> a, b;
  std::thread other([&b] {
    for (int i = 0; i < 3000; ++i) b.push_back(util::uuid_v4());
  });
  for (int i = 0; i < 3000; ++i) a.push_back(util::uuid_v4());
  other.join();
  std::set<std::string> seen(a.begin(), a.end());
  seen.insert(b.begin(), b.end());
  CHECK(seen.size() == 6000);
}

TEST_CASE("base64 matches RFC 4648 test vectors", "[util][base64]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO(plain);
    CHECK(util::base64_encode(plain) == encoded);
    CHECK(util::base64_decode(encoded) == std::optional<std::string>(plain));
  }
  CHECK(util::base64url_encode("f") == "Zg");
  CHECK(util::base64url_encode("fo") == "Zm8");
  CHECK(util::base64url_decode("Zm9vYmE") == std::optional<std::string>("fooba"));
}

TEST_CASE("base64 and base64url differ only in the two alphabet characters", "[util][base64]") {
  const std::string bytes("\xfb\xff\xbf", 3);
  CHECK(util::base64_encode(bytes) == "+/+/");
  CHECK(util::base64url_encode(bytes) == "-_-_");
  CHECK(util::base64_decode("+/+/") == std::optional<std::string>(bytes));
  CHECK(util::base64url_decode("-_-_") == std::optional<std::string>(bytes));
  CHECK_FALSE(util::base64_decode("-_-_").has_value());
  CHECK_FALSE(util::base64url_decode("+/+/").has_value());
}

TEST_CASE("base64 round-trips every byte value", "[util][base64]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t len = 0; len <= all.size(); len += 37) {
    const auto part = all.substr(0, len);
    CHECK(util::base64_decode(util::base64_encode(part)) == std::optional<std::string>(part));
    CHECK(util::base64url_decode(util::base64url_encode(part)) == std::optional<std::string>(part));
  }
}

TEST_CASE("base64 decoding is strict", "[util][base64]") {
  const char* bad_std[] = {
      "Zg",       // missing padding
      "Zg=",      // short padding
      "Zg===",    // extra padding
      "Z===",     // a lone character cannot encode a byte
      "Zm9v\n",   // whitespace
      " Zm9v",
      "Zm=v",     // padding in the middle
      "=Zm9",
      "Zh==",     // non-zero spare bits (canonical form is Zg==)
      "Zm9=",     // non-zero spare bits (canonical form is Zm8=)
      "Zm9v!A==",
  };
  for (const char* text : bad_std) {
    INFO(text);
    CHECK_FALSE(util::base64_decode(text).has_value());
  }
  const char* bad_url[] = {"Zg==", "Zm8=", "Z", "Zh", "Zm9", "Zm9v Zg", "Zm+v"};
  for (const char* text : bad_url) {
    INFO(text);
    CHECK_FALSE(util::base64url_decode(text).has_value());
  }
}

TEST_CASE("Cipher round-trips and uses the enc:v1 format", "[util][crypto]") {
  const util::Cipher cipher{util::random_bytes(32)};
  REQUIRE(cipher.enabled());
  for (const std::string plain : {"sk-proj-not-a-real-key_0123", "", "x", "ünïcødé \x01\xff"}) {
    const auto stored = cipher.encrypt(plain);
    REQUIRE(stored.rfind("enc:v1:", 0) == 0);
    const auto blob = util::base64_decode(std::string_view(stored).substr(7));
    REQUIRE(blob.has_value());
    CHECK(blob->size() == 12 + plain.size() + 16);
    CHECK(cipher.decrypt(stored) == plain);
  }
  CHECK(cipher.encrypt("sk-proj-abcdefghijklmnopqrstuvwxyz").find("abcdefghijklmnop") == std::string::npos);
  // A fresh nonce every time: equal plaintexts do not give equal stored values.
  CHECK(cipher.encrypt("same") != cipher.encrypt("same"));
}

TEST_CASE("Cipher decrypts the reference layout (GCM known answer)", "[util][crypto]") {
  // McGrew & Viega GCM test case 14: zero key, zero 96-bit nonce, 16 zero bytes of plaintext. Laid out as
  // nonce || ciphertext || tag in standard base64, as the reference stores it.
  auto unhex = [](std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
  };
  const std::string blob = std::string(12, '\0') + unhex("cea7403d4d606b6e074ec5d3baf39d18") +
                           unhex("d0d1c8a799996bf0265b98b5d48ab919");
  const util::Cipher cipher{std::string(32, '\0')};
  CHECK(cipher.decrypt("enc:v1:" + util::base64_encode(blob)) == std::string(16, '\0'));
}

TEST_CASE("Cipher detects tampering and wrong keys", "[util][crypto]") {
  const util::Cipher cipher{util::random_bytes(32)};
  const auto stored = cipher.encrypt("sk-real-upstream-key");
  auto blob = *util::base64_decode(std::string_view(stored).substr(7));

  SECTION("flipped ciphertext bit") {
    blob[12] = static_cast<char>(blob[12] ^ 0x01);
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:" + util::base64_encode(blob)), util::CryptoError);
  }
  SECTION("flipped tag bit") {
    blob.back() = static_cast<char>(blob.back() ^ 0x80);
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:" + util::base64_encode(blob)), util::CryptoError);
  }
  SECTION("flipped nonce bit") {
    blob[0] = static_cast<char>(blob[0] ^ 0x01);
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:" + util::base64_encode(blob)), util::CryptoError);
  }
  SECTION("truncated") {
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:" + util::base64_encode(blob.substr(0, 27))), util::CryptoError);
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:"), util::CryptoError);
  }
  SECTION("not base64") {
    CHECK_THROWS_AS(cipher.decrypt("enc:v1:%%%%"), util::CryptoError);
  }
  SECTION("wrong key") {
    const util::Cipher other{util::random_bytes(32)};
    CHECK_THROWS_AS(other.decrypt(stored), util::CryptoError);
  }
  SECTION("no key configured") {
    const util::Cipher none{""};
    CHECK_THROWS_AS(none.decrypt(stored), util::CryptoError);
  }
}

TEST_CASE("Cipher passes plaintext through", "[util][crypto]") {
  const util::Cipher none{""};
  CHECK_FALSE(none.enabled());
  CHECK(none.encrypt("sk-plain") == "sk-plain");
  CHECK(none.decrypt("sk-plain") == "sk-plain");

  // A value stored before a key was configured is still readable afterwards.
  const util::Cipher keyed{util::random_bytes(32)};
  CHECK(keyed.decrypt("sk-plain") == "sk-plain");
  CHECK(keyed.decrypt("") == "");
}

TEST_CASE("Cipher rejects keys that are not 32 bytes", "[util][crypto]") {
  CHECK_THROWS_AS(util::Cipher{std::string(16, 'k')}, std::invalid_argument);
  CHECK_THROWS_AS(util::Cipher{std::string(31, 'k')}, std::invalid_argument);
  CHECK_THROWS_AS(util::Cipher{std::string(33, 'k')}, std::invalid_argument);
  CHECK_NOTHROW(util::Cipher{std::string(32, 'k')});
}

TEST_CASE("percent_decode: %XX decoded, a broken escape kept, + by the caller's rule", "[util][crypto]") {
  using llmproxy::util::percent_decode;
  using llmproxy::util::Plus;
  CHECK(percent_decode("p%40ss%2Fw%20rd") == "p@ss/w rd");
  CHECK(percent_decode("a+b") == "a+b");
  CHECK(percent_decode("a+b%2B", Plus::space) == "a b+");
  CHECK(percent_decode("100%") == "100%");
  CHECK(percent_decode("%zz%4") == "%zz%4");
  CHECK(percent_decode("%e6%97%a5") == "\xe6\x97\xa5");
}
