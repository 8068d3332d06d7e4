// The response cache through the real binary with the memory backend (SPEC §13): what is stored and served, the
// headers that say so, per-project keys, tokens checked on hits, quota untouched by hits, Vary, revalidation,
// streams, limits, purge, metrics and /health. The Redis backend's cases are in proxy_response_cache_redis_test.
#include <catch2/catch.hpp>

#include <thread>

#include "integration/proxy_fixture.hpp"

namespace llmproxy::itest {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

/// The client's opt-in for a POST: shared caching for a minute.
const test::RequestHeaders kOptIn{{"Cache-Control", "public, max-age=60"}};

test::RequestHeaders with(test::RequestHeaders headers, const test::RequestHeaders& more) {
  headers.insert(headers.end(), more.begin(), more.end());
  return headers;
}

std::size_t upstream_requests(const ProxyFixture& f) { return f.mock.requests().size(); }

/// Polls `sql` until it returns `want` (the usage flush is periodic), for at most 5 s.
std::string eventually(const ProxyFixture& f, const std::string& sql, const std::string& want) {
  std::string got;
  for (int i = 0; i < 50 && got != want; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    got = f.db.query(sql);
  }
  return got;
}

void opt_in_post_is_stored_then_served(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto project = f.create_project("cache-" + random_suffix());
  // A quota of one request: the hit must not need a second unit.
  auto created = f.create_token(project, 1);
  const std::string token = created["token"];
  const std::string id = created["id"];

  auto miss = f.chat(token, R"({"model":"gpt-4o","messages":[]})", kOptIn);
  INFO(miss.body);
  REQUIRE(miss.status == 200);
  CHECK(miss.header("Cache-Status") == "llm-proxy; fwd=miss; stored; detail=forced");
  CHECK(miss.header("X-PROXY-CACHE") == "stored");
  const std::string key = miss.header("X-PROXY-CACHE-KEY");
  CHECK(key.size() == 98);
  CHECK_FALSE(miss.has_header("Age"));

  auto hit = f.chat(token, R"({"model":"gpt-4o","messages":[]})", kOptIn);
  INFO(hit.body);
  REQUIRE(hit.status == 200);
  CHECK(hit.header("Cache-Status") == "llm-proxy; hit");
  CHECK(hit.header("X-PROXY-CACHE") == "hit");
  CHECK(hit.header("X-PROXY-CACHE-KEY") == key);
  CHECK(hit.header("Age") == "0");
  CHECK(hit.body == miss.body);
  CHECK(hit.header("Content-Type") == miss.header("Content-Type"));
  CHECK(hit.header("X-Upstream-Header") == "yes");
  CHECK_FALSE(hit.header("X-Request-ID").empty());
  CHECK(hit.header("X-Request-ID") != miss.header("X-Request-ID"));
  CHECK(upstream_requests(f) == 1);

  // The quota unit went to the miss; another body is a miss that needs one, and there is none left.
  auto other = f.chat(token, R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})", kOptIn);
  CHECK(other.status == 429);
  CHECK(upstream_requests(f) == 1);

  // The hit is counted on the token (batched like usage), the request count only has the miss.
  const std::string where = " FROM tokens WHERE id = '" + id + "'";
  CHECK(eventually(f, "SELECT cache_hit_count" + where, "1") == "1");
  CHECK(f.db.query("SELECT request_count" + where) == "1");
  auto shown = f.proxy->manage("GET", "/manage/tokens/" + id);
  CHECK(nlohmann::json::parse(shown.body).at("cache_hit_count") == 1);

  CHECK(f.proxy->metric("llm_proxy_cache_hits_total") == 1);
  CHECK(f.proxy->metric("llm_proxy_cache_stores_total") == 1);
  CHECK(f.proxy->metric("llm_proxy_cache_misses_total") == 2);  // the first request, and the 429's lookup
}
BOTH_DRIVERS("cache: an opted-in POST is stored, then served without the upstream or the quota",
             "[proxy][cache]", opt_in_post_is_stored_then_served)

