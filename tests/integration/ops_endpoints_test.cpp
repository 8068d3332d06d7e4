// The operational endpoints of a running proxy (SPEC §8): /health, /ready and /metrics after a proxied request,
// on SQLite and on PostgreSQL. Boot-time readiness is in app_boot_test.cpp, the database outage in
// proxy_database_outage_test.cpp.
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

void ops_endpoints(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto token = f.project_token();
  REQUIRE(f.chat(token).status == 200);
  auto health = f.proxy->get("/health");
  REQUIRE(health.status == 200);
  auto h = nlohmann::json::parse(health.body);
  CHECK(h["status"] == "ok");
  CHECK(h["database"]["status"] == "up");
  CHECK(h["database"]["driver"] == (kind == TestDatabase::Kind::sqlite ? "sqlite" : "postgres"));
  CHECK(h["database"]["pool"].contains("in_use"));
  CHECK(f.proxy->get("/ready").status == 200);
  // Requests are counted after their response is written, so the client can be a moment ahead of the counter.
  auto metrics = f.proxy->get("/metrics");
  for (int i = 0; i < 50 && metrics.body.find("route=\"proxy\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    metrics = f.proxy->get("/metrics");
  }
  REQUIRE(metrics.status == 200);
  CHECK_THAT(metrics.header("Content-Type"), StartsWith("text/plain; version=0.0.4"));
  CHECK_THAT(metrics.body, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"200\"} 1"));
  CHECK_THAT(metrics.body, Contains("llm_proxy_upstream_duration_seconds_count 1"));
  CHECK_THAT(metrics.body, Contains("llm_proxy_db_pool_open"));
  CHECK_THAT(metrics.body, Contains("process_resident_memory_bytes"));
  CHECK_THAT(metrics.body, !Contains(token));
}
BOTH_DRIVERS("ops: /health, /ready and /metrics reflect the running proxy", "[ops]", ops_endpoints)

}  // namespace
