// Boot sequence against the database (SPEC §4.3): retry with backoff, clear failures, readiness.
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
