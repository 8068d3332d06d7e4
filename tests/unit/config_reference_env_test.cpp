// Env files written for the reference (Go llm-proxy) boot unchanged (SPEC §7.4): sizes with units,
// LOG_FORMAT=text, LLM_PROXY_ENFORCE_PROJECT_ACTIVE, OPENAI_API_URL, and dotenv files for `server --env`.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "llmproxy/config/config.hpp"
#include "llmproxy/config/dotenv.hpp"
#include "llmproxy/config/providers.hpp"
#include "unit/config_env_support.hpp"

namespace cfg = llmproxy::config;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Env = llmproxy::test::Env;

namespace {

using llmproxy::test::load;
using llmproxy::test::load_error;

std::string dotenv_error(std::string_view text) {
  try {
    cfg::parse_dotenv(text, ".env");
  } catch (const cfg::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("parse_size reads bytes and the reference's units as powers of 1024", "[config][size]") {
  const std::pair<const char*, std::uint64_t> good[] = {
      {"10485760", 10485760},      {"100B", 100},
      {"100b", 100},               {"512KB", 512 * 1024},
      {"512kb", 512 * 1024},       {"512K", 512 * 1024},
      {"512KiB", 512 * 1024},      {"10MB", 10 * 1024 * 1024},
      {"10 MB", 10 * 1024 * 1024}, {"10MiB", 10 * 1024 * 1024},
      {"10m", 10 * 1024 * 1024},   {"1GiB", 1024ull * 1024 * 1024},
      {"1GB", 1024ull * 1024 * 1024}, {"2TB", 2ull << 40},
      {"0", 0},                    {"16777215TiB", 16777215ull << 40},
  };
  for (const auto& [text, expected] : good) {
    INFO(text);
    const auto parsed = cfg::parse_size(text);
    REQUIRE(parsed);
    CHECK(*parsed == expected);
  }
  for (const char* bad : {"", "MB", "-1", "+1", "1.5MB", "10XB", "10 ", " 10", "10  MB", "10MBs", "10M B", "0x10",
                          "16777216TiB", "18446744073709551616", "10PB", "10mb\n"}) {
    INFO(bad);
    CHECK_FALSE(cfg::parse_size(bad));
  }
}

TEST_CASE("every size variable accepts units and a bad size names the variable", "[config][size]") {
  const auto c = load({{"MAX_REQUEST_SIZE", "10MB"}, {"MAX_BUFFERED_RESPONSE_SIZE", "512KB"}});
  CHECK(c.max_request_size == 10485760u);
  CHECK(c.max_buffered_response_size == 524288u);
  CHECK(load({{"MAX_REQUEST_SIZE", "1GiB"}}).max_request_size == 1073741824u);
  CHECK(load({{"MAX_REQUEST_SIZE", "100B"}}).max_request_size == 100u);
  CHECK(load({{"MAX_REQUEST_SIZE", "2048"}}).max_request_size == 2048u);
  CHECK_THAT(load_error({{"MAX_REQUEST_SIZE", "10 megabytes"}}),
             StartsWith("invalid MAX_REQUEST_SIZE=\"10 megabytes\": expected a size of at least 1 byte"));
  CHECK_THAT(load_error({{"MAX_BUFFERED_RESPONSE_SIZE", "0KB"}}),
             StartsWith("invalid MAX_BUFFERED_RESPONSE_SIZE=\"0KB\": expected a size"));
}

TEST_CASE("LOG_FORMAT=text is the console format", "[config]") {
  CHECK(load({{"LOG_FORMAT", "text"}}).log_format == cfg::LogFormat::console);
  CHECK(load({{"LOG_FORMAT", "TEXT"}}).log_format == cfg::LogFormat::console);
  CHECK(load({{"LOG_FORMAT", "json"}}).log_format == cfg::LogFormat::json);
  CHECK_THAT(load_error({{"LOG_FORMAT", "logfmt"}}),
             StartsWith("invalid LOG_FORMAT=\"logfmt\": expected json, console or text"));
}

TEST_CASE("LLM_PROXY_ENFORCE_PROJECT_ACTIVE is an alias that ENFORCE_PROJECT_ACTIVE overrides", "[config]") {
  CHECK(load({}).enforce_project_active);
  CHECK_FALSE(load({{"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "false"}}).enforce_project_active);
  CHECK(load({{"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "true"}}).enforce_project_active);
  // Both set: ours wins, whichever way round.
  CHECK(load({{"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "false"}, {"ENFORCE_PROJECT_ACTIVE", "true"}})
            .enforce_project_active);
  CHECK_FALSE(load({{"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "true"}, {"ENFORCE_PROJECT_ACTIVE", "false"}})
                  .enforce_project_active);
  // The alias is validated even when ours is set.
  CHECK_THAT(load_error({{"LLM_PROXY_ENFORCE_PROJECT_ACTIVE", "maybe"}, {"ENFORCE_PROJECT_ACTIVE", "true"}}),
             StartsWith("invalid LLM_PROXY_ENFORCE_PROJECT_ACTIVE=\"maybe\""));
}

TEST_CASE("OPENAI_API_URL is the base URL of the built-in provider only", "[config][providers]") {
  CHECK(load({}).openai_api_url == "https://api.openai.com");
  const auto c = load({{"OPENAI_API_URL", "http://127.0.0.1:18080/v1"}});
  CHECK(c.openai_api_url == "http://127.0.0.1:18080/v1");

  const auto missing = std::filesystem::temp_directory_path() / "llmproxy-no-such-providers.yaml";
  std::filesystem::remove(missing);
  bool builtin = false;
  const auto providers = cfg::load_providers(missing.string(), builtin, c.openai_api_url);
  CHECK(builtin);
  const auto& openai = cfg::select_provider(providers, "openai");
  CHECK(openai.scheme == "http");
  CHECK(openai.host == "127.0.0.1");
  CHECK(openai.port == 18080);
  CHECK(openai.base_path == "/v1");
  CHECK_FALSE(openai.allowed_endpoints.empty());  // the built-in allow-lists are kept

  // With a provider file, the file's base_url is used (like the reference, which reads OPENAI_API_URL only
  // when it falls back to its built-in provider).
  const auto file = std::filesystem::temp_directory_path() / "llmproxy-providers-openai-url.yaml";
  std::ofstream(file) << "apis:\n  openai:\n    base_url: https://upstream.example\n";
  const auto from_file = cfg::load_providers(file.string(), builtin, c.openai_api_url);
  std::filesystem::remove(file);
  CHECK_FALSE(builtin);
  CHECK(cfg::select_provider(from_file, "openai").host == "upstream.example");

  for (const char* bad : {"api.openai.com", "ftp://x", "https://", "https://host:99999", "https://h/?q=1"}) {
    INFO(bad);
    CHECK_THAT(load_error({{"OPENAI_API_URL", bad}}), StartsWith("invalid OPENAI_API_URL="));
  }
  // User info may hold a password: refused without echoing the value.
  const auto message = load_error({{"OPENAI_API_URL", "https://user:hunter2@api.example"}});
  CHECK_THAT(message, StartsWith("invalid OPENAI_API_URL (value not shown)"));
  CHECK_THAT(message, !Contains("hunter2"));
}

TEST_CASE("dotenv files: comments, quotes, export and inline comments", "[config][dotenv]") {
  const auto pairs = cfg::parse_dotenv(
      "# a comment\n"
      "\n"
      "MANAGEMENT_TOKEN=abc\n"
      "export LISTEN_ADDR=127.0.0.1:9000\n"
      "  LOG_LEVEL = debug  \n"
      "MAX_REQUEST_SIZE=10MB         # Maximum size of incoming requests\n"
      "DOUBLE=\"two words # not a comment\"   # a comment\n"
      "ESCAPED=\"line\\nnext \\\"quoted\\\" back\\\\slash\"\n"
      "SINGLE='$literal \\n # kept'\n"
      "HASH=abc#def\n"
      "EMPTY=\n"
      "CRLF=value\r\n"
      "URL=postgres://u:p@h:5432/db?sslmode=require\n"
      "DUP=first\n"
      "DUP=second",
      ".env");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"MANAGEMENT_TOKEN", "abc"},
      {"LISTEN_ADDR", "127.0.0.1:9000"},
      {"LOG_LEVEL", "debug"},
      {"MAX_REQUEST_SIZE", "10MB"},
      {"DOUBLE", "two words # not a comment"},
      {"ESCAPED", "line\nnext \"quoted\" back\\slash"},
      {"SINGLE", "$literal \\n # kept"},
      {"HASH", "abc#def"},
      {"EMPTY", ""},
      {"CRLF", "value"},
      {"URL", "postgres://u:p@h:5432/db?sslmode=require"},
      {"DUP", "first"},
      {"DUP", "second"},
  };
  CHECK(pairs == expected);
}

TEST_CASE("dotenv errors name the file and line, never the value", "[config][dotenv]") {
  CHECK_THAT(dotenv_error("A=1\nsecret-without-equals\n"), StartsWith(".env:2: no '=' on this line"));
  CHECK_THAT(dotenv_error("A=1\nsecret-without-equals\n"), !Contains("secret"));
  CHECK_THAT(dotenv_error("1A=x"), StartsWith(".env:1: invalid variable name"));
  CHECK_THAT(dotenv_error("MY-VAR=x"), StartsWith(".env:1: invalid variable name"));
  CHECK_THAT(dotenv_error("=x"), StartsWith(".env:1: invalid variable name"));
  CHECK_THAT(dotenv_error("K=\"hunter2"), StartsWith(".env:1: unterminated double-quoted value"));
  CHECK_THAT(dotenv_error("K=\"hunter2"), !Contains("hunter2"));
  CHECK_THAT(dotenv_error("K='hunter2"), StartsWith(".env:1: unterminated single-quoted value"));
  CHECK_THAT(dotenv_error("K=\"a\" b"), StartsWith(".env:1: unexpected text after the closing quote"));
  CHECK(dotenv_error("# only comments\n\n   \n") == "<no error>");
  CHECK_THAT(dotenv_error(""), Contains("no error"));
}
