// server::Response::error builds the JSON error bodies every route sends; whatever a client put in the message
// (a raw path, say), the body must stay valid JSON and valid UTF-8.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

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

}  // namespace llmproxy::server
