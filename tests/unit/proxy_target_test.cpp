// Request-target normalisation and whole-segment endpoint matching (SPEC §5.5 "Paths").
#include <catch2/catch.hpp>

#include <string>

#include "llmproxy/proxy/target.hpp"

using llmproxy::proxy::endpoint_matches;
using llmproxy::proxy::normalise_target;

namespace {

std::string path_of(std::string_view raw) {
  auto t = normalise_target(raw);
  INFO(raw << " -> " << t.error);
  REQUIRE(t.ok());
  return t.path;
}

bool refused(std::string_view raw) { return !normalise_target(raw).ok(); }

}  // namespace

TEST_CASE("target: plain paths are unchanged and the query is kept verbatim", "[proxy][target]") {
  CHECK(path_of("/v1/chat/completions") == "/v1/chat/completions");
  CHECK(path_of("/") == "/");
  auto t = normalise_target("/v1/models?limit=5&after=%2Fx%00y&q=a+b");
  REQUIRE(t.ok());
  CHECK(t.path == "/v1/models");
  CHECK(t.has_query);
  CHECK(t.query == "limit=5&after=%2Fx%00y&q=a+b");
  CHECK(t.target() == "/v1/models?limit=5&after=%2Fx%00y&q=a+b");
  auto empty_query = normalise_target("/v1/models?");
  REQUIRE(empty_query.ok());
  CHECK(empty_query.target() == "/v1/models?");
  CHECK(normalise_target("/v1/models").target() == "/v1/models");
}

TEST_CASE("target: unreserved escapes are decoded, other escapes kept in uppercase", "[proxy][target]") {
  CHECK(path_of("/v1/%63hat/completions") == "/v1/chat/completions");
  CHECK(path_of("/v1/%41%7a%30%2d%2E%5f%7E") == "/v1/Az0-._~");
  CHECK(path_of("/v1/files/a%3ab%25c%20d") == "/v1/files/a%3Ab%25c%20d");
  CHECK(path_of("/v1/files/%C3%BC") == "/v1/files/%C3%BC");
  CHECK(path_of("/v1/files/\xC3\xBC") == "/v1/files/\xC3\xBC");
}

TEST_CASE("target: dot segments are removed, any '..' is refused", "[proxy][target]") {
  CHECK(path_of("/v1/./models") == "/v1/models");
  CHECK(path_of("/v1/models/.") == "/v1/models/");
  CHECK(path_of("/v1/%2e/models") == "/v1/models");
  CHECK(path_of("/v1/.../models") == "/v1/.../models");
  CHECK(path_of("/v1/..a/models") == "/v1/..a/models");
  for (const char* raw : {"/v1/models/../fine_tuning/jobs", "/v1/models/%2e%2e/batches", "/v1/models/.%2E/x",
                          "/v1/models/%2E./x", "/v1/models/..", "/..", "/v1/a/b/../c", "/v1/models/..?x=1"}) {
    INFO(raw);
    CHECK(refused(raw));
  }
}

TEST_CASE("target: empty segments collapse", "[proxy][target]") {
  CHECK(path_of("//v1//models") == "/v1/models");
  CHECK(path_of("/v1/models//") == "/v1/models/");
  CHECK(path_of("/v1/models/") == "/v1/models/");
  CHECK(path_of("//") == "/");
}

TEST_CASE("target: encoded separators, backslashes, control bytes and bad escapes are refused", "[proxy][target]") {
  for (const char* raw : {"/v1/models%2Fx", "/v1/models%2fx", "/v1/models%5Cx", "/v1/models%5cx", "/v1\\models",
                          "/v1/models%00", "/v1/models%1f", "/v1/models%7F", "/v1/models%0A", "/v1/models%",
                          "/v1/models%4", "/v1/models%G1", "/v1/models%%41", "v1/models", "", "*",
                          "http://example.com/v1/models", "?x=1", "/v1/models?a=\x01", "/v1/models?a=\x7f"}) {
    INFO(raw);
    CHECK(refused(raw));
  }
  CHECK(refused(std::string_view("/v1/mo\0dels", 11)));
  CHECK(refused("/v1/mo\tdels"));
  CHECK(refused("/v1/mo\x7f" "dels"));
}

TEST_CASE("target: total on arbitrary bytes", "[proxy][target]") {
  // Every byte value in every position of a short target: never throws, and what it accepts is normalised
  // (no '..' or '.' segment, no '//', no control byte, no backslash, no encoded '/').
  std::string raw = "/v1/a?b";
  for (std::size_t pos = 0; pos < raw.size(); ++pos) {
    for (int b = 0; b < 256; ++b) {
      std::string s = raw;
      s[pos] = static_cast<char>(b);
      for (const std::string& candidate : {s, s + "%", s + "%2", "/" + s + "/%2e%2E/" + s}) {
        auto t = normalise_target(candidate);
        if (!t.ok()) continue;
        CHECK(t.path.front() == '/');
        CHECK(t.path.find("//") == std::string::npos);
        CHECK(t.path.find("/../") == std::string::npos);
        CHECK(t.path.find("/./") == std::string::npos);
        CHECK(t.path.find('\\') == std::string::npos);
        CHECK(t.path.find("%2F") == std::string::npos);
        CHECK(normalise_target(t.target()).target() == t.target());  // idempotent
      }
    }
  }
}

TEST_CASE("target: an allowed endpoint matches whole segments", "[proxy][target]") {
  CHECK(endpoint_matches("/v1/models", "/v1/models"));
  CHECK(endpoint_matches("/v1/models", "/v1/models/"));
  CHECK(endpoint_matches("/v1/models", "/v1/models/gpt-4o"));
  CHECK_FALSE(endpoint_matches("/v1/models", "/v1/modelsX"));
  CHECK_FALSE(endpoint_matches("/v1/models", "/v1/model"));
  CHECK_FALSE(endpoint_matches("/v1/models", "/v2/models"));
  CHECK(endpoint_matches("/v1/", "/v1/anything"));
  CHECK(endpoint_matches("/", "/v1/models"));
}
