// Prometheus text rendering (SPEC §8).
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

TEST_CASE("request and LLM-token counts stay exact with per-thread memos, across registries and threads",
          "[unit][metrics]") {
  // Each thread remembers the counter it used last: alternating registries, routes, statuses and models on one
  // thread must still land each count in its own series, and threads racing must lose none.
  auto a = std::make_unique<Registry>();
  auto b = std::make_unique<Registry>();
  for (int i = 0; i < 3; ++i) {
    a->count_request("proxy", 200);
    b->count_request("proxy", 200);
    a->count_request("proxy", 404);
    a->count_llm_tokens("m1", 1, 2);
    b->count_llm_tokens("m1", 10, 20);
    a->count_llm_tokens("m2", 100, 200);
  }
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        a->count_request(t % 2 == 0 ? "proxy" : "manage", 200);
        a->count_llm_tokens("m1", 1, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string ta = a->render();
  CHECK_THAT(ta, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"200\"} " +
                          std::to_string(3 + kThreads / 2 * kEach) + "\n"));
  CHECK_THAT(ta, Contains("llm_proxy_requests_total{route=\"manage\",status=\"200\"} " +
                          std::to_string(kThreads / 2 * kEach) + "\n"));
  CHECK_THAT(ta, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"404\"} 3\n"));
  CHECK_THAT(ta, Contains("llm_proxy_llm_tokens_total{kind=\"prompt\",model=\"m1\"} " +
                          std::to_string(3 + kThreads * kEach) + "\n"));
  CHECK_THAT(ta, Contains("llm_proxy_llm_tokens_total{kind=\"completion\",model=\"m2\"} 600\n"));
  const std::string tb = b->render();
  CHECK_THAT(tb, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"200\"} 3\n"));
  CHECK_THAT(tb, Contains("llm_proxy_llm_tokens_total{kind=\"completion\",model=\"m1\"} 60\n"));

  // A registry made where a destroyed one was counts from zero (the memo names registries, not addresses).
  a.reset();
  Registry c;
  c.count_request("proxy", 200);
  c.count_llm_tokens("m1", 7, 8);
  const std::string tc = c.render();
  CHECK_THAT(tc, Contains("llm_proxy_requests_total{route=\"proxy\",status=\"200\"} 1\n"));
  CHECK_THAT(tc, Contains("llm_proxy_llm_tokens_total{kind=\"prompt\",model=\"m1\"} 7\n"));

  // Past kMaxModelLabels models, new names count as "other", remembered or not.
  Registry d;
  for (std::size_t i = 0; i < Registry::kMaxModelLabels; ++i) d.count_llm_tokens("model-" + std::to_string(i), 1, 1);
  d.count_llm_tokens("late", 5, 5);
  d.count_llm_tokens("late", 5, 5);
  d.count_llm_tokens("model-0", 1, 1);
  d.count_llm_tokens("later", 1, 1);
  const std::string td = d.render();
  CHECK_THAT(td, Contains("llm_proxy_llm_tokens_total{kind=\"prompt\",model=\"other\"} 11\n"));
  CHECK_THAT(td, Contains("llm_proxy_llm_tokens_total{kind=\"prompt\",model=\"model-0\"} 2\n"));
  CHECK(td.find("model=\"late\"") == std::string::npos);
}
