// `llm-proxy server` with the reference's flags and `--env FILE` (SPEC §7.4, docs/configuration.md), on the real
// binary: what each flag sets, precedence (flag > environment > file), logs appended to --log-file, and the
// refusals with exit code 2.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "integration/binary_fixture.hpp"
#include "support/mock_upstream.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The JSON object of the first `"event":"<event>"` line in `text`, or null.
nlohmann::json event_line(const std::string& text, const std::string& event) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"event\":\"" + event + "\"") == std::string::npos) continue;
    return nlohmann::json::parse(line, nullptr, false);
  }
  return nullptr;
}

/// The environment without the variables the flags are tested on.
Environment bare_env(const TempDir& dir) {
  auto env = base_env(dir);
  env.erase("LISTEN_ADDR");
  env.erase("API_CONFIG_PATH");
  env.erase("LOG_LEVEL");
  return env;
}

}  // namespace

TEST_CASE("server flags set their variables and override the environment", "[server][config][reference]") {
  TempDir dir;
  test::MockUpstream mock;
  {
    std::ofstream(dir.file("providers.yaml")) << "apis:\n  openai:\n    base_url: " << mock.base_url() << "\n";
  }
  auto env = bare_env(dir);
  // Each flag's variable is also in the environment, with a value that would fail or differ: the flag wins.
  env["LISTEN_ADDR"] = "nonsense";
  env["DATABASE_PATH"] = dir.file("from-env.db");
  env["API_CONFIG_PATH"] = dir.file("missing.yaml");
  env["LOG_LEVEL"] = "verbose";
  Proxy proxy(env, true,
              {"server", "--addr", "127.0.0.1:0", "--db=" + dir.file("from-flag.db"), "-c",
               dir.file("providers.yaml"), "--log-level", "debug", "--file-event-log", dir.file("events.jsonl")});
  const auto out = proxy.process().output();
  const auto config = event_line(out, "effective_config");
  INFO(out);
  REQUIRE(config.is_object());
  CHECK(config["LISTEN_ADDR"] == "127.0.0.1:0");
  CHECK(config["DATABASE_PATH"] == dir.file("from-flag.db"));
  CHECK(config["API_CONFIG_PATH"] == dir.file("providers.yaml"));
  CHECK(config["LOG_LEVEL"] == "debug");
  CHECK(config["EVENT_LOG_FILE"] == dir.file("events.jsonl"));  // the reference's file event sink
  CHECK(std::filesystem::exists(dir.file("events.jsonl")));
  CHECK(event_line(out, "listening")["upstream"] == mock.base_url());
  CHECK(std::filesystem::exists(dir.file("from-flag.db")));
  CHECK_FALSE(std::filesystem::exists(dir.file("from-env.db")));
  CHECK(proxy.get("/health").status == 200);
  CHECK(proxy.terminate() == 0);
}

TEST_CASE("server --env loads a dotenv file that the real environment overrides", "[server][config][reference]") {
  TempDir dir;
  {
    // Written the way the reference's .env.example is: comments, inline comments, quotes, export, a unit size.
    std::ofstream(dir.file("reference.env"))
        << "# LLM Proxy - Environment Variables\n"
           "MANAGEMENT_TOKEN=\"" << kManagementToken << "\"\n"
           "LISTEN_ADDR=:1   # the real environment's LISTEN_ADDR wins\n"
           "export IO_THREADS=3\n"
           "MAX_REQUEST_SIZE=10MB         # Maximum size of incoming requests\n"
           "MAX_BUFFERED_RESPONSE_SIZE='512KB'\n"
           "LOG_FORMAT=json               # Options: json, text\n"
           "DATABASE_PATH=" << dir.file("from-file.db") << "\n";
  }
  auto env = bare_env(dir);
  env.erase("MANAGEMENT_TOKEN");
  env.erase("IO_THREADS");
  env.erase("DATABASE_PATH");
  env["LISTEN_ADDR"] = "127.0.0.1:0";
  Proxy proxy(env, true, {"server", "--env", dir.file("reference.env")});
  const auto out = proxy.process().output();
  const auto config = event_line(out, "effective_config");
  INFO(out);
  REQUIRE(config.is_object());
  CHECK(config["MANAGEMENT_TOKEN"] == "<redacted>");
  CHECK(config["LISTEN_ADDR"] == "127.0.0.1:0");
  CHECK(config["IO_THREADS"] == "3");
  CHECK(config["MAX_REQUEST_SIZE"] == "10485760");
  CHECK(config["MAX_BUFFERED_RESPONSE_SIZE"] == "524288");
  CHECK(config["DATABASE_PATH"] == dir.file("from-file.db"));
  // The token from the file guards the management API.
  CHECK(proxy.manage("GET", "/manage/projects").status == 200);
  CHECK(proxy.terminate() == 0);
}

