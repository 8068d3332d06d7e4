#pragma once
// A proxy on a fresh database of one kind, with helpers for management calls (tests/integration/admin_*_test.cpp).
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "integration/binary_fixture.hpp"

namespace llmproxy::itest {

struct AdminFixture {
  using Json = nlohmann::json;

  explicit AdminFixture(TestDatabase::Kind kind, const std::function<void(Environment&)>& tweak = {}) : db(kind) {
    env = base_env(dir);
    db.apply(env);
    if (tweak) tweak(env);
    proxy = std::make_unique<Proxy>(env);
  }

  /// A management call with the management token (and a JSON Content-Type when there is a body).
  test::HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                          test::RequestHeaders headers = {}) {
    headers.emplace_back("Authorization", std::string("Bearer ") + kManagementToken);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return proxy->request(method, target, body, headers);
  }

  /// A call that must answer `status` with a JSON body; returns the body.
  Json ok(const std::string& method, const std::string& target, const std::string& body, int status,
          test::RequestHeaders headers = {}) {
    auto r = call(method, target, body, std::move(headers));
    INFO(method << " " << target << " " << body << " -> " << r.status << " " << r.body);
    REQUIRE(r.status == status);
    CHECK(r.header("Content-Type") == "application/json");
    return Json::parse(r.body);
  }

  Json create_project(const std::string& name, const std::string& api_key = "sk-proj-abcdefghijklmnopwxyz") {
    return ok("POST", "/manage/projects", Json{{"name", name}, {"api_key", api_key}}.dump(), 201);
  }

  Json create_token(const std::string& project_id, Json extra = Json::object()) {
    extra["project_id"] = project_id;
    if (!extra.contains("duration_minutes")) extra["duration_minutes"] = 60;
    return ok("POST", "/manage/tokens", extra.dump(), 200);
  }

  /// A refused call: status, error code, and a message containing `fragment` (typically the field name).
  void refused(const std::string& method, const std::string& target, const std::string& body, int status,
               const std::string& code, const std::string& fragment) {
    auto r = call(method, target, body);
    INFO(method << " " << target << " " << body << " -> " << r.status << " " << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type") == "application/json");
    auto j = Json::parse(r.body);
    CHECK(j.at("code") == code);
    CHECK_THAT(j.at("error").get<std::string>(), Catch::Matchers::Contains(fragment));
  }

  int count(const std::string& sql_from_where) { return std::stoi(db.query("SELECT count(*) FROM " + sql_from_where)); }

  /// Polls the audit list (writes are asynchronous) until `query` matches at least `n` events.
  Json audit_until(const std::string& query, int n) {
    Json j;
    for (int i = 0; i < 100; ++i) {
      j = ok("GET", "/manage/audit?" + query, "", 200);
      if (j["pagination"]["total_count"].get<int>() >= n) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    INFO(j.dump());
    FAIL("audit events for " << query << " did not appear");
    return j;
  }

  TempDir dir;
  TestDatabase db;
  Environment env;
  std::unique_ptr<Proxy> proxy;
};

}  // namespace llmproxy::itest
