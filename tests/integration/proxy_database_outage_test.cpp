// Database outage and recovery (SPEC §12): the server stays up, cached unlimited tokens keep working, requests
// that need the database get 503, usage deltas are kept and written after recovery, no restart needed.
#include <sstream>
#include <string>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;

TEST_CASE("PostgreSQL outage: 503 where the database is needed, cached tokens work, recovery is automatic",
          "[outage][postgres]") {
  const int port = test::free_port();
  Cluster cluster(port);
  cluster.start();
  test::MockUpstream mock;
  TempDir dir;
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
  env["TOKEN_CACHE_TTL"] = "1h";
  env["USAGE_FLUSH_INTERVAL"] = "200ms";
  Proxy proxy(env);
  auto manage_json = [&](const std::string& method, const std::string& path, const std::string& body) {
    auto r = proxy.manage(method, path, body);
    INFO(r.body);
    REQUIRE(r.status / 100 == 2);
    return nlohmann::json::parse(r.body);
  };
  auto project = manage_json("POST", "/manage/projects", R"({"name":"outage","api_key":"sk-key"})")["id"];
  auto cached = manage_json("POST", "/manage/tokens",
                            nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  auto uncached = manage_json("POST", "/manage/tokens",
                              nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  auto chat = [&](const std::string& token) {
    return proxy.request("POST", "/v1/chat/completions", R"({"model":"gpt-4o"})",
                         {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  };
  REQUIRE(chat(cached["token"]).status == 200);

  cluster.stop();
  for (int i = 0; i < 3; ++i) CHECK(chat(cached["token"]).status == 200);
  auto r = chat(uncached["token"]);
  CHECK(r.status == 503);
  CHECK(error_code(r) == "service_unavailable");
  CHECK(proxy.get("/ready").status == 503);
  auto health = proxy.get("/health");
  CHECK(health.status == 503);
  CHECK(nlohmann::json::parse(health.body)["database"]["status"] == "down");
  CHECK(proxy.manage("GET", "/manage/projects").status == 503);
  std::this_thread::sleep_for(600ms);  // a few failed flushes: the deltas must survive them

  cluster.start();
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    std::this_thread::sleep_for(100ms);
    ready = proxy.get("/ready").status == 200;
  }
  REQUIRE(ready);
  CHECK(chat(uncached["token"]).status == 200);
  // 1 before + 3 during the outage for the cached token, all persisted after recovery.
  std::string count;
  for (int i = 0; i < 50 && count != "4"; ++i) {
    std::this_thread::sleep_for(100ms);
    auto [code, out] = test::run_command({"psql", cluster.url(), "-qAtc",
                                          "SELECT request_count FROM tokens WHERE id = '" +
                                              cached["id"].get<std::string>() + "'"});
    if (code == 0) count = out.substr(0, out.find('\n'));
  }
  CHECK(count == "4");
  const auto exit_code = proxy.terminate();
  INFO(proxy.process().output());
  CHECK(exit_code == 0);
}

namespace {

/// The value of an unlabelled series in /metrics, or -1 if it is missing.
double metric_value(Proxy& proxy, const std::string& name) {
  const auto r = proxy.get("/metrics");
  REQUIRE(r.status == 200);
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("PostgreSQL outage longer than the cache TTLs: cached unlimited tokens are served stale, quota tokens 503",
          "[outage][stale][postgres]") {
  const int port = test::free_port();
  Cluster cluster(port);
  cluster.start();
  test::MockUpstream mock;
  TempDir dir;
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
  env["TOKEN_CACHE_TTL"] = "1s";
  env["PROJECT_CACHE_TTL"] = "1s";
  env["USAGE_FLUSH_INTERVAL"] = "200ms";
  Proxy proxy(env);
  auto manage_json = [&](const std::string& method, const std::string& path, const std::string& body) {
    auto r = proxy.manage(method, path, body);
    INFO(r.body);
    REQUIRE(r.status / 100 == 2);
    return nlohmann::json::parse(r.body);
  };
  auto project = manage_json("POST", "/manage/projects", R"({"name":"stale","api_key":"sk-key"})")["id"];
  auto unlimited = manage_json("POST", "/manage/tokens",
                               nlohmann::json{{"project_id", project}, {"duration_minutes", 60}}.dump());
  auto quota = manage_json(
      "POST", "/manage/tokens",
      nlohmann::json{{"project_id", project}, {"duration_minutes", 60}, {"max_requests", 100}}.dump());
  auto chat = [&](const std::string& token) {
    return proxy.request("POST", "/v1/chat/completions", R"({"model":"gpt-4o"})",
                         {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  };
  REQUIRE(chat(unlimited["token"]).status == 200);
  REQUIRE(chat(quota["token"]).status == 200);
  CHECK(metric_value(proxy, "llm_proxy_stale_served_total") == 0);

  cluster.stop();
  // Let every cache entry pass its 1 s TTL: from here on only stale-if-error can answer without the database.
  std::this_thread::sleep_for(3s);
  auto served = chat(unlimited["token"]);
  INFO(served.body);
  CHECK(served.status == 200);
  CHECK(mock.requests().size() == 3);  // it reached the upstream
  CHECK(metric_value(proxy, "llm_proxy_stale_served_total") == 1);
  auto refused = chat(quota["token"]);
  CHECK(refused.status == 503);
  CHECK(error_code(refused) == "service_unavailable");
  CHECK(metric_value(proxy, "llm_proxy_stale_served_total") == 1);

  cluster.start();
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    std::this_thread::sleep_for(100ms);
    ready = proxy.get("/ready").status == 200;
  }
  REQUIRE(ready);
  // 1 before + 1 stale during the outage, written once the database is back.
  std::string count;
  for (int i = 0; i < 50 && count != "2"; ++i) {
    std::this_thread::sleep_for(100ms);
    auto [code, out] = test::run_command({"psql", cluster.url(), "-qAtc",
                                          "SELECT request_count FROM tokens WHERE id = '" +
                                              unlimited["id"].get<std::string>() + "'"});
    if (code == 0) count = out.substr(0, out.find('\n'));
  }
  CHECK(count == "2");
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