TEST_CASE("server --log-file appends the logs to the file", "[server][config][reference]") {
  TempDir dir;
  const std::string log_file = dir.file("logs/llm-proxy.log");
  std::filesystem::create_directories(dir.file("logs"));
  { std::ofstream(log_file) << "an earlier line\n"; }
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  test::Process process(LLMPROXY_BINARY, {"server", "--log-file", log_file}, env);
  // Nothing on stdout: the lines go to the file, each flushed as it is written.
  std::optional<std::string> listening;
  for (int i = 0; i < 200 && !listening; ++i) {
    std::istringstream lines(read_file(log_file));
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"ready\"") != std::string::npos) listening = line;
    }
    if (!listening) std::this_thread::sleep_for(50ms);
  }
  const std::string text = read_file(log_file);
  INFO(text << "\n--- stdout:\n" << process.output());
  REQUIRE(listening);
  CHECK_THAT(text, StartsWith("an earlier line\n"));
  const auto port = event_line(text, "listening")["port"].get<int>();
  CHECK(test::http_request(port, "GET", "/live").status == 200);
  CHECK_THAT(process.output(), !Contains("\"event\":\"listening\""));
  process.signal(SIGTERM);
  CHECK(process.wait_exit(15s) == 0);
  CHECK_THAT(read_file(log_file), Contains("\"event\":\"shutdown_complete\""));
}

TEST_CASE("server flag errors exit 2 with a clear message", "[server][config][reference]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  { std::ofstream(dir.file("broken.env")) << "A=1\nMANAGEMENT_TOKEN hunter2-secret\n"; }
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"server", "--frobnicate"}, "unknown flag \"--frobnicate\""},
      {{"server", "extra"}, "unexpected argument \"extra\" for `server`"},
      {{"server", "--addr"}, "flag --addr needs a value"},
      {{"server", "--addr="}, "flag --addr needs a non-empty value"},
      {{"server", "--addr", "nonsense"}, "invalid LISTEN_ADDR=\"nonsense\""},
      {{"server", "--log-level", "loud"}, "invalid LOG_LEVEL=\"loud\""},
      {{"server", "--db", "postgres://u:p@h/db"}, "--db takes a SQLite file path"},
      {{"server", "-d"}, "`server -d` is not supported"},
      {{"server", "--pid-file", "x.pid"}, "`server --pid-file` is not supported"},
      {{"server", "--env", dir.file("missing.env")}, "cannot read the --env file"},
      {{"server", "--env", dir.file("broken.env")}, "broken.env:2: no '=' on this line"},
  };
  for (const auto& c : cases) {
    auto [code, out] = run_binary(c.args, env, 20s);
    INFO(c.args.back() << "\n" << out);
    CHECK(code == 2);
    CHECK_THAT(out, Contains(c.message));
    CHECK_THAT(out, !Contains("hunter2"));
    CHECK_THAT(out, !Contains("\"event\":\"listening\""));
  }
  auto [code, out] = run_binary({"server", "--help"}, env, 20s);
  CHECK(code == 0);
  CHECK_THAT(out, Contains("--log-file FILE"));
}

TEST_CASE("llm-proxy without a command is the server without flags", "[server][config][reference]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy proxy(env, true, {});
  CHECK(proxy.get("/health").status == 200);
  CHECK(proxy.terminate() == 0);
}
