// deploy/: the compose files validate, and the exact environment compose gives llm-proxy boots against a real
// PostgreSQL and keeps its data across a restart (SPEC §9). No Docker engine is needed: `docker-compose config`
// only parses, and the binary runs directly.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/binary_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A copy of deploy/ with a .env made from .env.example (secrets filled in), as an operator would have it.
struct ComposeDir {
  ComposeDir() {
    std::filesystem::create_directories(dir.path() / "deploy");
    std::filesystem::copy_file(std::string(LLMPROXY_SOURCE_DIR) + "/deploy/docker-compose.yml",
                               dir.path() / "deploy" / "docker-compose.yml");
    std::string env = read_text(std::string(LLMPROXY_SOURCE_DIR) + "/deploy/.env.example");
    env += "\nMANAGEMENT_TOKEN=compose-management-token-0123456789abcdef\nPOSTGRES_PASSWORD=compose-pw-123\n"
           "ENCRYPTION_KEY=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n";
    std::ofstream(dir.file("deploy/.env")) << env;
  }
  std::string file() const { return dir.file("deploy/docker-compose.yml"); }

  /// `docker-compose config` (or `docker compose config`) output; REQUIREs success.
  std::string config(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> cmd{"docker-compose", "-f", file()};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    cmd.push_back("config");
    auto [code, out] = test::run_command(cmd, {{"HOME", dir.path().string()}});
    INFO(out);
    REQUIRE(code == 0);
    return out;
  }

  TempDir dir;
};

}  // namespace

TEST_CASE("deploy: docker-compose.yml and its SQLite profile validate", "[deploy]") {
  ComposeDir compose;
  auto yaml = YAML::Load(compose.config());
  auto services = yaml["services"];
  REQUIRE(services["postgres"]);
  REQUIRE(services["llm-proxy"]);
  CHECK(services["postgres"]["image"].as<std::string>() == "postgres:15");
  CHECK_FALSE(services["postgres"]["ports"]);  // not published to the host
  CHECK(services["llm-proxy"]["depends_on"]["postgres"]["condition"].as<std::string>() == "service_healthy");
  CHECK(services["llm-proxy"]["read_only"].as<bool>());
  CHECK(services["llm-proxy"]["cap_drop"][0].as<std::string>() == "ALL");
  CHECK(services["llm-proxy"]["environment"]["DB_DRIVER"].as<std::string>() == "postgres");
  // Published on loopback only unless the operator sets LLM_PROXY_BIND.
  const auto port = services["llm-proxy"]["ports"][0];
  INFO(YAML::Dump(port));
  CHECK((port.IsMap() ? port["host_ip"].as<std::string>() : port.as<std::string>()).rfind("127.0.0.1", 0) == 0);

  auto with_sqlite = YAML::Load(compose.config({"--profile", "sqlite"}));
  REQUIRE(with_sqlite["services"]["llm-proxy-sqlite"]);
  CHECK(with_sqlite["services"]["llm-proxy-sqlite"]["environment"]["DB_DRIVER"].as<std::string>() == "sqlite");
  CHECK(with_sqlite["volumes"]["sqlite-data"]);
}

TEST_CASE("deploy: .env.example holds no usable secret", "[deploy]") {
  const std::string example = read_text(std::string(LLMPROXY_SOURCE_DIR) + "/deploy/.env.example");
  CHECK(example.find("\nMANAGEMENT_TOKEN=\n") != std::string::npos);
  CHECK(example.find("\nPOSTGRES_PASSWORD=\n") != std::string::npos);
  CHECK(example.find("change-me") == std::string::npos);
}

TEST_CASE("deploy: .env.example lists every variable the binary reads", "[deploy]") {
  const std::string example = read_text(std::string(LLMPROXY_SOURCE_DIR) + "/deploy/.env.example");
  const std::string docs = read_text(std::string(LLMPROXY_SOURCE_DIR) + "/docs/configuration.md");
  std::istringstream lines(docs);
  int variables = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    const auto end = line.find('`', 3);
    const std::string name = line.substr(3, end - 3);
    INFO(name);
    ++variables;
    CHECK((example.find("\n" + name + "=") != std::string::npos || example.find("# " + name + "=") != std::string::npos));
  }
  CHECK(variables >= 39);
}

