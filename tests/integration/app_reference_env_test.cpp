// Env files and provider files written for the reference (Go llm-proxy) work unchanged on the real binary
// (SPEC §7.4): sizes with units, LOG_FORMAT=text, LLM_PROXY_ENFORCE_PROJECT_ACTIVE, OPENAI_API_URL, and a
// base_url with a path (the mock upstream records the target it received).
#include <regex>
#include <string>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

/// The target of the only request the mock received.
std::string upstream_target(const test::MockUpstream& mock) {
  const auto seen = mock.requests();
  INFO(seen.dump());
  REQUIRE(seen.size() == 1);
  return seen[0]["target"].get<std::string>();
}

}  // namespace

void sizes_with_units(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["MAX_REQUEST_SIZE"] = "1KB"; });
  const std::string token = f.project_token();
  const auto over = f.chat(token, R"({"model":"gpt-4o","pad":")" + std::string(1024, 'x') + "\"}");
  CHECK(over.status == 413);
  CHECK_THAT(over.body, Contains("request_too_large"));
  const auto under = f.chat(token, R"({"model":"gpt-4o","pad":")" + std::string(900, 'x') + "\"}");
  CHECK(under.status == 200);
}
BOTH_DRIVERS("reference env: MAX_REQUEST_SIZE=1KB limits bodies to 1024 bytes", "[config][reference]",
             sizes_with_units)

TEST_CASE("reference env: a size with a bad unit exits 2 naming the variable", "[config][reference]") {
  TempDir dir;
  for (const char* name : {"MAX_REQUEST_SIZE", "MAX_BUFFERED_RESPONSE_SIZE"}) {
    auto env = base_env(dir);
    env["DATABASE_PATH"] = dir.file("db.sqlite");
    env[name] = "10 parsecs";
    auto [code, out] = run_binary({"server"}, env, 20s);
    INFO(out);
    CHECK(code == 2);
    CHECK_THAT(out, Contains(std::string("invalid ") + name + "=\"10 parsecs\""));
  }
}

TEST_CASE("reference env: LOG_FORMAT=text logs human-readable lines", "[config][reference]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  env["LOG_FORMAT"] = "text";
  test::Process process(LLMPROXY_BINARY, {"server"}, env);
  const auto line = process.wait_for_line(std::regex("\\[info\\] listening .*port=([0-9]+)"), 20s);
  INFO(process.output());
  REQUIRE(line);
  CHECK_THAT(process.output(), !Contains("\"event\":"));
  process.signal(SIGTERM);
  CHECK(process.wait_exit(15s) == 0);
}

void enforce_alias(TestDatabase::Kind kind) {
  for (const bool alias_off : {true, false}) {
    INFO("LLM_PROXY_ENFORCE_PROJECT_ACTIVE=" << (alias_off ? "false" : "true"));
    ProxyFixture f(kind, [alias_off](Environment& env) {
      env["LLM_PROXY_ENFORCE_PROJECT_ACTIVE"] = alias_off ? "false" : "true";
      env["PROJECT_CACHE_TTL"] = "0";
    });
    const auto project = f.create_project("inactive-" + random_suffix());
    const auto token = f.create_token(project).at("token").get<std::string>();
    REQUIRE(f.proxy->manage("PATCH", "/manage/projects/" + project, R"({"is_active":false})").status == 200);
    const auto r = f.chat(token);
    INFO(r.body);
    CHECK(r.status == (alias_off ? 200 : 403));
  }
}
BOTH_DRIVERS("reference env: LLM_PROXY_ENFORCE_PROJECT_ACTIVE=false lets inactive projects through",
             "[config][reference]", enforce_alias)

void openai_api_url(TestDatabase::Kind kind) {
  // No provider file: the built-in provider at OPENAI_API_URL, with a path like many reference env files.
  test::MockUpstream mock;
  ProxyFixture f(kind, [&mock](Environment& env) {
    env["API_CONFIG_PATH"] = "/nonexistent/api_providers.yaml";
    env["OPENAI_API_URL"] = mock.base_url() + "/v1";
  });
  const auto r = f.chat(f.project_token());
  INFO(r.body);
  CHECK(r.status == 200);
  CHECK(upstream_target(mock) == "/v1/chat/completions");
  CHECK(f.mock.requests().empty());  // the fixture's provider file was not used
}
BOTH_DRIVERS("reference env: OPENAI_API_URL is the built-in provider's base URL", "[config][reference]",
             openai_api_url)

void base_url_with_path(TestDatabase::Kind kind) {
  for (const std::string path : {"/v1", "/v1/", "/openai"}) {
    INFO("base_url path " << path);
    test::MockUpstream mock;
    ProxyFixture f(kind, {}, "", mock.base_url() + path);
    const auto r = f.proxy->request("GET", "/v1/models?limit=2", "",
                                    {{"Authorization", "Bearer " + f.project_token()}});
    INFO(r.body);
    CHECK(r.status == 200);
    // Like the reference: the request path goes upstream as received, the base_url path is not prepended.
    CHECK(upstream_target(mock) == "/v1/models?limit=2");
  }
}
BOTH_DRIVERS("reference env: a base_url with a path does not double the path", "[config][reference]",
             base_url_with_path)
