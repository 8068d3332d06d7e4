// The response cache on a real Redis through the real binary (SPEC §13): instances sharing one Redis share its
// entries, and a Redis that dies mid-run costs the cache, never a request, and is picked up again by itself.
// Each case starts a redis-server of its own (it is killed and restarted under the proxy).
#include <catch2/catch.hpp>

#include <thread>

#include "integration/proxy_fixture.hpp"
#include "support/redis_server.hpp"

namespace llmproxy::itest {
namespace {

using namespace std::chrono_literals;

const test::RequestHeaders kRedisOptIn{{"Cache-Control", "public, max-age=60"}};
constexpr const char* kBody = R"({"model":"gpt-4o","messages":[]})";

std::function<void(Environment&)> on_redis(const test::RedisServer& redis) {
  return [url = redis.url()](Environment& env) {
    env["HTTP_CACHE_BACKEND"] = "redis";
    env["REDIS_CACHE_URL"] = url;
    env["REDIS_CACHE_TIMEOUT"] = "300ms";
  };
}

TEST_CASE("cache on redis: a miss on one instance is a hit on another", "[proxy][cache][redis]") {
  test::RedisServer redis;
  ProxyFixture f(TestDatabase::Kind::sqlite, on_redis(redis));
  Proxy other(f.env);  // a second instance: same database, same Redis, same upstream
  const std::string token = f.project_token();

  auto miss = f.chat(token, kBody, kRedisOptIn);
  REQUIRE(miss.status == 200);
  REQUIRE(miss.header("X-PROXY-CACHE") == "stored");
  auto hit = test::http_request(other.port(), "POST", "/v1/chat/completions", kBody,
                                {{"Authorization", "Bearer " + token},
                                 {"Content-Type", "application/json"},
                                 {"Cache-Control", "public, max-age=60"}});
  INFO(hit.body);
  CHECK(hit.status == 200);
  CHECK(hit.header("X-PROXY-CACHE") == "hit");
  CHECK(hit.header("X-PROXY-CACHE-KEY") == miss.header("X-PROXY-CACHE-KEY"));
  CHECK(hit.body == miss.body);
  CHECK(f.mock.requests().size() == 1);

  // A purge through either instance empties the shared store.
  auto purged = other.manage("POST", "/manage/cache/purge", R"({"method":"POST","url":"/v1/chat/completions"})");
  INFO(purged.body);
  CHECK(purged.status == 200);
  CHECK(nlohmann::json::parse(purged.body) == nlohmann::json{{"deleted", 1}});
  CHECK(f.chat(token, kBody, kRedisOptIn).header("X-PROXY-CACHE") == "stored");
  CHECK(f.mock.requests().size() == 2);

  auto health = nlohmann::json::parse(other.get("/health").body);
  CHECK(health["cache"] == nlohmann::json{{"backend", "redis"}, {"status", "up"}});
}

TEST_CASE("cache on redis: Redis killed mid-run and restarted", "[proxy][cache][redis]") {
  test::RedisServer redis;
  ProxyFixture f(TestDatabase::Kind::sqlite, on_redis(redis));
  const std::string token = f.project_token();
  REQUIRE(f.chat(token, kBody, kRedisOptIn).header("X-PROXY-CACHE") == "stored");
  REQUIRE(f.chat(token, kBody, kRedisOptIn).header("X-PROXY-CACHE") == "hit");

  redis.kill();
  // Every request still succeeds, forwarded without the cache, and says so.
  for (int i = 0; i < 5; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto r = f.chat(token, kBody, kRedisOptIn);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(r.header("Cache-Status") == "llm-proxy; fwd=bypass; detail=unavailable");
    CHECK(r.header("X-PROXY-CACHE") == "bypass");
    // Bounded by REDIS_CACHE_TIMEOUT (300ms) at worst, not a hang.
    CHECK(std::chrono::steady_clock::now() - started < 2s);
  }
  CHECK(f.mock.requests().size() == 6);
  CHECK(f.proxy->metric("llm_proxy_cache_bypass_total") >= 5);
  CHECK(f.proxy->metric("llm_proxy_cache_failures_total") >= 1);
  auto health = f.proxy->get("/health");
  CHECK(health.status == 200);  // the proxy serves: the cache is not a reason to leave the load balancer
  auto h = nlohmann::json::parse(health.body);
  CHECK(h["status"] == "degraded");
  CHECK(h["cache"] == nlohmann::json{{"backend", "redis"}, {"status", "down"}});

  // Back (empty: it kept nothing) without restarting the proxy: stored again, then a hit.
  redis.restart();
  std::string seen;
  for (int i = 0; i < 60 && seen != "stored"; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    auto r = f.chat(token, kBody, kRedisOptIn);
    REQUIRE(r.status == 200);
    seen = r.header("X-PROXY-CACHE");
  }
  CHECK(seen == "stored");
  CHECK(f.chat(token, kBody, kRedisOptIn).header("X-PROXY-CACHE") == "hit");
  auto recovered = nlohmann::json::parse(f.proxy->get("/health").body);
  CHECK(recovered["status"] == "ok");
  CHECK(recovered["cache"]["status"] == "up");
}

TEST_CASE("cache on redis: a bad REDIS_CACHE_URL is fatal at boot, naming the variable", "[proxy][cache]") {
  TempDir dir;
  auto env = base_env(dir);
  env["HTTP_CACHE_BACKEND"] = "redis";
  env["REDIS_CACHE_URL"] = "redis://user:s3cret-pass@";
  auto [code, output] = test::run_command({LLMPROXY_BINARY, "server"}, env, 20s);
  CHECK(code == 2);
  CHECK_THAT(output, Catch::Matchers::Contains("REDIS_CACHE_URL"));
  CHECK_THAT(output, !Catch::Matchers::Contains("s3cret-pass"));
}

}  // namespace
}  // namespace llmproxy::itest
