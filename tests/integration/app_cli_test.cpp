// The command line of the real binary (SPEC §8): refusals at boot with their exit codes, --version, --help,
// unknown commands, and `llm-proxy healthcheck`.
#include "integration/binary_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

TEST_CASE("bad configuration exits 2 before listening, naming the variable", "[server][config]") {
  TempDir dir;
  struct Case {
    const char* name;
    const char* value;
  };
  const Case cases[] = {{"DB_DRIVER", "mysql"},           {"IO_THREADS", "abc"},
                        {"LISTEN_ADDR", "nonsense"},      {"DATABASE_POOL_SIZE", "0"},
                        {"REQUEST_TIMEOUT", "10 parsecs"}, {"LOG_FORMAT", "xml"}};
  for (const auto& c : cases) {
    auto env = base_env(dir);
    env["DATABASE_PATH"] = dir.file("db.sqlite");
    env[c.name] = c.value;
    auto [code, out] = run_binary({"server"}, env, 20s);
    INFO(c.name << "=" << c.value << "\n" << out);
    CHECK(code == 2);
    CHECK_THAT(out, Contains(c.name));
    CHECK_THAT(out, !Contains("\"event\":\"listening\""));
  }
}

TEST_CASE("server without MANAGEMENT_TOKEN exits 2 and says how to set it", "[server][config]") {
  TempDir dir;
  auto env = base_env(dir);
  env.erase("MANAGEMENT_TOKEN");
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  auto [code, out] = run_binary({"server"}, env, 20s);
  INFO(out);
  CHECK(code == 2);
  CHECK_THAT(out, Contains("MANAGEMENT_TOKEN"));
}

TEST_CASE("a placeholder or short MANAGEMENT_TOKEN exits 2 unless explicitly allowed", "[server][config]") {
  TempDir dir;
  for (const char* weak : {"change-me", "short-token-123"}) {
    auto env = base_env(dir);
    env["MANAGEMENT_TOKEN"] = weak;
    env["DATABASE_PATH"] = dir.file("db.sqlite");
    auto [code, out] = run_binary({"server"}, env, 20s);
    INFO(weak << "\n" << out);
    CHECK(code == 2);
    CHECK_THAT(out, Contains("MANAGEMENT_TOKEN"));
    CHECK_THAT(out, !Contains(weak));  // a weak secret is still a secret
    CHECK_THAT(out, !Contains("\"event\":\"listening\""));
  }
  auto env = base_env(dir);
  env["MANAGEMENT_TOKEN"] = "change-me";
  env["ALLOW_WEAK_MANAGEMENT_TOKEN"] = "true";
  env["DATABASE_PATH"] = dir.file("db-weak.sqlite");
  Proxy allowed(env);
  CHECK(allowed.get("/live").status == 200);
}

TEST_CASE("a port already in use exits 1 naming the address", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy first(env);
  auto env2 = base_env(dir);
  env2["DATABASE_PATH"] = dir.file("db2.sqlite");
  env2["LISTEN_ADDR"] = "127.0.0.1:" + std::to_string(first.port());
  auto [code, out] = run_binary({"server"}, env2, 20s);
  INFO(out);
  CHECK(code == 1);
  CHECK_THAT(out, Contains("127.0.0.1:" + std::to_string(first.port())));
}

TEST_CASE("command line: --version, --help, unknown command", "[server][cli]") {
  TempDir dir;
  auto env = base_env(dir);
  auto [vcode, vout] = run_binary({"--version"}, env);
  CHECK(vcode == 0);
  CHECK_THAT(vout, Contains("llm-proxy "));
  auto [hcode, hout] = run_binary({"--help"}, env);
  CHECK(hcode == 0);
  CHECK_THAT(hout, Contains("usage: llm-proxy"));
  CHECK_THAT(hout, Contains("migrate"));
  auto [ucode, uout] = run_binary({"frobnicate"}, env);
  CHECK(ucode == 2);
  CHECK_THAT(uout, Contains("unknown command"));
  CHECK_THAT(uout, Contains("usage: llm-proxy"));
}

TEST_CASE("llm-proxy healthcheck: exit 0 against a healthy server, 1 when nothing listens", "[server][cli]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy proxy(env);
  auto check_env = base_env(dir);
  check_env["LISTEN_ADDR"] = "127.0.0.1:" + std::to_string(proxy.port());
  auto [code, out] = run_binary({"healthcheck"}, check_env, 20s);
  INFO(out);
  CHECK(code == 0);
  CHECK_THAT(out, Contains("\"status\":\"ok\""));
  check_env["LISTEN_ADDR"] = "127.0.0.1:" + std::to_string(test::free_port());
  auto [down_code, down_out] = run_binary({"healthcheck"}, check_env, 20s);
  INFO(down_out);
  CHECK(down_code == 1);
}
