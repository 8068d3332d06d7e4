// Drop-in compatibility of the management API with the reference Go service (SPEC §7.4), through the real
// binary on SQLite and PostgreSQL: unpaged lists return every row in the reference's order, token JSON carries the
// reference's obfuscated `token`, unknown JSON fields are ignored with a warning, token create answers 200, audit
// events carry actor management_api and the X-Correlation-ID (a filter), and TRUSTED_PROXIES picks the audit
// client_ip from X-Forwarded-For.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "integration/admin_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;
using Json = nlohmann::json;
using Kind = TestDatabase::Kind;

#define PARITY_CASE(name, fn)                                     \
  TEST_CASE(name, "[admin][parity]") { fn(Kind::sqlite); }        \
  TEST_CASE(name " (postgres)", "[admin][parity][postgres]") { fn(Kind::postgres); }

namespace {


using Admin = AdminFixture;

/// Creates a project; returns its id.
std::string create_project(Admin& a, const std::string& name) { return a.create_project(name)["id"]; }

std::vector<std::string> field_of(const Json& list, const char* field) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.at(field).get<std::string>());
  return out;
}

/// The reference's display form of a token: prefix, first 4 and last 4 of the random part, `*` between.
std::string reference_obfuscation(const std::string& secret) {
  return secret.substr(0, 7) + std::string(secret.size() - 11, '*') + secret.substr(secret.size() - 4);
}

}  // namespace

void lists_return_every_row_without_paging(Kind kind) {
  Admin a(kind);
  // 27 projects created in shuffled order, names in mixed case: the list is by name in byte order.
  std::vector<std::string> names{"Zulu", "alpha", "Bravo", "beta", "_under"};
  for (int i = 0; i < 22; ++i) names.push_back("p" + std::string(i < 10 ? "0" : "") + std::to_string(i));
  std::shuffle(names.begin(), names.end(), std::mt19937(7));
  for (const auto& name : names) create_project(a, name);
  std::vector<std::string> by_name = names;
  std::sort(by_name.begin(), by_name.end());

  auto all = a.call("GET", "/manage/projects");
  REQUIRE(all.status == 200);
  const auto projects = Json::parse(all.body);
  REQUIRE(projects.is_array());  // the shape stays a bare array
  CHECK(field_of(projects, "name") == by_name);
  CHECK(all.header("X-Total-Count") == "27");
  CHECK_FALSE(all.has_header("X-Page-Size"));

  // Either parameter pages as before (default size 20), in the same order.
  auto first = a.call("GET", "/manage/projects?page_size=5");
  CHECK(field_of(Json::parse(first.body), "name") ==
        std::vector<std::string>(by_name.begin(), by_name.begin() + 5));
  CHECK(first.header("X-Total-Count") == "27");
  CHECK(first.header("X-Total-Pages") == "6");
  auto second = a.call("GET", "/manage/projects?page=2");
  CHECK(field_of(Json::parse(second.body), "name") == std::vector<std::string>(by_name.begin() + 20, by_name.end()));
  CHECK(second.header("X-Page-Size") == "20");

  // 26 tokens over two projects: the unpaged list has them all, newest first.
  std::vector<std::string> created;
  const std::string p1 = create_project(a, "tokens-1");
  const std::string p2 = create_project(a, "tokens-2");
  for (int i = 0; i < 26; ++i) {
    created.push_back(a.ok("POST", "/manage/tokens",
                           Json{{"project_id", i % 3 ? p1 : p2}, {"duration_minutes", 60}}.dump(), 200)["id"]);
  }
  std::reverse(created.begin(), created.end());
  auto tokens = a.call("GET", "/manage/tokens");
  REQUIRE(tokens.status == 200);
  const auto token_list = Json::parse(tokens.body);
  REQUIRE(token_list.is_array());
  CHECK(field_of(token_list, "id") == created);
  CHECK(tokens.header("X-Total-Count") == "26");
  auto filtered = Json::parse(a.call("GET", "/manage/tokens?projectId=" + p1).body);
  CHECK(filtered.size() == 17);
  CHECK(Json::parse(a.call("GET", "/manage/tokens?page_size=4&page=2").body).size() == 4);
  CHECK(Json::parse(a.call("GET", "/manage/tokens?page=2").body).size() == 6);
}
PARITY_CASE("management API parity: project and token lists without page parameters return every row",
            lists_return_every_row_without_paging)