TEST_CASE("cache: two projects never share an entry", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string a = f.project_token();
  const std::string b = f.project_token();
  auto first = f.chat(a, R"({"model":"gpt-4o"})", kOptIn);
  REQUIRE(first.header("X-PROXY-CACHE") == "stored");
  auto other_project = f.chat(b, R"({"model":"gpt-4o"})", kOptIn);
  CHECK(other_project.header("X-PROXY-CACHE") == "stored");
  CHECK(other_project.header("X-PROXY-CACHE-KEY") != first.header("X-PROXY-CACHE-KEY"));
  CHECK(upstream_requests(f) == 2);
  // Each project's own entry answers it.
  CHECK(f.chat(a, R"({"model":"gpt-4o"})", kOptIn).header("X-PROXY-CACHE") == "hit");
  CHECK(f.chat(b, R"({"model":"gpt-4o"})", kOptIn).header("X-PROXY-CACHE") == "hit");
  CHECK(upstream_requests(f) == 2);
}

TEST_CASE("cache: a revoked token gets 401, not the stored answer", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  auto project = f.create_project("revoked-" + random_suffix());
  auto keep = f.create_token(project);
  auto revoke = f.create_token(project);
  REQUIRE(f.chat(revoke["token"], R"({"model":"gpt-4o"})", kOptIn).header("X-PROXY-CACHE") == "stored");
  REQUIRE(f.chat(keep["token"], R"({"model":"gpt-4o"})", kOptIn).header("X-PROXY-CACHE") == "hit");
  REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + revoke["id"].get<std::string>()).status == 204);
  auto denied = f.chat(revoke["token"], R"({"model":"gpt-4o"})", kOptIn);
  CHECK(denied.status == 401);
  CHECK(api_error_code(denied) == "token_inactive");
  CHECK_FALSE(denied.has_header("X-PROXY-CACHE"));
  auto unknown = f.chat("sk-" + std::string(43, 'A'), R"({"model":"gpt-4o"})", kOptIn);
  CHECK(unknown.status == 401);
  CHECK(upstream_requests(f) == 1);
}

TEST_CASE("cache: what is not stored", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) { env["HTTP_CACHE_MAX_OBJECT_BYTES"] = "2KB"; });
  const std::string token = f.project_token();
  const std::string body = R"({"model":"gpt-4o"})";

  SECTION("a POST without the client's opt-in") {
    auto r = f.chat(token, body);
    CHECK(r.header("Cache-Status") == "llm-proxy; fwd=bypass");
    CHECK_FALSE(r.has_header("X-PROXY-CACHE"));
    CHECK(f.chat(token, body).header("Cache-Status") == "llm-proxy; fwd=bypass");
    CHECK(upstream_requests(f) == 2);
    CHECK(f.proxy->metric("llm_proxy_cache_bypass_total") == 2);
  }
  SECTION("an answer saying no-store or private") {
    for (const char* directive : {"no-store", "private, max-age=60"}) {
      INFO(directive);
      f.mock.clear();
      const test::RequestHeaders h = with(kOptIn, {{"X-Mock-Header", std::string("Cache-Control: ") + directive}});
      auto first = f.chat(token, body, h);
      CHECK(first.status == 200);
      CHECK(first.header("Cache-Status") == "llm-proxy; fwd=miss");
      CHECK_FALSE(first.has_header("X-PROXY-CACHE"));
      CHECK(f.chat(token, body, h).header("Cache-Status") == "llm-proxy; fwd=miss");
      CHECK(upstream_requests(f) == 2);
    }
  }
  SECTION("statuses outside 200, 203, 301, 308, 404, 410") {
    const test::RequestHeaders h = with(kOptIn, {{"X-Mock-Status", "500"}});
    CHECK(f.chat(token, body, h).status == 500);
    CHECK(f.chat(token, body, h).status == 500);
    CHECK(upstream_requests(f) == 2);
  }
  SECTION("Vary: *") {
    const test::RequestHeaders h = with(kOptIn, {{"X-Mock-Header", "Vary: *"}});
    CHECK_FALSE(f.chat(token, body, h).has_header("X-PROXY-CACHE"));
    f.chat(token, body, h);
    CHECK(upstream_requests(f) == 2);
  }
  SECTION("an answer over HTTP_CACHE_MAX_OBJECT_BYTES") {
    const test::RequestHeaders h = with(kOptIn, {{"X-Mock-Body-Bytes", "4096"}});
    auto big = f.chat(token, body, h);
    CHECK(big.status == 200);
    CHECK(big.body.size() >= 4096);
    CHECK_FALSE(big.has_header("X-PROXY-CACHE"));
    f.chat(token, body, h);
    CHECK(upstream_requests(f) == 2);
  }
  SECTION("a request body over HTTP_CACHE_MAX_OBJECT_BYTES") {
    const std::string large = R"({"model":"gpt-4o","input":")" + std::string(3000, 'x') + "\"}";
    CHECK(f.chat(token, large, kOptIn).header("Cache-Status") == "llm-proxy; fwd=bypass");
    CHECK(f.chat(token, large, kOptIn).header("Cache-Status") == "llm-proxy; fwd=bypass");
    CHECK(upstream_requests(f) == 2);
  }
  SECTION("a stream unless HTTP_CACHE_STREAM_RESPONSES=true") {
    const std::string stream = R"({"model":"gpt-4o","stream":true})";
    CHECK(f.chat(token, stream, kOptIn).header("Cache-Status") == "llm-proxy; fwd=miss");
    CHECK(f.chat(token, stream, kOptIn).header("Cache-Status") == "llm-proxy; fwd=miss");
    CHECK(upstream_requests(f) == 2);
  }
}

