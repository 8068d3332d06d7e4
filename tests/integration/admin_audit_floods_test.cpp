// The audit trail under floods (SPEC §7.3, issue 9), through the real binary on both drivers: a revoked token
// retried 200 times and refused management logins are audited coalesced (a row at once, a summary with the
// count of the rest), failed logins are counted in /metrics and the presented token is stored nowhere; extreme
// but valid audit filter times are answered, never 500.
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

/// The rows of `action` in the audit table as JSON objects {token_id, client_ip, count, metadata}.
std::vector<nlohmann::json> audit_rows(const TestDatabase& db, const std::string& action) {
  const std::string out =
      db.query("SELECT COALESCE(token_id, '') || '|' || COALESCE(client_ip, '') || '|' || "
               "COALESCE(CAST(metadata AS TEXT), '') FROM audit_events WHERE action = '" + action + "'");
  std::vector<nlohmann::json> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto a = line.find('|');
    const auto b = line.find('|', a + 1);
    auto metadata = nlohmann::json::parse(line.substr(b + 1), nullptr, false);
    rows.push_back({{"token_id", line.substr(0, a)}, {"client_ip", line.substr(a + 1, b - a - 1)},
                    {"metadata", metadata}});
  }
  return rows;
}

std::int64_t sum_counts(const std::vector<nlohmann::json>& rows) {
  std::int64_t sum = 0;
  for (const auto& r : rows) {
    INFO(r.dump());
    REQUIRE(r["metadata"].is_object());
    REQUIRE(r["metadata"].contains("count"));
    sum += r["metadata"]["count"].get<std::int64_t>();
  }
  return sum;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void revoked_token_flood(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  const auto project = f.create_project("flood");
  const auto token = f.create_token(project);
  const std::string token_id = token["id"];
  REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + token_id).status == 204);

  for (int i = 0; i < 200; ++i) REQUIRE(f.chat(token["token"]).status == 401);

  // At once: the first denial, with a count of 1 (the rest are being counted).
  nlohmann::json page;
  for (int i = 0; i < 50; ++i) {
    auto r = f.proxy->manage("GET", "/manage/audit?action=proxy.denied");
    REQUIRE(r.status == 200);
    page = nlohmann::json::parse(r.body);
    if (page["pagination"]["total_count"] != 0) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(page.dump());
  REQUIRE(page["pagination"]["total_count"] == 1);
  CHECK(page["events"][0]["token_id"] == token_id);
  CHECK(nlohmann::json::parse(page["events"][0]["metadata"].get<std::string>())["count"] == 1);

  // The summary of the open window is written at shutdown (else at the end of the minute).
  REQUIRE(f.proxy->terminate() == 0);
  const auto rows = audit_rows(f.db, "proxy.denied");
  CHECK(rows.size() <= 2);
  CHECK(sum_counts(rows) == 200);
  for (const auto& r : rows) CHECK(r["token_id"] == token_id);
}
BOTH_DRIVERS("audit: 200 requests with a revoked token give at most 2 proxy.denied rows counting 200",
             "[audit][admin]", revoked_token_flood)

