// Boot sequence against the database (SPEC §4.3): retry with backoff, clear failures, readiness.
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "integration/binary_fixture.hpp"

using namespace llmproxy::itest;
using Catch::Matchers::Contains;

TEST_CASE("DB_DRIVER=postgres without DATABASE_URL exits 2", "[boot]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DB_DRIVER"] = "postgres";
  auto [code, out] = run_binary({"server"}, env, 20s);
  INFO(out);
  CHECK(code == 2);
  CHECK_THAT(out, Contains("DATABASE_URL"));
}

namespace {
/// Whether process `pid` has a library whose file name starts with `name` mapped.
bool maps_library(int pid, const std::string& name) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/" + name) != std::string::npos) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("the PostgreSQL driver is a module: a SQLite server never maps libpq, a PostgreSQL one loads it",
          "[boot]") {
  TempDir dir;
  Proxy sqlite(base_env(dir));
  CHECK(sqlite.get("/ready").status == 200);
  CHECK_FALSE(maps_library(sqlite.process().pid(), "libpq."));
  CHECK_FALSE(maps_library(sqlite.process().pid(), "llm-proxy-postgres.so"));

  auto env = base_env(dir);
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = "postgresql://app@127.0.0.1:" + std::to_string(llmproxy::test::free_port()) + "/app";
  env["DATABASE_STARTUP_TIMEOUT"] = "30s";
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  Proxy postgres(env, /*wait_ready=*/false);
  CHECK(postgres.get("/live").status == 200);  // booting: the driver is loaded before the first attempt
  CHECK(postgres.process().wait_for_line("attempt", 10s));
  CHECK(maps_library(postgres.process().pid(), "llm-proxy-postgres.so"));
  CHECK(maps_library(postgres.process().pid(), "libpq."));
}

TEST_CASE("DB_DRIVER=postgres without the driver module next to the binary: exit 1 naming the module", "[boot]") {
  TempDir dir;
  // The binary alone in a directory: no llm-proxy-postgres.so beside it, nor in ../lib/llm-proxy/.
  const std::filesystem::path lone = dir.path() / "bin" / "llm-proxy";
  std::filesystem::create_directories(lone.parent_path());
  std::filesystem::copy_file(LLMPROXY_BINARY, lone);
  auto env = base_env(dir);
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = "postgresql://app@127.0.0.1:" + std::to_string(llmproxy::test::free_port()) + "/app";
  auto [code, out] = llmproxy::test::run_command({lone.string(), "server"}, env, 20s);
  INFO(out);
  CHECK(code == 1);
  CHECK_THAT(out, Contains("llm-proxy-postgres.so") && Contains("could not be loaded") && Contains("not found"));
  CHECK_THAT(out, !Contains("attempt"));  // not retried: no database was tried

  // The installed layout is found: lib/llm-proxy/ beside bin/.
  const std::filesystem::path module = std::filesystem::path(LLMPROXY_BINARY).parent_path() / "llm-proxy-postgres.so";
  std::filesystem::create_directories(dir.path() / "lib" / "llm-proxy");
  std::filesystem::copy_file(module, dir.path() / "lib" / "llm-proxy" / "llm-proxy-postgres.so");
  env["DATABASE_STARTUP_TIMEOUT"] = "1s";
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  auto [code2, out2] = llmproxy::test::run_command({lone.string(), "server"}, env, 20s);
  INFO(out2);
  CHECK(code2 == 1);
  CHECK_THAT(out2, Contains("DATABASE_STARTUP_TIMEOUT") && !Contains("could not be loaded"));
}

TEST_CASE("an unreachable PostgreSQL: retries, /ready 503 meanwhile, exit 1 without the password", "[boot]") {
  TempDir dir;
  auto env = base_env(dir);
  const int port = llmproxy::test::free_port();
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = "postgresql://app:s3cretpassw0rd@127.0.0.1:" + std::to_string(port) + "/app";
  env["DATABASE_STARTUP_TIMEOUT"] = "3s";
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  const auto start = std::chrono::steady_clock::now();
  Proxy proxy(env, /*wait_ready=*/false);
  CHECK(proxy.get("/live").status == 200);
  CHECK(proxy.get("/ready").status == 503);
  auto code = proxy.process().wait_exit(20s);
  const auto took = std::chrono::steady_clock::now() - start;
  const std::string out = proxy.process().output();
  INFO(out);
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK(took >= 2500ms);
  CHECK_THAT(out, !Contains("s3cretpassw0rd"));
  CHECK_THAT(out, Contains("DATABASE_STARTUP_TIMEOUT"));
  // Each failed attempt is logged.
  CHECK(proxy.process().wait_for_line("attempt", 1s));
}

TEST_CASE("PostgreSQL coming up during the retry window: boot succeeds", "[boot][postgres]") {
  const int port = llmproxy::test::free_port();
  Cluster cluster(port);
  TempDir dir;
  auto env = base_env(dir);
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = cluster.url();
  env["DATABASE_STARTUP_TIMEOUT"] = "60s";
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  Proxy proxy(env, /*wait_ready=*/false);
  CHECK(proxy.get("/ready").status == 503);
  std::this_thread::sleep_for(1500ms);
  cluster.start();
  auto ready = proxy.process().wait_for_line("\"event\":\"ready\"", 30s);
  INFO(proxy.process().output());
  REQUIRE(ready);
  CHECK(proxy.get("/ready").status == 200);
  auto code = proxy.terminate();
  REQUIRE(code);
  CHECK(*code == 0);
}