TEST_CASE("cache: the lifetime comes from the answer first, then the client", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string token = f.project_token();
  SECTION("s-maxage of the answer: stored, not forced, for GET without any opt-in") {
    const test::RequestHeaders h{{"Authorization", "Bearer " + token},
                                 {"X-Mock-Header", "Cache-Control: public, s-maxage=30"}};
    auto first = f.proxy->request("GET", "/v1/models", "", h);
    REQUIRE(first.status == 200);
    CHECK(first.header("Cache-Status") == "llm-proxy; fwd=miss; stored");
    auto second = f.proxy->request("GET", "/v1/models", "", h);
    CHECK(second.header("Cache-Status") == "llm-proxy; hit");
    CHECK(second.header("Cache-Control") == "public, s-maxage=30");
    // Another query is another resource; its parameters' order is not.
    auto query = f.proxy->request("GET", "/v1/models?a=1&b=2", "", h);
    CHECK(query.header("X-PROXY-CACHE") == "stored");
    CHECK(f.proxy->request("GET", "/v1/models?b=2&a=1", "", h).header("X-PROXY-CACHE") == "hit");
    CHECK(upstream_requests(f) == 2);
  }
  SECTION("a GET whose answer names no lifetime is not stored (HTTP_CACHE_DEFAULT_TTL=0)") {
    const test::RequestHeaders h{{"Authorization", "Bearer " + token}};
    CHECK(f.proxy->request("GET", "/v1/models", "", h).header("Cache-Status") == "llm-proxy; fwd=miss");
    CHECK(f.proxy->request("GET", "/v1/models", "", h).header("Cache-Status") == "llm-proxy; fwd=miss");
    CHECK(upstream_requests(f) == 2);
  }
}

TEST_CASE("cache: Vary names the request headers an entry is for", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string token = f.project_token();
  const std::string body = R"({"model":"gpt-4o"})";
  const test::RequestHeaders varies = with(kOptIn, {{"X-Mock-Header", "Vary: X-Tenant"}});
  REQUIRE(f.chat(token, body, with(varies, {{"X-Tenant", "a"}})).header("X-PROXY-CACHE") == "stored");
  CHECK(f.chat(token, body, with(varies, {{"X-Tenant", "a"}})).header("X-PROXY-CACHE") == "hit");
  auto other = f.chat(token, body, with(varies, {{"X-Tenant", "b"}}));
  CHECK(other.header("Cache-Status") == "llm-proxy; fwd=vary-miss; stored; detail=forced");
  CHECK(upstream_requests(f) == 2);
  // The default key covers Accept, Accept-Encoding and Accept-Language without any Vary.
  REQUIRE(f.chat(token, body, with(kOptIn, {{"Accept-Language", "de"}})).header("X-PROXY-CACHE") == "stored");
  CHECK(f.chat(token, body, with(kOptIn, {{"Accept-Language", "fr"}})).header("X-PROXY-CACHE") == "stored");
  CHECK(f.chat(token, body, with(kOptIn, {{"Accept-Language", "de"}})).header("X-PROXY-CACHE") == "hit");
}

