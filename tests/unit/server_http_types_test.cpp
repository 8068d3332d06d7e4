// server::Response::error builds the JSON error bodies every route sends; whatever a client put in the message
// (a raw path, say), the body must stay valid JSON and valid UTF-8. llmproxy::server::Headers holds every header list a
// request passes through, in one buffer of its own.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::server {

TEST_CASE("Response::error replaces bytes that are not UTF-8 with U+FFFD", "[server]") {
  const auto r = Response::error(404, "endpoint_not_found", "endpoint /v1/\xff\xfe/\xc3\x28/\xed\xa0\x80 is not allowed");
  const auto json = nlohmann::json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(json.is_discarded());
  // Lone bytes, a truncated pair and an encoded surrogate each become replacement characters.
  CHECK(json.at("error").get<std::string>() ==
        "endpoint /v1/\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd(/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd is not allowed");
}

TEST_CASE("Response::error keeps well-formed UTF-8 and escapes control characters", "[server]") {
  const std::string message = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \"quoted\"\t\x01\x7f";
  const auto r = Response::error(400, "bad_request", message);
  const auto json = nlohmann::json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(json.is_discarded());
  CHECK(json.at("error").get<std::string>() == message);
  CHECK(json.at("code").get<std::string>() == "bad_request");
}

}  // namespace llmproxy::server

namespace llmproxy::server {

TEST_CASE("iequals matches header names ignoring ASCII letter case only", "[server]") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK(iequals("X-REQUEST-ID", "x-request-id"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("Host", "Hosts"));
  CHECK_FALSE(iequals("Host", "Most"));
  // Pairs that differ only in the 0x20 bit but are not letters: '@'/'`', '['/'{', ']'/'}', '^'/'~', '\x0d'/'-'.
  CHECK_FALSE(iequals("a@", "a`"));
  CHECK_FALSE(iequals("[", "{"));
  CHECK_FALSE(iequals("]", "}"));
  CHECK_FALSE(iequals("^", "~"));
  CHECK_FALSE(iequals("\r", "-"));
  // Bytes above ASCII never fold.
  CHECK_FALSE(iequals("\xc0", "\xe0"));
  CHECK(iequals("\xc0", "\xc0"));
}

TEST_CASE("iequals folds exactly the ASCII letters, at every length and position", "[server]") {
  // The byte-at-a-time rule, written out.
  const auto reference = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto x = static_cast<unsigned char>(a[i]);
      const auto y = static_cast<unsigned char>(b[i]);
      const auto fold = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c | 0x20) : c; };
      if (fold(x) != fold(y)) return false;
    }
    return true;
  };
  // Every byte against its case-bit twin, at each position of each length 0..24,
  // and every byte against itself: letters fold, nothing else does (the 0x20 bit of '@', '[', '^', '\r', 0xc0...).
  std::size_t compared = 0, wrong = 0;
  for (std::size_t n = 1; n <= 24; ++n) {
    for (std::size_t at = 0; at < n; ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string a(n, 'k'), b(n, 'K');
        a[at] = static_cast<char>(c);
        b[at] = static_cast<char>(c ^ 0x20);
        if (iequals(a, b) != reference(a, b)) ++wrong;
        b[at] = static_cast<char>(c);
        if (!iequals(a, b)) ++wrong;
        ++compared;
      }
    }
  }
  CHECK(compared == 24 * 25 / 2 * 256);
  CHECK(wrong == 0);
  // Differences in other bits, anywhere: never equal.
  for (std::size_t n = 1; n <= 24; ++n) {
    for (std::size_t at = 0; at < n; ++at) {
      for (int bit : {0x01, 0x02, 0x04, 0x08, 0x10, 0x40, 0x80}) {
        std::string a(n, 'x'), b(n, 'X');
        b[at] = static_cast<char>(b[at] ^ bit);
        if (iequals(a, b)) ++wrong;
      }
    }
  }
  CHECK(wrong == 0);
  CHECK(iequals(std::string(24, 'a'), std::string(24, 'A')));
  CHECK_FALSE(iequals(std::string(23, 'a') + "@", std::string(23, 'A') + "`"));
}

}  // namespace llmproxy::server

TEST_CASE("Headers keep fields in order, look names up ignoring case, and replace or remove every match", "[server]") {
  llmproxy::server::Headers h;
  h.add("Content-Type", "application/json");
  h.add("X-Multi", "1");
  h.add("x-multi", "2");
  h.add("Empty", "");
  REQUIRE(h.size() == 4);
  CHECK(h[1].name == "X-Multi");
  CHECK(h[2].value == "2");
  CHECK(h.get("CONTENT-type") == "application/json");
  CHECK(h.get("x-MULTI") == "1");  // the first
  CHECK(h.contains("empty"));
  CHECK(h.get("Empty").empty());
  CHECK_FALSE(h.contains("Missing"));

  h.set("X-MULTI", "3");  // both removed, one appended at the end
  REQUIRE(h.size() == 3);
  CHECK(h[2].name == "X-MULTI");
  CHECK(h.get("x-multi") == "3");
  h.remove("content-type");
  std::vector<std::string> seen;
  for (const auto& f : h) seen.push_back(std::string(f.name) + "=" + std::string(f.value));
  CHECK(seen == std::vector<std::string>{"Empty=", "X-MULTI=3"});
}

TEST_CASE("Headers copy their bytes: a copy outlives and ignores changes to the original", "[server]") {
  auto original = std::make_unique<llmproxy::server::Headers>();
  for (int i = 0; i < 50; ++i) original->add("X-Field-" + std::to_string(i), std::string(40, static_cast<char>('a' + i % 26)));
  llmproxy::server::Headers copy = *original;
  original->set("X-Field-0", "changed");
  original.reset();
  REQUIRE(copy.size() == 50);
  CHECK(copy.get("x-field-0") == std::string(40, 'a'));
  CHECK(copy[49].name == "X-Field-49");
  CHECK(copy[49].value == std::string(40, static_cast<char>('a' + 49 % 26)));
}

TEST_CASE("Headers accept their own views as names and values, even when the buffer grows", "[server]") {
  llmproxy::server::Headers h;
  h.add("Origin", "https://example.com");
  // Each add may grow the buffer the views point into: the bytes must be copied before that.
  for (int i = 0; i < 40; ++i) h.add(h[0].name, h[static_cast<std::size_t>(i)].value);
  REQUIRE(h.size() == 41);
  for (const auto& f : h) {
    CHECK(f.name == "Origin");
    CHECK(f.value == "https://example.com");
  }
  h.set("Origin", h.get("origin"));
  REQUIRE(h.size() == 1);
  CHECK(h.get("Origin") == "https://example.com");
}