void token_json_carries_the_obfuscated_token(Kind kind) {
  Admin a(kind);
  const std::string project = create_project(a, "obfuscated");
  auto created = a.ok("POST", "/manage/tokens", Json{{"project_id", project}, {"duration_minutes", 60}}.dump(), 200);
  const std::string secret = created["token"];
  const std::string id = created["id"];
  const std::string expected = reference_obfuscation(secret);
  REQUIRE(expected.size() == secret.size());
  CHECK(std::count(expected.begin(), expected.end(), '*') == 14);

  auto one = a.call("GET", "/manage/tokens/" + id);
  REQUIRE(one.status == 200);
  CHECK_THAT(one.body, !Contains(secret));
  CHECK(Json::parse(one.body)["token"] == expected);
  auto list = a.call("GET", "/manage/tokens");
  CHECK_THAT(list.body, !Contains(secret));
  CHECK(Json::parse(list.body).at(0)["token"] == expected);
  auto patched = a.ok("PATCH", "/manage/tokens/" + id, R"({"max_requests":3})", 200);
  CHECK(patched["token"] == expected);
}
PARITY_CASE("management API parity: token JSON carries the reference's obfuscated token",
            token_json_carries_the_obfuscated_token)

void unknown_fields_are_ignored(Kind kind) {
  Admin a(kind);
  const std::string marker = "value-never-logged-4711";
  auto project = a.ok("POST", "/manage/projects",
                      Json{{"name", "extra"}, {"api_key", "sk-1234567890abcdef"}, {"color", marker}}.dump(), 201);
  const std::string id = project["id"];
  CHECK(project["name"] == "extra");
  auto token = a.ok("POST", "/manage/tokens",
                    Json{{"project_id", id}, {"duration_minutes", 5}, {"max_requests", 2}, {"maxRequests", marker},
                         {"description", marker}}.dump(),
                    200);
  CHECK(token["max_requests"] == 2);
  const std::string token_id = token["id"];
  CHECK(a.ok("PATCH", "/manage/tokens/" + token_id, Json{{"is_active", false}, {"note", marker}}.dump(),
             200)["is_active"] == false);
  CHECK(a.ok("PATCH", "/manage/projects/" + id, Json{{"name", "extra-2"}, {"owner", marker}}.dump(), 200)["name"] ==
        "extra-2");

  // Known fields keep their type checks, unknown ones around them do not change that.
  for (const auto& [method, target, body, field] : std::vector<std::tuple<std::string, std::string, Json, std::string>>{
           {"POST", "/manage/tokens", Json{{"project_id", id}, {"duration_minutes", "60"}, {"x", 1}},
            "\"duration_minutes\""},
           {"POST", "/manage/projects", Json{{"name", 5}, {"api_key", "sk-1234567890abcdef"}, {"x", 1}}, "\"name\""},
           {"PATCH", "/manage/tokens/" + token_id, Json{{"is_active", "no"}, {"x", 1}}, "\"is_active\""},
           {"PATCH", "/manage/projects/" + id, Json{{"x", 1}}, "no fields"}}) {
    auto r = a.call(method, target, body.dump());
    INFO(method << " " << target << " " << body.dump() << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK_THAT(Json::parse(r.body).at("error").get<std::string>(), Contains(field));
  }
  CHECK(a.db.query("SELECT count(*) FROM projects") == "1");
  CHECK(a.db.query("SELECT count(*) FROM tokens") == "1");

  // One warning per request, with the names and never the values.
  auto warned = a.proxy->process().wait_for_line("\"event\":\"manage_unknown_fields\"", 5s);
  REQUIRE(warned.has_value());
  const auto output = a.proxy->process().output();
  CHECK_THAT(output, Contains("\"color\""));
  CHECK_THAT(output, Contains("\"maxRequests\""));
  CHECK_THAT(output, Contains("\"description\""));
  CHECK_THAT(output, !Contains(marker));
}
PARITY_CASE("management API parity: unknown JSON fields are ignored with a warning, known fields stay strict",
            unknown_fields_are_ignored)

void audit_actor_and_correlation_id(Kind kind) {
  Admin a(kind);
  const std::string correlation = "corr-parity-7f3a";
  auto created = a.ok("POST", "/manage/projects", R"({"name":"corr","api_key":"sk-1234567890abcdef"})", 201,
                      {{"X-Correlation-ID", correlation}, {"X-Request-ID", "req-parity-1"}});
  a.ok("POST", "/manage/projects", R"({"name":"other","api_key":"sk-1234567890abcdef"})", 201,
       {{"X-Correlation-ID", "corr-other-1"}});
  a.ok("POST", "/manage/projects", R"({"name":"none","api_key":"sk-1234567890abcdef"})", 201);

  auto all = a.audit_until("actor=management_api", 3);
  CHECK(all["pagination"]["total_count"] == 3);
  for (const auto& e : all["events"]) CHECK(e["actor"] == "management_api");
  CHECK(a.ok("GET", "/manage/audit?actor=management", "", 200)["pagination"]["total_count"] == 0);

  auto by_correlation = a.ok("GET", "/manage/audit?correlation_id=" + correlation, "", 200);
  REQUIRE(by_correlation["pagination"]["total_count"] == 1);
  const auto& event = by_correlation["events"][0];
  CHECK(event["correlation_id"] == correlation);
  CHECK(event["request_id"] == "req-parity-1");
  CHECK(event["project_id"] == created["id"]);
  // Exact match only; search matches a part of it (the reference's search covers correlation_id).
  CHECK(a.ok("GET", "/manage/audit?correlation_id=corr-parity", "", 200)["pagination"]["total_count"] == 0);
  CHECK(a.ok("GET", "/manage/audit?search=parity-7f", "", 200)["pagination"]["total_count"] == 1);
  CHECK(a.ok("GET", "/manage/audit?search=req-parity", "", 200)["pagination"]["total_count"] == 1);
  auto newest = a.ok("GET", "/manage/audit?actor=management_api&page_size=1", "", 200);
  CHECK(newest["events"][0]["correlation_id"].is_null());  // none sent, none invented
}
PARITY_CASE("management API parity: audit actor is management_api and X-Correlation-ID is stored and filterable",
            audit_actor_and_correlation_id)

void trusted_proxies_pick_the_forwarded_client(Kind kind) {
  const test::RequestHeaders forwarded{{"X-Forwarded-For", "6.6.6.6, 198.51.100.7"}};
  SECTION("peer inside TRUSTED_PROXIES: the right-most untrusted X-Forwarded-For address") {
    Admin a(kind, [](Environment& env) { env["TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.0/8, ::1/128"; });
    a.ok("POST", "/manage/projects", R"({"name":"lb","api_key":"sk-1234567890abcdef"})", 201, forwarded);
    a.ok("POST", "/manage/projects", R"({"name":"lb-2","api_key":"sk-1234567890abcdef"})", 201,
         {{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-For", "10.1.2.3"}});
    a.ok("POST", "/manage/projects", R"({"name":"direct","api_key":"sk-1234567890abcdef"})", 201);
    auto events = a.audit_until("action=project.create", 3)["events"];
    REQUIRE(events.size() == 3);
    CHECK(events[2]["client_ip"] == "198.51.100.7");
    CHECK(events[1]["client_ip"] == "203.0.113.9");  // two header fields read as one list
    CHECK(events[0]["client_ip"] == "127.0.0.1");    // no header: the peer
    CHECK(a.ok("GET", "/manage/audit?client_ip=198.51.100.7", "", 200)["pagination"]["total_count"] == 1);
  }
  SECTION("default (no trusted proxy): the TCP peer, whatever the header says") {
    Admin a(kind);
    a.ok("POST", "/manage/projects", R"({"name":"lb","api_key":"sk-1234567890abcdef"})", 201, forwarded);
    auto events = a.audit_until("action=project.create", 1)["events"];
    CHECK(events[0]["client_ip"] == "127.0.0.1");
  }
  SECTION("peer outside the trusted ranges: the TCP peer") {
    Admin a(kind, [](Environment& env) { env["TRUSTED_PROXIES"] = "10.0.0.0/8"; });
    a.ok("POST", "/manage/projects", R"({"name":"lb","api_key":"sk-1234567890abcdef"})", 201, forwarded);
    auto events = a.audit_until("action=project.create", 1)["events"];
    CHECK(events[0]["client_ip"] == "127.0.0.1");
  }
}
PARITY_CASE("management API parity: TRUSTED_PROXIES takes the audit client_ip from X-Forwarded-For",
            trusted_proxies_pick_the_forwarded_client)

TEST_CASE("TRUSTED_PROXIES with a bad range refuses to boot naming the variable", "[admin][parity]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/8,not-an-ip", "fd00::/129"}) {
    env["TRUSTED_PROXIES"] = bad;
    auto [code, output] = run_binary({"server"}, env, 20s);
    INFO(bad << "\n" << output);
    CHECK(code == 2);
    CHECK_THAT(output, Contains("TRUSTED_PROXIES"));
  }
}