TEST_CASE("cache: revalidation and conditional requests", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string token = f.project_token();
  const std::string body = R"({"model":"gpt-4o"})";
  const test::RequestHeaders tagged = with(kOptIn, {{"X-Mock-Header", "ETag: \"v1\""}});
  auto stored = f.chat(token, body, tagged);
  REQUIRE(stored.header("X-PROXY-CACHE") == "stored");

  SECTION("the client's If-None-Match matching the stored ETag gets 304 from the cache") {
    auto r = f.chat(token, body, with(tagged, {{"If-None-Match", "\"v1\""}}));
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    CHECK(r.header("ETag") == "\"v1\"");
    CHECK(r.header("X-PROXY-CACHE") == "conditional-hit");
    CHECK(upstream_requests(f) == 1);
    auto other = f.chat(token, body, with(tagged, {{"If-None-Match", "\"v0\""}}));
    CHECK(other.status == 200);
    CHECK(other.header("X-PROXY-CACHE") == "hit");
    CHECK(upstream_requests(f) == 1);
  }
  SECTION("no-cache asks the upstream with the stored validators; its 304 serves the stored answer") {
    // A POST keeps its opt-in; `no-cache` asks for revalidation.
    const test::RequestHeaders revalidate{{"Cache-Control", "public, max-age=60, no-cache"},
                                          {"X-Mock-Header", "ETag: \"v1\""}};
    auto r = f.chat(token, body, revalidate);
    CHECK(r.status == 200);
    CHECK(r.body == stored.body);
    CHECK(r.header("Cache-Status") == "llm-proxy; fwd=request; fwd-status=304");
    CHECK(r.header("X-PROXY-CACHE") == "revalidated");
    const auto seen = f.mock.requests();
    REQUIRE(seen.size() == 2);
    CHECK(test::MockUpstream::header(seen[1], "If-None-Match") == "\"v1\"");
    // Still stored: an ordinary request is a hit.
    CHECK(f.chat(token, body, tagged).header("X-PROXY-CACHE") == "hit");
    CHECK(upstream_requests(f) == 2);
  }
}

TEST_CASE("cache: streams are captured and replayed byte for byte when enabled", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) { env["HTTP_CACHE_STREAM_RESPONSES"] = "true"; });
  const std::string token = f.project_token();
  const std::string body = R"({"model":"gpt-4o","stream":true})";
  const test::RequestHeaders h = with(kOptIn, {{"X-Mock-Chunks", "5"}});
  auto live = f.chat(token, body, h);
  REQUIRE(live.status == 200);
  CHECK(live.header("Cache-Status") == "llm-proxy; fwd=miss");  // the head left before the end was known
  CHECK_THAT(live.body, Contains("data: [DONE]"));
  // Stored once the stream ended cleanly (the proxy stores after the last chunk is out).
  test::HttpResponse replay;
  for (int i = 0; i < 50; ++i) {
    replay = f.chat(token, body, h);
    if (replay.header("X-PROXY-CACHE") == "hit") break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(replay.header("X-PROXY-CACHE") == "hit");
  CHECK_THAT(replay.header("Content-Type"), StartsWith("text/event-stream"));
  CHECK(replay.body == live.body);
  const std::size_t forwarded = upstream_requests(f);
  CHECK(f.chat(token, body, h).header("X-PROXY-CACHE") == "hit");
  CHECK(upstream_requests(f) == forwarded);
}

