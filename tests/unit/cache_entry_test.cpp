// The binary form of a cached answer (lib/llmproxy/cache/cache.hpp encode/decode): what a backend that keeps
// bytes (Redis) stores. Anything but encode()'s output decodes to nothing, never to a crash or a partial entry.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include "llmproxy/cache/cache.hpp"
#include "llmproxy/cache/detail/entry_format.hpp"

using llmproxy::cache::decode;
using llmproxy::cache::encode;
using llmproxy::cache::Entry;

namespace {

Entry sample() {
  Entry e;
  e.status = 203;
  e.headers.add("Content-Type", "application/octet-stream");
  for (int i = 0; i < 40; ++i) e.headers.add("X-H" + std::to_string(i), std::string(static_cast<std::size_t>(i), 'v'));
  e.headers.add("X-Empty", "");
  e.body = std::string("\0\x01\xff binary \0 body", 17) + std::string(3000, '\x80');
  e.stored_at_ms = 1'764'762'000'123;
  e.expires_at_ms = 1'764'762'060'123;
  e.vary = {{"accept", "application/json"}, {"accept-language", ""}};
  e.forced = true;
  e.stream = true;
  return e;
}

void check_equal(const Entry& a, const Entry& b) {
  CHECK(a.status == b.status);
  REQUIRE(a.headers.size() == b.headers.size());
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    CHECK(a.headers[i].name == b.headers[i].name);
    CHECK(a.headers[i].value == b.headers[i].value);
  }
  CHECK(a.body == b.body);
  CHECK(a.stored_at_ms == b.stored_at_ms);
  CHECK(a.expires_at_ms == b.expires_at_ms);
  CHECK(a.vary == b.vary);
  CHECK(a.forced == b.forced);
  CHECK(a.stream == b.stream);
}

}  // namespace

TEST_CASE("cache entry: encode then decode gives the same entry, binary body and every field included",
          "[cache][entry]") {
  const Entry e = sample();
  const std::string bytes = encode(e);
  CHECK(bytes.size() == llmproxy::cache::detail::encoded_size(e));
  const auto back = decode(bytes);
  REQUIRE(back);
  check_equal(*back, e);
  CHECK(encode(*back) == bytes);

  Entry minimal;  // defaults: 200, nothing else
  const auto min_back = decode(encode(minimal));
  REQUIRE(min_back);
  check_equal(*min_back, minimal);
  CHECK(encode(minimal).size() == llmproxy::cache::detail::encoded_size(minimal));

  Entry flags;
  flags.status = 999;
  flags.forced = false;
  flags.stream = true;
  flags.stored_at_ms = -5;  // before the epoch survives too
  const auto flags_back = decode(encode(flags));
  REQUIRE(flags_back);
  check_equal(*flags_back, flags);
}

TEST_CASE("cache entry: every truncation and every extension of a valid encoding is rejected", "[cache][entry]") {
  const std::string bytes = encode(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK_FALSE(decode(std::string_view(bytes).substr(0, n)).has_value());
  }
  CHECK_FALSE(decode(bytes + '\0').has_value());
  CHECK_FALSE(decode(bytes + "more").has_value());
}

TEST_CASE("cache entry: wrong magic, version, flags or status is rejected", "[cache][entry]") {
  const std::string good = encode(sample());
  auto with = [&](std::size_t at, char c) {
    std::string b = good;
    b[at] = c;
    return b;
  };
  CHECK_FALSE(decode(with(0, 'X')).has_value());    // magic
  CHECK_FALSE(decode(with(4, '\x02')).has_value());  // version 2
  CHECK_FALSE(decode(with(4, '\x00')).has_value());  // version 0
  CHECK_FALSE(decode(with(5, '\x04')).has_value());  // an unknown flag bit

  for (int status : {0, 99, 1000, 65535}) {
    Entry e;
    e.status = status;
    INFO(status);
    CHECK_FALSE(decode(encode(e)).has_value());
  }
  for (int status : {100, 200, 504, 999}) {
    Entry e;
    e.status = status;
    INFO(status);
    CHECK(decode(encode(e)).has_value());
  }
}

TEST_CASE("cache entry: header and vary fields with CR, LF or NUL, or an empty name, are rejected",
          "[cache][entry]") {
  for (const std::string& bad : {std::string("a\rb"), std::string("a\nb"), std::string("a\0b", 3)}) {
    Entry name;
    name.headers.add(bad, "v");
    CHECK_FALSE(decode(encode(name)).has_value());
    Entry value;
    value.headers.add("X", bad);
    CHECK_FALSE(decode(encode(value)).has_value());
    Entry vary_name;
    vary_name.vary = {{bad, "v"}};
    CHECK_FALSE(decode(encode(vary_name)).has_value());
    Entry vary_value;
    vary_value.vary = {{"accept", bad}};
    CHECK_FALSE(decode(encode(vary_value)).has_value());
  }
  Entry empty_name;
  empty_name.headers.add("", "v");
  CHECK_FALSE(decode(encode(empty_name)).has_value());
  Entry body_with_crlf;  // the body is opaque bytes
  body_with_crlf.body = std::string("a\r\n\0b", 5);
  CHECK(decode(encode(body_with_crlf)).has_value());
}

TEST_CASE("cache entry: lengths and counts beyond the input are rejected without allocating them",
          "[cache][entry]") {
  Entry e;
  e.headers.add("A", "b");
  std::string bytes = encode(e);
  // The header count sits right after the 24 fixed bytes: claim 2^32-1 headers.
  std::string huge_count = bytes;
  for (std::size_t i = 24; i < 28; ++i) huge_count[i] = '\xff';
  CHECK_FALSE(decode(huge_count).has_value());
  // The first name's length: claim 4 GiB.
  std::string huge_length = bytes;
  for (std::size_t i = 28; i < 32; ++i) huge_length[i] = '\xff';
  CHECK_FALSE(decode(huge_length).has_value());
}

TEST_CASE("cache entry: corrupted bytes never crash and never decode to something that re-encodes differently",
          "[cache][entry]") {
  const std::string good = encode(sample());
  std::mt19937 rng(12);  // fixed seed: the same inputs every run
  std::uniform_int_distribution<std::size_t> pos(0, good.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int decoded = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = good;
    const int flips = 1 + round % 4;
    for (int i = 0; i < flips; ++i) b[pos(rng)] = static_cast<char>(byte(rng));
    if (const auto e = decode(b)) {
      ++decoded;
      CHECK(encode(*e) == b);
    }
  }
  // Random bytes of every small length.
  for (int round = 0; round < 2000; ++round) {
    std::string b(static_cast<std::size_t>(round % 64), '\0');
    for (char& c : b) c = static_cast<char>(byte(rng));
    if (round % 2 == 0 && b.size() >= 6) b.replace(0, 6, std::string("LPCE\x01\x00", 6));
    if (const auto e = decode(b)) CHECK(encode(*e) == b);
  }
  CHECK(decoded < 3000);  // corruption is noticed (flips inside the body legitimately decode)
}