TEST_CASE("deploy: the compose environment boots on PostgreSQL and data survives a restart", "[deploy][postgres]") {
  ComposeDir compose;
  auto yaml = YAML::Load(compose.config());
  Environment env;
  for (auto it = yaml["services"]["llm-proxy"]["environment"].begin();
       it != yaml["services"]["llm-proxy"]["environment"].end(); ++it) {
    env[it->first.as<std::string>()] = it->second.IsNull() ? "" : it->second.as<std::string>();
  }
  REQUIRE(env["DB_DRIVER"] == "postgres");
  const std::string compose_url = env["DATABASE_URL"];
  CHECK(compose_url == "postgres://llmproxy:compose-pw-123@postgres:5432/llmproxy?sslmode=disable");

  // The compose database, recreated on the throwaway cluster: same role, password and sslmode.
  const std::string admin = test_database_url();
  const std::string db_name = "compose_" + random_suffix();
  auto psql = [&](const std::string& sql) {
    auto [code, out] = test::run_command({"psql", admin, "-v", "ON_ERROR_STOP=1", "-qAtc", sql});
    INFO(sql << "\n" << out);
    REQUIRE(code == 0);
  };
  psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llmproxy') THEN "
       "CREATE ROLE llmproxy LOGIN PASSWORD 'compose-pw-123'; END IF; END $$");
  psql("CREATE DATABASE " + db_name + " OWNER llmproxy");
  const auto at = admin.find('@');
  const auto slash = admin.rfind('/');
  const std::string host_port = admin.substr(at + 1, slash - at - 1);  // 127.0.0.1:<port>
  std::string url = compose_url;
  url.replace(url.find("postgres:5432"), std::string("postgres:5432").size(), host_port);
  url.replace(url.find("/llmproxy?"), std::string("/llmproxy?").size(), "/" + db_name + "?");
  env["DATABASE_URL"] = url;
  // What the image provides beyond compose: the Dockerfile's ENV lines point into /app; use a temp dir instead.
  TempDir data;
  env["LISTEN_ADDR"] = "127.0.0.1:0";  // compose publishes :8080; tests must not use fixed ports
  env["DATABASE_PATH"] = data.file("unused.db");
  env["AUDIT_LOG_FILE"] = data.file("audit.log");
  env["API_CONFIG_PATH"] = std::string(LLMPROXY_SOURCE_DIR) + "/config/api_providers.yaml";

  std::string project_id, token_id;
  {
    Proxy proxy(env);
    auto manage = [&](const std::string& method, const std::string& path, const std::string& body) {
      return proxy.request(method, path, body,
                           {{"Authorization", "Bearer compose-management-token-0123456789abcdef"}, {"Content-Type", "application/json"}});
    };
    auto p = manage("POST", "/manage/projects", R"({"name":"compose","api_key":"sk-compose-key"})");
    REQUIRE(p.status == 201);
    project_id = nlohmann::json::parse(p.body)["id"];
    auto t = manage("POST", "/manage/tokens",
                    nlohmann::json{{"project_id", project_id}, {"duration_minutes", 60}}.dump());
    REQUIRE(t.status == 200);
    token_id = nlohmann::json::parse(t.body)["id"];
    CHECK(proxy.terminate() == 0);
  }
  {
    Proxy proxy(env);
    auto t = proxy.request("GET", "/manage/tokens/" + token_id, "",
                           {{"Authorization", "Bearer compose-management-token-0123456789abcdef"}});
    REQUIRE(t.status == 200);
    CHECK(nlohmann::json::parse(t.body)["project_id"] == project_id);
    CHECK_THAT(proxy.process().output(), !Contains("compose-pw-123"));
    CHECK(proxy.terminate() == 0);
  }
  psql("DROP DATABASE IF EXISTS " + db_name + " WITH (FORCE)");
}
