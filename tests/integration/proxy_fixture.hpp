#pragma once
// A proxy wired to the mock upstream over a fresh database, with helpers to create projects and tokens through
// the management API. Every proxy test runs once per driver (BOTH_DRIVERS).
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "integration/binary_fixture.hpp"
#include "support/mock_upstream.hpp"

namespace llmproxy::itest {

/// Registers `fn(kind)` as a SQLite test case and a [postgres] test case.
#define BOTH_DRIVERS(name, tags, fn)                                                                         \
  TEST_CASE(name, tags) { fn(::llmproxy::itest::TestDatabase::Kind::sqlite); }                               \
  TEST_CASE(name " (postgres)", tags "[postgres]") { fn(::llmproxy::itest::TestDatabase::Kind::postgres); }

/// The provider file the tests use: the mock as upstream, the usual endpoints, and `extra` YAML lines
/// appended to the provider (indented by four spaces by the caller).
inline std::string providers_yaml(const std::string& base_url, const std::string& extra = "") {
  return "default_api: openai\n"
         "apis:\n"
         "  openai:\n"
         "    base_url: " + base_url + "\n"
         "    allowed_endpoints: [/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models]\n"
         "    allowed_methods: [GET, POST, OPTIONS]\n"
         "    timeouts: {request: 30s, response_header: 30s, idle_connection: 30s}\n" +
         extra;
}

struct ProxyFixture {
  explicit ProxyFixture(TestDatabase::Kind kind, const std::function<void(Environment&)>& tweak = {},
                        const std::string& provider_extra = "", const std::string& base_url_override = "")
      : db(kind), mock() {
    env = base_env(dir);
    db.apply(env);
    {
      std::ofstream out(dir.file("api_providers.yaml"));
      out << providers_yaml(base_url_override.empty() ? mock.base_url() : base_url_override, provider_extra);
    }
    env["API_CONFIG_PATH"] = dir.file("api_providers.yaml");
    env["USAGE_FLUSH_INTERVAL"] = "200ms";
    if (tweak) tweak(env);
    proxy = std::make_unique<Proxy>(env);
  }

  /// Creates a project; returns its id.
  std::string create_project(const std::string& name, const std::string& api_key = "sk-upstream-project-key") {
    auto r = proxy->manage("POST", "/manage/projects",
                           nlohmann::json{{"name", name}, {"api_key", api_key}}.dump());
    INFO(r.body);
    REQUIRE(r.status == 201);
    return nlohmann::json::parse(r.body).at("id").get<std::string>();
  }

  /// Creates a token; returns the create response ({"id","token","expires_at","max_requests"}).
  nlohmann::json create_token(const std::string& project_id, std::optional<int> max_requests = std::nullopt,
                              int duration_minutes = 60) {
    nlohmann::json body{{"project_id", project_id}, {"duration_minutes", duration_minutes}};
    if (max_requests) body["max_requests"] = *max_requests;
    auto r = proxy->manage("POST", "/manage/tokens", body.dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
    return nlohmann::json::parse(r.body);
  }

  /// A project and a token in one go; returns the token secret.
  std::string project_token(std::optional<int> max_requests = std::nullopt) {
    auto project = create_project("project-" + random_suffix());
    return create_token(project, max_requests).at("token").get<std::string>();
  }

  test::HttpResponse chat(const std::string& token, const std::string& body = R"({"model":"gpt-4o","messages":[]})",
                          test::RequestHeaders extra = {}) {
    extra.emplace_back("Authorization", "Bearer " + token);
    extra.emplace_back("Content-Type", "application/json");
    return proxy->request("POST", "/v1/chat/completions", body, extra);
  }

  TempDir dir;
  TestDatabase db;
  test::MockUpstream mock;
  Environment env;
  std::unique_ptr<Proxy> proxy;
};

/// The code of a management-API error, `{"error":"...","code":"..."}`.
inline std::string error_code(const test::HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("code")) return "<no code: " + r.body + ">";
  return j["code"].get<std::string>();
}

/// The code of an error the proxy answers on /v1, which must be OpenAI's envelope exactly:
/// `{"error":{"message":<string>,"type":<string>,"param":null,"code":<string>}}` and nothing else.
inline std::string api_error_code(const test::HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  const bool shaped = j.is_object() && j.size() == 1 && j.contains("error") && j["error"].is_object() &&
                      j["error"].size() == 4 && j["error"].value("message", nlohmann::json()).is_string() &&
                      j["error"].value("type", nlohmann::json()).is_string() && j["error"].contains("param") &&
                      j["error"]["param"].is_null() && j["error"].value("code", nlohmann::json()).is_string();
  if (!shaped) return "<not an OpenAI error envelope: " + r.body + ">";
  return j["error"]["code"].get<std::string>();
}

/// The OpenAI error type of a /v1 error (empty when the body is not the envelope).
inline std::string api_error_type(const test::HttpResponse& r) {
  if (api_error_code(r).starts_with("<")) return "";
  return nlohmann::json::parse(r.body)["error"]["type"].get<std::string>();
}

}  // namespace llmproxy::itest
