// The reference's Prometheus endpoint and metric names on the real binary (SPEC §7.4, docs/operations.md):
// METRICS_PATH + "/prometheus" serves the same text as METRICS_PATH, and the reference's names are exported
// alongside ours with values derived from the same counters.
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::StartsWith;

namespace {

/// Metric families of an exposition text with their TYPE.
std::set<std::string> typed_families(const std::string& text) {
  std::set<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line.substr(7));
  }
  return out;
}

}  // namespace

TEST_CASE("ops: /metrics/prometheus serves the /metrics text with the reference's names", "[ops][metrics][reference]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string token = f.project_token();
  REQUIRE(f.chat(token).status == 200);
  REQUIRE(f.chat(token).status == 200);
  REQUIRE(f.chat("not-a-token").status == 401);
  REQUIRE(f.proxy->request("DELETE", "/v1/chat/completions", "", {{"Authorization", "Bearer " + token}}).status ==
          405);

  // The access hook counts a request after its response is written: wait until the last one shows.
  auto ours = f.proxy->get("/metrics");
  for (int i = 0; i < 50 && metric_sample(ours.body, "llm_proxy_requests_total{route=\"proxy\",status=\"405\"}") < 1;
       ++i) {
    std::this_thread::sleep_for(20ms);
    ours = f.proxy->get("/metrics");
  }
  const auto reference = f.proxy->get("/metrics/prometheus");
  REQUIRE(ours.status == 200);
  REQUIRE(reference.status == 200);
  CHECK(reference.header("Content-Type") == ours.header("Content-Type"));
  CHECK_THAT(reference.header("Content-Type"), StartsWith("text/plain; version=0.0.4"));
  // The same exposition (same families and types), and the same values for the proxy's counters.
  CHECK(typed_families(reference.body) == typed_families(ours.body));
  for (const auto& body : {ours.body, reference.body}) {
    INFO(body);
    CHECK(metric_sample(body, "llm_proxy_requests_total{route=\"proxy\",status=\"200\"}") == 2);
    CHECK(metric_sample(body, "llm_proxy_requests_total{route=\"proxy\",status=\"401\"}") == 1);
    CHECK(metric_sample(body, "llm_proxy_requests_total{route=\"proxy\",status=\"405\"}") == 1);
    // The reference's names: errors = proxied requests answered >= 400; the two accepted POSTs without the
    // client's cache opt-in bypassed the response cache, nothing was looked up or stored.
    CHECK(metric_sample(body, "llm_proxy_errors_total") == 2);
    CHECK(metric_sample(body, "llm_proxy_cache_bypass_total") == 2);
    for (const char* name : {"llm_proxy_cache_hits_total", "llm_proxy_cache_misses_total",
                             "llm_proxy_cache_stores_total"}) {
      INFO(name);
      CHECK(metric_sample(body, name) == 0);
    }
    CHECK(metric_sample(body, "llm_proxy_uptime_seconds") >= 0);
  }
  for (const char* family : {"llm_proxy_errors_total counter", "llm_proxy_cache_hits_total counter",
                             "llm_proxy_cache_misses_total counter", "llm_proxy_cache_bypass_total counter",
                             "llm_proxy_cache_stores_total counter", "llm_proxy_uptime_seconds gauge",
                             "llm_proxy_requests_total counter"}) {
    INFO(family);
    CHECK(typed_families(reference.body).count(family) == 1);
  }
}

TEST_CASE("ops: the reference path follows METRICS_PATH and ENABLE_METRICS", "[ops][metrics][reference]") {
  {
    ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) { env["METRICS_PATH"] = "/internal/stats"; });
    CHECK(f.proxy->get("/internal/stats").status == 200);
    const auto r = f.proxy->get("/internal/stats/prometheus");
    CHECK(r.status == 200);
    CHECK(metric_sample(r.body, "llm_proxy_errors_total") == 0);
    CHECK(f.proxy->get("/metrics/prometheus").status == 404);
  }
  {
    ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) { env["ENABLE_METRICS"] = "false"; });
    CHECK(f.proxy->get("/metrics").status == 404);
    CHECK(f.proxy->get("/metrics/prometheus").status == 404);
  }
}