TEST_CASE("cache: POST /manage/cache/purge", "[proxy][cache][manage]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  auto project = f.create_project("purge-" + random_suffix());
  const std::string token = f.create_token(project)["token"];
  const std::string other = f.project_token();
  const std::string body = R"({"model":"gpt-4o"})";
  const auto store_both = [&] {
    REQUIRE(f.chat(token, body, kOptIn).status == 200);
    REQUIRE(f.chat(other, body, kOptIn).status == 200);
  };
  store_both();
  const auto purge = [&](const nlohmann::json& request) { return f.proxy->manage("POST", "/manage/cache/purge", request.dump()); };

  SECTION("one resource of one project") {
    auto r = purge({{"method", "POST"}, {"url", "/v1/chat/completions"}, {"project_id", project}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"deleted", 1}});
    CHECK(f.chat(token, body, kOptIn).header("X-PROXY-CACHE") == "stored");
    CHECK(f.chat(other, body, kOptIn).header("X-PROXY-CACHE") == "hit");
    nlohmann::json list;
    for (int i = 0; i < 50 && list.empty(); ++i) {  // audit events are written in batches
      if (i > 0) std::this_thread::sleep_for(100ms);
      list = nlohmann::json::parse(f.proxy->manage("GET", "/manage/audit?action=cache.purge").body).at("events");
    }
    REQUIRE(list.size() == 1);
    CHECK(list[0]["outcome"] == "success");
    CHECK(list[0]["project_id"] == project);
  }
  SECTION("one resource of every project, given as a full URL") {
    auto r = purge({{"method", "POST"}, {"url", "https://proxy.example.com/v1/chat/completions"}});
    CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"deleted", 2}});
  }
  SECTION("by key prefix, and everything") {
    const std::string key = f.chat(token, body, kOptIn).header("X-PROXY-CACHE-KEY");
    auto r = purge({{"prefix", key.substr(0, 32)}});
    CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"deleted", 1}});
    CHECK(nlohmann::json::parse(purge({{"prefix", ""}}).body) == nlohmann::json{{"deleted", 1}});
    CHECK(f.chat(other, body, kOptIn).header("X-PROXY-CACHE") == "stored");
  }
  SECTION("bad requests change nothing") {
    for (const auto& bad : {nlohmann::json{{"url", "/v1/chat/completions"}},
                            nlohmann::json{{"method", "POST"}},
                            nlohmann::json{{"method", "PO ST"}, {"url", "/v1/chat/completions"}},
                            nlohmann::json{{"method", "POST"}, {"url", "/v1/../etc"}},
                            nlohmann::json{{"method", "POST"}, {"url", 5}},
                            nlohmann::json{{"prefix", "XYZ"}},
                            nlohmann::json{{"prefix", ""}, {"method", "POST"}}}) {
      INFO(bad.dump());
      auto r = purge(bad);
      CHECK(r.status == 400);
      CHECK(error_code(r) == "invalid_request");
    }
    CHECK(f.proxy->manage("POST", "/manage/cache/purge", "{not json").status == 400);
    CHECK(f.chat(token, body, kOptIn).header("X-PROXY-CACHE") == "hit");
    CHECK(f.chat(other, body, kOptIn).header("X-PROXY-CACHE") == "hit");
  }
}

TEST_CASE("cache: HTTP_CACHE_ENABLED=false turns it off entirely", "[proxy][cache]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) { env["HTTP_CACHE_ENABLED"] = "false"; });
  const std::string token = f.project_token();
  auto first = f.chat(token, R"({"model":"gpt-4o"})", kOptIn);
  CHECK(first.status == 200);
  CHECK_FALSE(first.has_header("Cache-Status"));
  CHECK_FALSE(f.chat(token, R"({"model":"gpt-4o"})", kOptIn).has_header("X-PROXY-CACHE"));
  CHECK(upstream_requests(f) == 2);
  auto purge = f.proxy->manage("POST", "/manage/cache/purge", R"({"prefix":""})");
  CHECK(purge.status == 400);
  CHECK(error_code(purge) == "cache_disabled");
  auto health = nlohmann::json::parse(f.proxy->get("/health").body);
  CHECK(health["cache"] == nlohmann::json{{"status", "disabled"}});
}

TEST_CASE("cache: /health and the memory backend's gauges", "[proxy][cache][ops]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  auto health = f.proxy->get("/health");
  REQUIRE(health.status == 200);
  auto j = nlohmann::json::parse(health.body);
  CHECK(j["status"] == "ok");
  CHECK(j["cache"] == nlohmann::json{{"backend", "memory"}, {"status", "up"}});
  const std::string token = f.project_token();
  REQUIRE(f.chat(token, R"({"model":"gpt-4o"})", kOptIn).header("X-PROXY-CACHE") == "stored");
  CHECK(f.proxy->metric("llm_proxy_cache_entries") == 1);
  CHECK(f.proxy->metric("llm_proxy_cache_bytes") > 100);
  CHECK(f.proxy->metric("llm_proxy_cache_evictions_total") == 0);
}

}  // namespace
}  // namespace llmproxy::itest