void management_auth_failures(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  const std::string wrong = "wrong-management-token-SECRET-4711";
  int failures = 0;
  for (int i = 0; i < 5; ++i, ++failures) {
    auto r = f.proxy->get("/manage/projects");  // missing
    REQUIRE(r.status == 401);
  }
  for (int i = 0; i < 5; ++i, ++failures) {
    auto r = f.proxy->get("/manage/projects", {{"Authorization", "Bearer " + wrong}});
    REQUIRE(r.status == 401);
  }
  for (int i = 0; i < 3; ++i, ++failures) {
    auto r = f.proxy->get("/manage/tokens", {{"Authorization", "Basic " + wrong}});  // malformed
    REQUIRE(r.status == 401);
  }
  REQUIRE(f.proxy->manage("GET", "/manage/projects").status == 200);  // the right token is not counted

  auto metrics = f.proxy->get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metric_sample(metrics.body, "llm_proxy_management_auth_failures_total") == failures);
  // Audit drops are one family with a label per kind, under one HELP/TYPE header.
  CHECK(metric_sample(metrics.body, "llm_proxy_audit_dropped_total{kind=\"proxy\"}") == 0);
  CHECK(metric_sample(metrics.body, "llm_proxy_audit_dropped_total{kind=\"management\"}") == 0);
  CHECK_THAT(metrics.body, Contains("# TYPE llm_proxy_audit_dropped_total counter\nllm_proxy_audit_dropped_total{"));
  CHECK_THAT(metrics.body, !Contains("# HELP llm_proxy_audit_dropped_total{"));

  nlohmann::json page;
  for (int i = 0; i < 50; ++i) {
    page = nlohmann::json::parse(f.proxy->manage("GET", "/manage/audit?action=management.auth_failed").body);
    if (page["pagination"]["total_count"] != 0) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(page.dump());
  REQUIRE(page["pagination"]["total_count"] == 1);  // one address: one row now, the rest summarized
  CHECK(page["events"][0]["client_ip"] == "127.0.0.1");
  CHECK(page["events"][0]["outcome"] == "denied");
  CHECK(nlohmann::json::parse(page["events"][0]["metadata"].get<std::string>())["count"] == 1);

  REQUIRE(f.proxy->terminate() == 0);
  const auto rows = audit_rows(f.db, "management.auth_failed");
  CHECK(rows.size() <= 2);
  CHECK(sum_counts(rows) == failures);
  // The presented token is nowhere: not in the table, not in the audit file, not in the log.
  CHECK(f.db.query("SELECT COUNT(*) FROM audit_events WHERE CAST(metadata AS TEXT) LIKE '%SECRET-4711%' OR "
                   "reason LIKE '%SECRET-4711%' OR path LIKE '%SECRET-4711%' OR user_agent LIKE '%SECRET-4711%'") ==
        "0");
  CHECK_THAT(file_text(f.env["AUDIT_LOG_FILE"]), !Contains("SECRET-4711"));
  CHECK_THAT(file_text(f.env["AUDIT_LOG_FILE"]), Contains("management.auth_failed"));
  CHECK_THAT(f.proxy->process().output(), !Contains("SECRET-4711"));
}
BOTH_DRIVERS("management: refused logins are counted in /metrics and audited coalesced per address",
             "[audit][admin]", management_auth_failures)

void extreme_filter_times(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  f.create_project("audited");  // one project.create event, written asynchronously
  std::int64_t written = 0;
  for (int i = 0; i < 50 && written == 0; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    auto r = f.proxy->manage("GET", "/manage/audit?action=project.create");
    REQUIRE(r.status == 200);
    written = nlohmann::json::parse(r.body)["pagination"]["total_count"].get<std::int64_t>();
  }
  REQUIRE(written == 1);
  for (const std::string query :
       {"start_time=0000-01-01T00:00:00Z", "start_time=0000-01-01T00:00:00%2B01:00",
        "start_time=0000-01-01T00:00:00Z&end_time=9999-12-31T23:59:59.999999Z",
        "end_time=9999-12-31T23:59:59-23:59", "start_time=0001-01-01T00:00:00Z"}) {
    auto r = f.proxy->manage("GET", "/manage/audit?action=project.create&" + query);
    INFO(query << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(nlohmann::json::parse(r.body)["pagination"]["total_count"] == 1);
  }
  for (const std::string query : {"start_time=9999-12-31T23:59:59Z", "end_time=0000-01-01T00:00:00Z"}) {
    auto r = f.proxy->manage("GET", "/manage/audit?action=project.create&" + query);
    INFO(query << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(nlohmann::json::parse(r.body)["pagination"]["total_count"] == 0);
  }
  auto bad = f.proxy->manage("GET", "/manage/audit?start_time=10000-01-01T00:00:00Z");
  CHECK(bad.status == 400);
  CHECK_THAT(bad.body, Contains("start_time"));
}
BOTH_DRIVERS("audit: filter times at year 0 and 9999 are valid queries on both drivers, never 500",
             "[audit][admin]", extreme_filter_times)

}  // namespace
