// Prometheus text rendering (SPEC §8).
#include <catch2/catch.hpp>

#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "llmproxy/metrics/metrics.hpp"

using llmproxy::metrics::Registry;
using Catch::Matchers::Contains;

TEST_CASE("metrics render as Prometheus text format 0.0.4", "[unit][metrics]") {
  Registry r;
  r.count_request("proxy", 200);
  r.count_request("proxy", 200);
  r.count_request("manage", 401);
  r.request_seconds.observe(0.003);
  r.request_seconds.observe(20);
  r.in_flight = 3;
  r.add_gauge("llm_proxy_test_gauge", "A test gauge.", [] { return 42.5; });
  const std::string text = r.render();

  CHECK_THAT(text, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"200\"} 2\n"));
  CHECK_THAT(text, Contains("llm_proxy_requests_total{route=\"manage\",status=\"401\"} 1\n"));
  CHECK_THAT(text, Contains("llm_proxy_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
  CHECK_THAT(text, Contains("llm_proxy_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
  CHECK_THAT(text, Contains("llm_proxy_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
  CHECK_THAT(text, Contains("llm_proxy_request_duration_seconds_count 2\n"));
  CHECK_THAT(text, Contains("llm_proxy_in_flight_requests 3\n"));
  CHECK_THAT(text, Contains("llm_proxy_test_gauge 42.5\n"));
  CHECK_THAT(text, Contains("# TYPE llm_proxy_request_duration_seconds histogram\n"));

  // Every line is a comment or `name{labels} value`, and every sample's family has a TYPE line.
  static const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::set<std::string> typed;
  std::istringstream lines(text);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, kType)) {
      typed.insert(m[1]);
      continue;
    }
    REQUIRE(std::regex_match(line, m, kSample));
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(family) && family.size() > std::strlen(suffix) &&
          family.compare(family.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
        family.resize(family.size() - std::strlen(suffix));
      }
    }
    CHECK(typed.count(family) == 1);
    ++samples;
  }
  CHECK(samples > 30);
}
