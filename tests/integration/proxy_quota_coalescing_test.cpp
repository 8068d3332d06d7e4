// Coalesced quota grants through the real binary (SPEC §6.3): many concurrent requests on one quota token share
// grant statements, and the quota stays exact on each driver and across instances sharing one PostgreSQL.
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy::itest;

namespace {

struct Tally {
  std::atomic<int> ok{0};
  std::atomic<int> limited{0};  // 429 rate_limit_exceeded
  std::atomic<int> other{0};
};

/// `threads` clients, each starting together and sending `per_thread` requests one after another, spread over
/// `proxies` round-robin by thread.
void hammer(const std::vector<Proxy*>& proxies, const std::string& token, int threads, int per_thread, Tally& tally) {
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      Proxy& proxy = *proxies[static_cast<std::size_t>(t) % proxies.size()];
      ++started;
      while (started.load() < threads) std::this_thread::yield();  // all at once: the batches fill up
      for (int i = 0; i < per_thread; ++i) {
        const auto r = proxy.request("POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":[]})",
                                     {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
        if (r.status == 200) {
          ++tally.ok;
        } else if (r.status == 429 && api_error_code(r) == "rate_limit_exceeded") {
          ++tally.limited;
        } else {
          ++tally.other;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
}

}  // namespace

static void many_waiters_exact(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["IO_THREADS"] = "2"; });
  constexpr int kQuota = 50;
  constexpr int kThreads = 64;
  constexpr int kPerThread = 2;
  const auto created = f.create_token(f.create_project("coalesce-" + random_suffix()), kQuota);
  const std::string token = created["token"];

  Tally tally;
  hammer({f.proxy.get()}, token, kThreads, kPerThread, tally);

  CHECK(tally.ok == kQuota);
  CHECK(tally.limited == kThreads * kPerThread - kQuota);
  CHECK(tally.other == 0);
  CHECK(f.db.query("SELECT request_count FROM tokens WHERE id = '" + created["id"].get<std::string>() + "'") ==
        std::to_string(kQuota));
  CHECK(f.mock.requests().size() == static_cast<std::size_t>(kQuota));

  // Requests went through grant statements, concurrent ones sharing them, until one said the quota was used
  // up: from then on the token is cached as used up and refused from memory.
  const double statements = f.proxy->metric("llm_proxy_quota_grant_statements_total");
  const double requests = f.proxy->metric("llm_proxy_quota_grant_requests_total");
  INFO("statements " << statements << ", requests " << requests);
  CHECK(requests > kQuota);
  CHECK(requests <= kThreads * kPerThread);
  CHECK(f.proxy->metric("llm_proxy_quota_granted_total") == kQuota);
  CHECK(statements >= 1);
  CHECK(statements < requests);
  CHECK(api_error_code(f.chat(token)) == "rate_limit_exceeded");
  CHECK(f.proxy->metric("llm_proxy_quota_grant_requests_total") == requests);
}
BOTH_DRIVERS("quota: 128 concurrent requests on a quota of 50 give exactly 50 successes in fewer grant statements",
             "[proxy][quota]", many_waiters_exact)

TEST_CASE("quota: three instances on one PostgreSQL racing on one quota token give exactly N successes in total",
          "[proxy][quota][postgres]") {
  ProxyFixture f(TestDatabase::Kind::postgres, [](Environment& env) { env["IO_THREADS"] = "2"; });
  Proxy second(f.env);
  Proxy third(f.env);
  constexpr int kQuota = 120;
  constexpr int kThreads = 48;
  constexpr int kPerThread = 5;
  const auto created = f.create_token(f.create_project("instances-" + random_suffix()), kQuota);
  const std::string token = created["token"];

  Tally tally;
  hammer({f.proxy.get(), &second, &third}, token, kThreads, kPerThread, tally);

  CHECK(tally.ok == kQuota);
  CHECK(tally.limited == kThreads * kPerThread - kQuota);
  CHECK(tally.other == 0);
  CHECK(f.db.query("SELECT request_count FROM tokens WHERE id = '" + created["id"].get<std::string>() + "'") ==
        std::to_string(kQuota));
  CHECK(f.mock.requests().size() == static_cast<std::size_t>(kQuota));
  double granted = 0;
  for (Proxy* p : {f.proxy.get(), &second, &third}) granted += p->metric("llm_proxy_quota_granted_total");
  CHECK(granted == kQuota);
}
