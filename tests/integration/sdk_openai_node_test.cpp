// The official OpenAI Node SDK against the real binary (issue 11): a client written for api.openai.com works
// with only its base URL and key changed, and reads `err.code` / `err.type` off the proxy's own errors.
// Needs Node.js and `openai` from npm in LLMPROXY_NPM_PREFIX (default ~/.cache/llm-proxy/npm), installed by
// scripts/setup-sdk.sh (the README test command runs it). Without them the test fails, naming the script.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "integration/proxy_fixture.hpp"

namespace llmproxy::itest {
namespace {

std::string npm_prefix() {
  if (const char* p = std::getenv("LLMPROXY_NPM_PREFIX"); p != nullptr && *p != '\0') return p;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.cache/llm-proxy/npm";
}

void openai_node_sdk(TestDatabase::Kind kind) {
  const std::string modules = npm_prefix() + "/node_modules";
  INFO("run scripts/setup-sdk.sh to install the OpenAI Node SDK into " << modules);
  REQUIRE(std::filesystem::exists(modules + "/openai/package.json"));

  ProxyFixture f(kind);
  auto project = f.create_project("sdk-" + random_suffix());
  const auto token = f.create_token(project).at("token").get<std::string>();
  const auto spent = f.create_token(project, 1).at("token").get<std::string>();
  REQUIRE(f.chat(spent).status == 200);  // its one request is used up

  Environment env{{"PROXY_BASE_URL", "http://127.0.0.1:" + std::to_string(f.proxy->port()) + "/v1"},
                  {"PROXY_TOKEN", token},
                  {"PROXY_SPENT_TOKEN", spent},
                  {"NODE_PATH", modules},
                  {"HOME", f.dir.path().string()}};
  auto [code, out] = test::run_command(
      {"node", std::string(LLMPROXY_SOURCE_DIR) + "/tests/sdk/openai_node_client.cjs"}, env, std::chrono::seconds(60));
  INFO(out);
  REQUIRE(code == 0);
  const auto j = nlohmann::json::parse(out.substr(out.rfind('{', out.find("\"sdk_version\""))));

  CHECK(j["plain"]["object"] == "chat.completion");
  CHECK_FALSE(j["plain"]["content"].get<std::string>().empty());
  CHECK(j["stream"]["chunks"].get<int>() >= 2);
  CHECK(j["stream"]["text"].get<std::string>().starts_with("tok0"));

  const auto& unauthorized = j["unauthorized"];
  CHECK(unauthorized["sdk_error"] == true);
  CHECK(unauthorized["class"] == "AuthenticationError");
  CHECK(unauthorized["status"] == 401);
  CHECK(unauthorized["code"] == "token_not_found");
  CHECK(unauthorized["type"] == "invalid_request_error");
  CHECK(unauthorized["request_id"].is_string());

  const auto& limited = j["spent"];
  CHECK(limited["class"] == "RateLimitError");
  CHECK(limited["status"] == 429);
  CHECK(limited["code"] == "rate_limit_exceeded");
  CHECK(limited["type"] == "rate_limit_error");

  // The SDK's calls were counted on the token like any other client's.
  CHECK(f.mock.requests().size() == 3);
}
BOTH_DRIVERS("The official OpenAI Node SDK: plain and streamed completions, err.code and err.type on 401 and 429",
             "[proxy][sdk]", openai_node_sdk)

}  // namespace
}  // namespace llmproxy::itest
