// Database outage and recovery (SPEC §12): the server stays up, cached unlimited tokens keep working, requests
// that need the database get 503, usage deltas are kept and written after recovery, no restart needed.
#include <sstream>
#include <string>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;

namespace {

/// The proxy's environment for an outage test: PostgreSQL on `cluster`, the mock as the upstream, short
/// database timeouts so an outage is noticed quickly, a fast usage flush.
Environment outage_env(const Cluster& cluster, const test::MockUpstream& mock, const TempDir& dir) {
  auto env = base_env(dir);
  {
    std::ofstream out(dir.file("api_providers.yaml"));
    out << providers_yaml(mock.base_url());
  }
  env["API_CONFIG_PATH"] = dir.file("api_providers.yaml");
  env["DB_DRIVER"] = "postgres";
  env["DATABASE_URL"] = cluster.url();
  env["DATABASE_CONNECT_TIMEOUT"] = "1s";
  env["DATABASE_STATEMENT_TIMEOUT"] = "2s";
  env["USAGE_FLUSH_INTERVAL"] = "200ms";
  return env;
}

/// A management call that must succeed; its JSON answer.
nlohmann::json manage_json(Proxy& proxy, const std::string& method, const std::string& path, const std::string& body) {
  auto r = proxy.manage(method, path, body);
  INFO(r.body);
  REQUIRE(r.status / 100 == 2);
  return nlohmann::json::parse(r.body);
}

test::HttpResponse chat(Proxy& proxy, const std::string& token) {
  return proxy.request("POST", "/v1/chat/completions", R"({"model":"gpt-4o"})",
                       {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
}

/// Waits (up to 10 s) for /ready to answer 200 again after the database came back.
void require_ready(Proxy& proxy) {
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    std::this_thread::sleep_for(100ms);
    ready = proxy.get("/ready").status == 200;
  }
  REQUIRE(ready);
}

/// What `sql` reads in the cluster, polled (up to 5 s) until it reads `expected`.
std::string polled(const Cluster& cluster, const std::string& sql, const std::string& expected) {
  std::string got;
  for (int i = 0; i < 50 && got != expected; ++i) {
    std::this_thread::sleep_for(100ms);
    auto [code, out] = test::run_command({"psql", cluster.url(), "-qAtc", sql});
    if (code == 0) got = out.substr(0, out.find('\n'));
  }
  return got;
}

/// The token's request_count as the database has it, polled until it reads `expected`.
std::string request_count(const Cluster& cluster, const std::string& token_id, const std::string& expected) {
  return polled(cluster, "SELECT request_count FROM tokens WHERE id = '" + token_id + "'", expected);
}

}  // namespace

TEST_CASE("PostgreSQL outage: 503 where the database is needed, cached tokens work, recovery is automatic",
          "[outage][postgres]") {
  const int port = test::free_port();
  Cluster cluster(port);
  cluster.start();
  test::MockUpstream mock;
  TempDir dir;
  auto env = outage_env(cluster, mock, dir);
  env["TOKEN_CACHE_TTL"] = "1h";
  Proxy proxy(env);
  auto project = manage_json(proxy, "POST", "/manage/projects", R"({"name":"outage","api_key":"sk-key"})")["id"];
  auto cached = manage_json(proxy, "POST", "/manage/tokens",
                            nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  auto uncached = manage_json(proxy, "POST", "/manage/tokens",
                              nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  REQUIRE(chat(proxy, cached["token"]).status == 200);

  cluster.stop();
  for (int i = 0; i < 3; ++i) CHECK(chat(proxy, cached["token"]).status == 200);
  auto r = chat(proxy, uncached["token"]);
  CHECK(r.status == 503);
  CHECK(api_error_code(r) == "service_unavailable");
  CHECK(proxy.get("/ready").status == 503);
  auto health = proxy.get("/health");
  CHECK(health.status == 503);
  CHECK(nlohmann::json::parse(health.body)["database"]["status"] == "down");
  CHECK(proxy.manage("GET", "/manage/projects").status == 503);
  std::this_thread::sleep_for(600ms);  // a few failed flushes: the deltas must survive them

  cluster.start();
  require_ready(proxy);
  CHECK(chat(proxy, uncached["token"]).status == 200);
  // 1 before + 3 during the outage for the cached token, all persisted after recovery.
  const std::string cached_id = cached["id"];
  CHECK(request_count(cluster, cached_id, "4") == "4");
  // Their LLM tokens (5 + 3 an answer) and their usage_daily rows too.
  CHECK(polled(cluster, "SELECT prompt_tokens || '/' || completion_tokens FROM tokens WHERE id = '" + cached_id + "'",
               "20/12") == "20/12");
  CHECK(polled(cluster,
               "SELECT sum(requests) || '/' || sum(prompt_tokens) FROM usage_daily WHERE token_id = '" + cached_id +
                   "'",
               "4/20") == "4/20");
  const auto exit_code = proxy.terminate();
  INFO(proxy.process().output());
  CHECK(exit_code == 0);
}

TEST_CASE("PostgreSQL outage longer than the cache TTLs: cached unlimited tokens are served stale, quota tokens 503",
          "[outage][stale][postgres]") {
  const int port = test::free_port();
  Cluster cluster(port);
  cluster.start();
  test::MockUpstream mock;
  TempDir dir;
  auto env = outage_env(cluster, mock, dir);
  env["TOKEN_CACHE_TTL"] = "1s";
  env["PROJECT_CACHE_TTL"] = "1s";
  Proxy proxy(env);
  auto project = manage_json(proxy, "POST", "/manage/projects", R"({"name":"stale","api_key":"sk-key"})")["id"];
  auto unlimited = manage_json(proxy, "POST", "/manage/tokens",
                               nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  auto quota = manage_json(
      proxy, "POST", "/manage/tokens",
      nlohmann::json{{"project_id", project}, {"duration_minutes", 60}, {"max_requests", 100}}.dump());
  REQUIRE(chat(proxy, unlimited["token"]).status == 200);
  REQUIRE(chat(proxy, quota["token"]).status == 200);
  CHECK(proxy.metric("llm_proxy_stale_served_total") == 0);

  cluster.stop();
  // Let every cache entry pass its 1 s TTL: from here on only stale-if-error can answer without the database.
  std::this_thread::sleep_for(3s);
  auto served = chat(proxy, unlimited["token"]);
  INFO(served.body);
  CHECK(served.status == 200);
  CHECK(mock.requests().size() == 3);  // it reached the upstream
  CHECK(proxy.metric("llm_proxy_stale_served_total") == 1);
  auto refused = chat(proxy, quota["token"]);
  CHECK(refused.status == 503);
  CHECK(api_error_code(refused) == "service_unavailable");
  CHECK(proxy.metric("llm_proxy_stale_served_total") == 1);

  cluster.start();
  require_ready(proxy);
  // 1 before + 1 stale during the outage, written once the database is back.
  CHECK(request_count(cluster, unlimited["id"].get<std::string>(), "2") == "2");
  const auto exit_code = proxy.terminate();
  const std::string log = proxy.process().output();
  // Logged once for the outage, not once per request.
  std::size_t warnings = 0;
  for (std::size_t at = log.find("serving_stale_cache\""); at != std::string::npos;
       at = log.find("serving_stale_cache\"", at + 1)) {
    ++warnings;
  }
  CHECK(warnings == 1);
  INFO(log);
  CHECK(exit_code == 0);
}
