// Provider allow-list parsing (SPEC §5.1) and glob matching for param_whitelist.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "llmproxy/config/providers.hpp"

// Using-declarations, not a using-directive: the unit tests are a unity build (tests/CMakeLists.txt).
using llmproxy::config::glob_match;
using llmproxy::config::load_providers;
using llmproxy::config::parse_providers;
using llmproxy::config::select_provider;
using Catch::Matchers::Contains;

TEST_CASE("the shipped api_providers.yaml parses and allows the usual OpenAI endpoints", "[unit][providers]") {
  bool builtin = true;
  auto providers = load_providers(std::string(LLMPROXY_SOURCE_DIR) + "/config/api_providers.yaml", builtin);
  CHECK_FALSE(builtin);
  CHECK(providers.default_api == "openai");
  const auto& p = select_provider(providers, "openai");
  CHECK(p.scheme == "https");
  CHECK(p.host == "api.openai.com");
  CHECK(p.port == 443);
  CHECK(p.base_path.empty());
  CHECK(std::find(p.allowed_endpoints.begin(), p.allowed_endpoints.end(), "/v1/chat/completions") !=
        p.allowed_endpoints.end());
  CHECK(p.allowed_methods == std::vector<std::string>{"GET", "POST", "OPTIONS"});
  CHECK(p.timeouts.idle_connection == std::chrono::seconds(90));
}

TEST_CASE("a missing file falls back to the built-in defaults", "[unit][providers]") {
  bool builtin = false;
  auto providers = load_providers("/nonexistent/api_providers.yaml", builtin);
  CHECK(builtin);
  CHECK(select_provider(providers, "openai").host == "api.openai.com");
}

TEST_CASE("every field of the reference format is read", "[unit][providers]") {
  auto providers = parse_providers(R"(
default_api: local
apis:
  local:
    base_url: http://127.0.0.1:9999/prefix/
    allowed_endpoints: [/v1/chat/completions]
    allowed_methods: [post, Get]
    timeouts: {request: 10s, response_header: 500ms, idle_connection: 1m, flush_interval: 10ms}
    connection: {max_idle_conns: 7, max_idle_conns_per_host: 3}
    param_whitelist:
      model: [gpt-4o, "gpt-4o-*"]
    allowed_origins: [https://app.example.com]
    required_headers: [Origin]
  other:
    base_url: https://[::1]:8443
)");
  const auto& p = select_provider(providers, "local");
  CHECK(p.scheme == "http");
  CHECK(p.host == "127.0.0.1");
  CHECK(p.port == 9999);
  CHECK(p.base_path == "/prefix");
  CHECK(p.allowed_methods == std::vector<std::string>{"POST", "GET"});
  CHECK(p.timeouts.request == std::chrono::seconds(10));
  CHECK(p.timeouts.response_header == std::chrono::milliseconds(500));
  CHECK(p.timeouts.idle_connection == std::chrono::minutes(1));
  CHECK(p.max_idle_conns == 7);
  CHECK(p.max_idle_conns_per_host == 3);
  REQUIRE(p.param_whitelist.size() == 1);
  CHECK(p.param_whitelist[0].first == "model");
  CHECK(p.param_whitelist[0].second == std::vector<std::string>{"gpt-4o", "gpt-4o-*"});
  CHECK(p.allowed_origins == std::vector<std::string>{"https://app.example.com"});
  CHECK(p.required_headers == std::vector<std::string>{"origin"});
  const auto& v6 = select_provider(providers, "other");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 8443);
}

TEST_CASE("invalid provider files are errors naming the key", "[unit][providers]") {
  struct Case {
    const char* yaml;
    const char* expect;
  };
  const Case cases[] = {
      {"apis: [", "invalid YAML"},
      {"default_api: x\n", "apis"},
      {"apis:\n  openai:\n    allowed_methods: [GET]\n", "apis.openai.base_url"},
      {"apis:\n  openai:\n    base_url: ftp://x\n", "apis.openai.base_url"},
      {"apis:\n  openai:\n    base_url: http://x:99999\n", "invalid port"},
      {"apis:\n  openai:\n    base_url: http://x\n    allowed_endpoints: /v1\n", "apis.openai.allowed_endpoints"},
      {"apis:\n  openai:\n    base_url: http://x\n    timeouts: {request: soon}\n", "apis.openai.timeouts.request"},
      {"default_api: nope\napis:\n  openai:\n    base_url: http://x\n", "default_api"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    CHECK_THROWS_WITH(parse_providers(c.yaml), Contains(c.expect));
  }
  auto providers = parse_providers("apis:\n  openai:\n    base_url: http://x\n");
  CHECK_THROWS_WITH(select_provider(providers, "anthropic"), Contains("DEFAULT_API_PROVIDER"));
}

TEST_CASE("glob patterns: * any run, ? one char, rest literal", "[unit][providers]") {
  CHECK(glob_match("gpt-4o", "gpt-4o"));
  CHECK_FALSE(glob_match("gpt-4o", "gpt-4o-mini"));
  CHECK(glob_match("gpt-4o-*", "gpt-4o-mini"));
  CHECK(glob_match("gpt-4o-*", "gpt-4o-"));
  CHECK_FALSE(glob_match("gpt-4o-*", "gpt-4"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*mini", "o4-mini"));
  CHECK(glob_match("o?-mini", "o4-mini"));
  CHECK_FALSE(glob_match("o?-mini", "o-mini"));
  CHECK(glob_match("a*b*c", "aXXbYYc"));
  CHECK_FALSE(glob_match("a*b*c", "aXXbYY"));
  CHECK(glob_match("gpt-4.1*", "gpt-4.1-nano"));
  CHECK_FALSE(glob_match("gpt-4.1", "gpt-401"));
  // Pathological input stays fast (no exponential backtracking).
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST_CASE("glob patterns: a * matches values that contain a literal * too", "[unit][providers]") {
  // Found by fuzz_providers_yaml: the `*` of the pattern was matched as a literal against the value's `*`,
  // leaving no point to backtrack to, so "*" rejected "*0" and "gpt-*" rejected "gpt-*x".
  CHECK(glob_match("*", "*0"));
  CHECK(glob_match("*", "*"));
  CHECK(glob_match("gpt-*", "gpt-*x"));
  CHECK(glob_match("a*c", "a*bc"));
  CHECK(glob_match("*0", "*0"));
  CHECK(glob_match("?*", "**"));
  CHECK_FALSE(glob_match("a*c", "a*b"));
  CHECK_FALSE(glob_match("x*", "*x"));
}
