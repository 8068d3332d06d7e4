// What browser clients and the official SDKs depend on (SPEC §5.2, §5.3, §7.4): CORS on every /v1 answer,
// upstream's and the proxy's own alike, OpenAI's error envelope, and X-Correlation-ID echoed.
#include <catch2/catch.hpp>

#include "integration/proxy_fixture.hpp"

namespace llmproxy::itest {
namespace {

using Catch::Matchers::Contains;

constexpr const char* kOrigin = "https://app.example.com";

/// The CORS fields a browser needs to read an answer to a script from `origin`.
void check_cors(const test::HttpResponse& r, const std::string& origin) {
  INFO(r.status << " " << r.body);
  CHECK(r.header("Access-Control-Allow-Origin") == origin);
  CHECK_THAT(r.header("Vary"), Contains("Origin"));
  const std::string exposed = r.header("Access-Control-Expose-Headers");
  CHECK_THAT(exposed, Contains("X-Request-ID"));
  CHECK_THAT(exposed, Contains("X-Correlation-ID"));
  CHECK_THAT(exposed, Contains("Cache-Status"));
  CHECK_THAT(exposed, Contains("X-PROXY-CACHE"));
  CHECK_THAT(exposed, Contains("Retry-After"));
}

void cors_with_no_allowed_origins(TestDatabase::Kind kind) {
  // The shipped provider file lists no allowed_origins: every Origin is allowed, like the reference.
  ProxyFixture f(kind, [](Environment& env) { env["MAX_REQUEST_SIZE"] = "4096"; });
  auto project = f.create_project("cors-" + random_suffix());
  auto token = f.create_token(project, 1).at("token").get<std::string>();
  const test::RequestHeaders origin{{"Origin", kOrigin}};

  SECTION("an upstream answer, whose own CORS fields are replaced") {
    auto r = f.chat(token, R"({"model":"gpt-4o"})",
                    {{"Origin", kOrigin},
                     {"X-Mock-Header", "Access-Control-Allow-Origin: *"},
                     {"X-Mock-Header", "Access-Control-Allow-Credentials: true"}});
    CHECK(r.status == 200);
    check_cors(r, kOrigin);
    CHECK_FALSE(r.has_header("Access-Control-Allow-Credentials"));
  }
  SECTION("the proxy's own errors: pipeline, quota and session") {
    check_cors(f.proxy->request("POST", "/v1/chat/completions", "{}", origin), kOrigin);  // 401 invalid_token
    REQUIRE(f.chat(token).status == 200);
    auto limited = f.chat(token, R"({"model":"gpt-4o"})", origin);
    CHECK(limited.status == 429);
    check_cors(limited, kOrigin);
    auto unknown_endpoint = f.proxy->request("POST", "/v1/fine_tuning/jobs", "{}", origin);
    CHECK(unknown_endpoint.status == 404);
    check_cors(unknown_endpoint, kOrigin);
    // A declared body over MAX_REQUEST_SIZE is refused by the HTTP session itself, before any handler.
    auto too_large = f.chat(token, std::string(5000, ' '), origin);
    CHECK(too_large.status == 413);
    CHECK(api_error_code(too_large) == "request_too_large");
    check_cors(too_large, kOrigin);
  }
  SECTION("a preflight from any origin") {
    auto r = f.proxy->request("OPTIONS", "/v1/chat/completions", "",
                              {{"Origin", "https://elsewhere.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(r.status == 204);
    CHECK(r.header("Access-Control-Allow-Origin") == "https://elsewhere.example");
  }
  SECTION("no Origin, no CORS fields") {
    auto r = f.chat(token);
    CHECK(r.status == 200);
    CHECK_FALSE(r.has_header("Access-Control-Allow-Origin"));
    CHECK_FALSE(r.has_header("Access-Control-Expose-Headers"));
  }
}
BOTH_DRIVERS("CORS: with no allowed_origins every Origin gets CORS on upstream answers and on the proxy's errors",
             "[proxy][cors]", cors_with_no_allowed_origins)

TEST_CASE("CORS: with allowed_origins only listed origins get CORS fields, on errors too", "[proxy][cors]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, {}, "    allowed_origins: [https://app.example.com]\n");
  auto token = f.project_token();
  auto listed = f.proxy->request("POST", "/v1/chat/completions", "{}", {{"Origin", kOrigin}});
  CHECK(listed.status == 401);
  check_cors(listed, kOrigin);
  CHECK(f.chat(token, R"({"model":"gpt-4o"})", {{"Origin", kOrigin}}).header("Access-Control-Allow-Origin") == kOrigin);
  auto other = f.chat(token, R"({"model":"gpt-4o"})", {{"Origin", "https://evil.example"}});
  CHECK(other.status == 403);
  CHECK(api_error_code(other) == "origin_not_allowed");
  CHECK_FALSE(other.has_header("Access-Control-Allow-Origin"));
}

TEST_CASE("Errors on /v1 use OpenAI's envelope, the management API keeps its own", "[proxy][errors]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  auto r = f.chat("sk-AAAAAAAAAAAAAAAAAAAAAA");
  CHECK(r.status == 401);
  const auto j = nlohmann::json::parse(r.body);
  CHECK(j == nlohmann::json{{"error",
                             {{"message", j["error"]["message"]},
                              {"type", "invalid_request_error"},
                              {"param", nullptr},
                              {"code", "token_not_found"}}}});
  CHECK_FALSE(j["error"]["message"].get<std::string>().empty());
  auto manage = f.proxy->request("GET", "/manage/projects", "", {{"Authorization", "Bearer wrong"}});
  CHECK(manage.status == 401);
  const auto m = nlohmann::json::parse(manage.body);
  CHECK(m["error"].is_string());
  CHECK(m["code"].is_string());
}

void correlation_id_echoed(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto token = f.project_token();
  auto ok = f.chat(token, R"({"model":"gpt-4o"})", {{"X-Correlation-ID", "trace-42.a_b"}});
  CHECK(ok.status == 200);
  CHECK(ok.header("X-Correlation-ID") == "trace-42.a_b");
  const auto seen = f.mock.requests().back();
  CHECK(seen["headers"].value("X-Correlation-ID", "") == "trace-42.a_b");  // passed on to the provider

  auto denied = f.chat("sk-AAAAAAAAAAAAAAAAAAAAAA", "{}", {{"X-Correlation-ID", "trace-43"}});
  CHECK(denied.status == 401);
  CHECK(denied.header("X-Correlation-ID") == "trace-43");
  CHECK(f.proxy->request("GET", "/live", "", {{"X-Correlation-ID", "trace-44"}}).header("X-Correlation-ID") ==
        "trace-44");

  // Not echoed when absent or not 1-128 characters of [A-Za-z0-9._-] (never reflected into a header as sent).
  CHECK_FALSE(f.chat(token).has_header("X-Correlation-ID"));
  CHECK_FALSE(
      f.chat(token, R"({"model":"gpt-4o"})", {{"X-Correlation-ID", "a b<script>"}}).has_header("X-Correlation-ID"));
  CHECK_FALSE(f.chat(token, R"({"model":"gpt-4o"})", {{"X-Correlation-ID", std::string(129, 'a')}})
                  .has_header("X-Correlation-ID"));
}
BOTH_DRIVERS("X-Correlation-ID: a valid one is echoed on every answer and passed upstream", "[proxy][headers]",
             correlation_id_echoed)

}  // namespace
}  // namespace llmproxy::itest
