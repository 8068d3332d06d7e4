// Health probes (SPEC §8, issue 9) through the real binary: /health and /ready answer from a database state at
// most a second old, so a probe flood costs about one database round trip per second; /ready follows an outage
// within ~2 s both ways; /health shows a fixed error category, never the connection target or user.
#include <atomic>
#include <sstream>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

void probe_flood(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  REQUIRE(f.proxy->get("/health").status == 200);
  const double before = f.proxy->metric("llm_proxy_health_checks_total");
  REQUIRE(before >= 1);

  // At least 500 probes, spread over at least 2.5 s so that the cached state has to be refreshed a few times.
  // Two clients at once, as an orchestrator's liveness and readiness probes would be.
  const auto started = std::chrono::steady_clock::now();
  const auto busy = [started](int done) { return done < 250 || std::chrono::steady_clock::now() - started < 2500ms; };
  std::atomic<int> ready_ok{0}, ready_sent{0};  // Catch2 assertions stay on the test thread
  const int proxy_port = f.proxy->port();
  std::thread other([&, proxy_port] {
    for (int i = 0; busy(i); ++i, ++ready_sent) {
      ready_ok += test::http_request(proxy_port, "GET", "/ready").status == 200;
    }
  });
  int health_ok = 0;
  int health_sent = 0;
  for (; busy(health_sent); ++health_sent) health_ok += f.proxy->get("/health").status == 200;
  other.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(health_ok == health_sent);
  CHECK(ready_ok == ready_sent);

  const double checks = f.proxy->metric("llm_proxy_health_checks_total") - before;
  INFO(health_sent + ready_sent << " probes in " << seconds << " s made " << checks << " database checks");
  CHECK(health_sent + ready_sent >= 500);
  CHECK(checks >= 1);  // the state is refreshed, not frozen
  CHECK(checks <= seconds + 2);
}
BOTH_DRIVERS("ops: 500+ rapid /health and /ready probes make about one database check per second", "[ops]",
             probe_flood)

}  // namespace

TEST_CASE("ops: /ready follows a PostgreSQL outage within 2 s both ways, /health shows no connection details",
          "[ops][outage][postgres]") {
  const int port = test::free_port();
  Cluster cluster(port);
  cluster.start();
  // A user and a database whose names would show in a driver message.
  for (const char* sql : {"CREATE ROLE probe_user_x7 LOGIN", "CREATE DATABASE probe_db_x7 OWNER probe_user_x7"}) {
    auto [code, out] = test::run_command({"psql", cluster.url(), "-v", "ON_ERROR_STOP=1", "-qAtc", sql});
    INFO(out);
    REQUIRE(code == 0);
  }
  TempDir dir;
  auto env = base_env(dir);
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = "postgresql://probe_user_x7@127.0.0.1:" + std::to_string(port) + "/probe_db_x7";
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  env["DATABASE_STATEMENT_TIMEOUT"] = "2s";
  Proxy proxy(env);
  REQUIRE(proxy.get("/ready").status == 200);

  cluster.stop();
  const auto stopped = std::chrono::steady_clock::now();
  int status = 200;
  while (status == 200 && std::chrono::steady_clock::now() - stopped < 10s) {
    status = proxy.get("/ready").status;
    if (status == 200) std::this_thread::sleep_for(50ms);
  }
  const double down_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  INFO("/ready turned " << status << " after " << down_after << " s");
  CHECK(status == 503);
  CHECK(down_after < 2.5);

  auto health = proxy.get("/health");
  INFO(health.body);
  CHECK(health.status == 503);
  auto h = nlohmann::json::parse(health.body);
  CHECK(h["database"]["status"] == "down");
  CHECK(h["database"]["error"] == "unreachable");
  for (const std::string& secret : {std::string("probe_user_x7"), std::string("probe_db_x7"), std::string("127.0.0.1"),
                                   std::to_string(port), std::string("refused")}) {
    CHECK_THAT(health.body, !Contains(secret));
  }

  cluster.start();
  const auto restarted = std::chrono::steady_clock::now();
  status = 503;
  while (status != 200 && std::chrono::steady_clock::now() - restarted < 15s) {
    status = proxy.get("/ready").status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  const double up_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - restarted).count();
  INFO("/ready turned " << status << " after " << up_after << " s");
  CHECK(status == 200);
  CHECK(up_after < 2.5);
  CHECK(proxy.get("/health").status == 200);

  // The detail went to the log, without a password (there is none here) but with the category.
  CHECK_THAT(proxy.process().output(), Contains("health_check_failed"));
  CHECK(proxy.terminate() == 0);
}
