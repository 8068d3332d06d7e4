// Floods through the real binary (SPEC §5.5): a revoked or unknown token repeated many times, from many
// connections at once, costs one database lookup, not one per request; a reactivation through this instance's
// management API works at once.
#include <atomic>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;

namespace {

/// Sends `total` chat requests with `token` over `connections` parallel clients; returns how many got
/// 401 with `code`.
int flood(ProxyFixture& f, const std::string& token, int total, int connections, const std::string& code) {
  std::atomic<int> matching{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c) {
    clients.emplace_back([&, c] {
      for (int i = c; i < total; i += connections) {
        const auto r = f.chat(token);
        if (r.status == 401 && api_error_code(r) == code) ++matching;
      }
    });
  }
  for (auto& t : clients) t.join();
  return matching.load();
}

void revoked_and_unknown_floods(TestDatabase::Kind kind) {
  // No positive token cache (cross-instance revocations at once): only the denials are remembered.
  ProxyFixture f(kind, [](Environment& env) {
    env["TOKEN_CACHE_TTL"] = "0s";
    env["NEGATIVE_CACHE_TTL"] = "1h";
  });
  const std::string project = f.create_project("floods");
  const auto token = f.create_token(project);
  const std::string secret = token.at("token").get<std::string>();
  const std::string id = token.at("id").get<std::string>();
  REQUIRE(f.chat(secret).status == 200);
  REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + id).status == 204);

  const double before = f.proxy->metric("llm_proxy_token_cache_misses_total");
  REQUIRE(before >= 1);
  CHECK(flood(f, secret, 200, 8, "token_inactive") == 200);
  CHECK(f.proxy->metric("llm_proxy_token_cache_misses_total") == before + 1);

  const std::string unknown = "sk-AAAAAAAAAAAAAAAAAAAAAA";
  CHECK(flood(f, unknown, 200, 8, "token_not_found") == 200);
  CHECK(f.proxy->metric("llm_proxy_token_cache_misses_total") == before + 2);
  CHECK(f.mock.requests().size() == 1);  // nothing denied reached the upstream
  CHECK(f.proxy->metric("llm_proxy_token_lookups_shared_total") >= 0);  // registered
  CHECK(f.proxy->metric("llm_proxy_db_queue_rejected_total") == 0);    // registered, nothing refused
  CHECK(f.proxy->metric("llm_proxy_db_queue_pending") >= 0);

  // Reactivated through this instance: works at once, whatever was remembered.
  auto r = f.proxy->manage("PATCH", "/manage/tokens/" + id, R"({"is_active":true})");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(f.chat(secret).status == 200);
}

}  // namespace

BOTH_DRIVERS("a revoked or unknown token flooded from 8 connections costs one database lookup",
             "[integration][floods]", revoked_and_unknown_floods)
