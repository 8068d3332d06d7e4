#pragma once
// Integration-test harness: starts the real llm-proxy binary on an ephemeral port with an explicit environment,
// against a fresh SQLite file or a fresh PostgreSQL database, and inspects rows with the sqlite3/psql CLIs.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace llmproxy::itest {

using namespace std::chrono_literals;
using test::Environment;
using test::TempDir;

inline constexpr const char* kManagementToken = "test-management-token-0123456789";

inline std::string random_suffix() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  return std::to_string(gen() % 1000000000000ULL);
}

/// The URL of the throwaway cluster; REQUIREs it (a [postgres] test fails, never skips, without it).
inline std::string test_database_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  INFO("TEST_DATABASE_URL is not set: run PostgreSQL tests through scripts/with-postgres.sh");
  REQUIRE(url != nullptr);
  return url;
}

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database dropped at the end.
class TestDatabase {
 public:
  enum class Kind { sqlite, postgres };

  explicit TestDatabase(Kind kind) : kind_(kind) {
    if (kind_ == Kind::sqlite) {
      path_ = dir_.file("llm-proxy.db");
      return;
    }
    admin_url_ = test_database_url();
    name_ = "llmproxy_it_" + random_suffix();
    auto [code, out] = test::run_command({"psql", admin_url_, "-v", "ON_ERROR_STOP=1", "-qAtc",
                                          "CREATE DATABASE " + name_});
    INFO(out);
    REQUIRE(code == 0);
    auto slash = admin_url_.rfind('/');
    url_ = admin_url_.substr(0, slash + 1) + name_;
  }
  ~TestDatabase() {
    if (kind_ == Kind::postgres) {
      test::run_command({"psql", admin_url_, "-qAtc", "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"});
    }
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  Kind kind() const { return kind_; }
  const std::string& url() const { return url_; }
  const std::string& path() const { return path_; }
  const TempDir& dir() const { return dir_; }

  /// DB_DRIVER and DATABASE_* for the proxy.
  void apply(Environment& env) const {
    if (kind_ == Kind::sqlite) {
      env["DB_DRIVER"] = "sqlite";
      env["DATABASE_PATH"] = path_;
    } else {
      env["DB_DRIVER"] = "postgres";
      env["DATABASE_URL"] = url_;
    }
  }

  /// Runs one SQL statement with the CLI and returns its output (rows `|`-separated, one per line, trimmed).
  std::string query(const std::string& sql) const {
    std::vector<std::string> cmd = kind_ == Kind::sqlite
                                       ? std::vector<std::string>{"sqlite3", "-bail", path_, sql}
                                       : std::vector<std::string>{"psql", url_, "-v", "ON_ERROR_STOP=1", "-qAtc", sql};
    auto [code, out] = test::run_command(cmd);
    INFO(sql << "\n" << out);
    REQUIRE(code == 0);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  Kind kind_;
  TempDir dir_;
  std::string path_, url_, admin_url_, name_;
};

/// The environment every test starts from: loopback on an ephemeral port, logs as JSON on stdout.
inline Environment base_env(const TempDir& dir) {
  return Environment{{"MANAGEMENT_TOKEN", kManagementToken},
                     {"LISTEN_ADDR", "127.0.0.1:0"},
                     {"IO_THREADS", "2"},
                     {"LOG_FORMAT", "json"},
                     {"LOG_LEVEL", "info"},
                     {"AUDIT_LOG_FILE", dir.file("audit.log")},
                     {"API_CONFIG_PATH", std::string(LLMPROXY_SOURCE_DIR) + "/config/api_providers.yaml"},
                     {"SHUTDOWN_TIMEOUT", "5s"},
                     {"DATABASE_STARTUP_TIMEOUT", "10s"}};
}

/// A running llm-proxy.
/// The value of the sample `name` (with its labels, e.g. `x_total{kind="a"}`) in a /metrics text, or -1 if it
/// is missing.
inline double metric_sample(const std::string& metrics_text, const std::string& name) {
  std::istringstream lines(metrics_text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

class Proxy {
 public:
  /// Starts the binary with `env`; waits for the listening line (and for `ready` unless told not to).
  explicit Proxy(Environment env, bool wait_ready = true, std::vector<std::string> args = {"server"})
      : process_(LLMPROXY_BINARY, std::move(args), std::move(env)) {
    auto line = process_.wait_for_line("\"event\":\"listening\"", 20s);
    INFO(process_.output());
    REQUIRE(line.has_value());
    std::smatch m;
    static const std::regex kPort("\"port\":([0-9]+)");
    REQUIRE(std::regex_search(*line, m, kPort));
    port_ = std::stoi(m[1]);
    if (wait_ready) {
      auto ready = process_.wait_for_line("\"event\":\"ready\"", 30s);
      INFO(process_.output());
      REQUIRE(ready.has_value());
    }
  }

  int port() const { return port_; }
  test::Process& process() { return process_; }

  test::HttpResponse get(const std::string& target, const test::RequestHeaders& headers = {}) {
    return test::http_request(port_, "GET", target, "", headers);
  }
  test::HttpResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                             test::RequestHeaders headers = {}) {
    return test::http_request(port_, method, target, body, headers);
  }
  /// A management API call with the right token.
  test::HttpResponse manage(const std::string& method, const std::string& target, const std::string& body = "") {
    test::RequestHeaders h{{"Authorization", std::string("Bearer ") + kManagementToken}};
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    return test::http_request(port_, method, target, body, h);
  }

  /// The value of a sample in this proxy's /metrics now, or -1 if it is missing.
  double metric(const std::string& name) {
    const auto r = get("/metrics");
    REQUIRE(r.status == 200);
    return metric_sample(r.body, name);
  }

  /// SIGTERM and wait for the exit code.
  std::optional<int> terminate(std::chrono::milliseconds timeout = 15s) {
    process_.signal(SIGTERM);
    return process_.wait_exit(timeout);
  }

 private:
  test::Process process_;
  int port_ = 0;
};

/// Runs the binary to completion (CLI commands, boot failures). Returns {exit code, output}.
inline std::pair<int, std::string> run_binary(const std::vector<std::string>& args, const Environment& env,
                                              std::chrono::milliseconds timeout = 60s) {
  std::vector<std::string> cmd{LLMPROXY_BINARY};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return test::run_command(cmd, env, timeout);
}

}  // namespace llmproxy::itest

namespace llmproxy::itest {

/// A second throwaway PostgreSQL server owned by one test, for outage/recovery cases that must stop and start
/// a server without disturbing the shared cluster of scripts/with-postgres.sh (whose TEST_PG_BIN it reuses).
class Cluster {
 public:
  explicit Cluster(int port) : port_(port) {
    const char* bin = std::getenv("TEST_PG_BIN");
    INFO("TEST_PG_BIN is not set: run through scripts/with-postgres.sh");
    REQUIRE(bin != nullptr);
    bin_ = bin;
    const char* runas = std::getenv("TEST_PG_RUNAS");
    runas_ = runas ? runas : "";
    if (!runas_.empty()) test::run_command({"chown", runas_, dir_.path().string()});
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
    auto [code, out] = as_pg({bin_ + "/initdb", "-D", data(), "-U", "postgres", "-A", "trust", "--no-sync"});
    INFO(out);
    REQUIRE(code == 0);
  }
  ~Cluster() { stop(); }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void start() {
    auto [code, out] = as_pg({bin_ + "/pg_ctl", "-D", data(), "-l", dir_.file("log"), "-w", "-o",
                              "-p " + std::to_string(port_) + " -k " + dir_.path().string() +
                                  " -c listen_addresses=127.0.0.1 -c fsync=off",
                              "start"});
    INFO(out);
    REQUIRE(code == 0);
  }
  void stop() { as_pg({bin_ + "/pg_ctl", "-D", data(), "-m", "fast", "stop"}); }
  std::string url(const std::string& db = "postgres") const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

 private:
  std::string data() const { return dir_.file("data"); }
  std::pair<int, std::string> as_pg(std::vector<std::string> cmd) {
    if (!runas_.empty()) cmd.insert(cmd.begin(), {"runuser", "-u", runas_, "--"});
    return test::run_command(cmd, {}, 60s);
  }

  int port_;
  TempDir dir_;
  std::string bin_, runas_;
};

}  // namespace llmproxy::itest
