// The reference's (Go llm-proxy) metric names rendered from our counters (SPEC §7.4, docs/operations.md).
#include <catch2/catch.hpp>

#include "llmproxy/metrics/metrics.hpp"

using llmproxy::metrics::Registry;
using Catch::Matchers::Contains;

TEST_CASE("llm_proxy_errors_total counts proxied requests answered 400 or more", "[unit][metrics]") {
  Registry r;
  CHECK_THAT(r.render(), Contains("# TYPE llm_proxy_errors_total counter\nllm_proxy_errors_total 0\n"));
  r.count_request("proxy", 200);
  r.count_request("proxy", 399);
  r.count_request("proxy", 400);
  r.count_request("proxy", 401);
  r.count_request("proxy", 401);
  r.count_request("proxy", 503);
  r.count_request("manage", 401);  // not a proxied request
  r.count_request("ops", 503);
  const std::string text = r.render();
  CHECK_THAT(text, Contains("\nllm_proxy_errors_total 4\n"));
  // Ours are unchanged beside it.
  CHECK_THAT(text, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"401\"} 2\n"));
  for (const char* name : {"llm_proxy_cache_hits_total", "llm_proxy_cache_misses_total", "llm_proxy_cache_bypass_total",
                           "llm_proxy_cache_stores_total"}) {
    INFO(name);
    CHECK_THAT(text, Contains(std::string("# TYPE ") + name + " counter\n" + name + " 0\n"));
  }
  // The response cache's counters under the reference's names are the registry's.
  r.cache_hits = 3;
  r.cache_misses = 4;
  r.cache_bypass = 5;
  r.cache_stores = 6;
  const std::string counted = r.render();
  CHECK_THAT(counted, Contains("\nllm_proxy_cache_hits_total 3\n"));
  CHECK_THAT(counted, Contains("\nllm_proxy_cache_misses_total 4\n"));
  CHECK_THAT(counted, Contains("\nllm_proxy_cache_bypass_total 5\n"));
  CHECK_THAT(counted, Contains("\nllm_proxy_cache_stores_total 6\n"));
}
