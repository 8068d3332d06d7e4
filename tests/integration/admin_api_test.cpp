// The management API (SPEC §7) through the real binary, on SQLite and on PostgreSQL: every endpoint, exact
// JSON fields, status codes and error bodies, and that refused input leaves the database unchanged.
#include <csignal>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/admin_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;
using Json = nlohmann::json;
using Kind = TestDatabase::Kind;

/// Registers `fn(kind)` once per driver: "[admin]" on SQLite and "[admin][postgres]" on PostgreSQL.
#define ADMIN_CASE(name, fn)                                              \
  TEST_CASE(name, "[admin]") { fn(Kind::sqlite); }                        \
  TEST_CASE(name " (postgres)", "[admin][postgres]") { fn(Kind::postgres); }

namespace {

const std::string kAuth = std::string("Bearer ") + kManagementToken;
// base64 of the 32 bytes 0x00..0x1f.
constexpr const char* kEncryptionKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const std::set<std::string> kProjectFields{"id",         "name",       "api_key",   "is_active",
                                           "deactivated_at", "created_at", "updated_at", "rate_limit_rpm"};
/// GET /manage/projects/{id} adds the project's usage totals; lists and writes do not.
const std::set<std::string> kProjectDetailFields = [] {
  auto s = kProjectFields;
  s.insert("usage");
  return s;
}();
const std::set<std::string> kTokenFields{
    "id",           "token",         "token_hint",      "project_id",        "expires_at",    "is_active",
    "deactivated_at", "request_count", "max_requests",    "created_at",        "last_used_at",  "cache_hit_count",
    "max_tokens",   "rate_limit_rpm", "prompt_tokens",  "completion_tokens", "total_tokens"};

std::set<std::string> keys(const Json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

/// Parses the fixed-width UTC form `YYYY-MM-DDTHH:MM:SS.ffffffZ` the API emits.
std::chrono::system_clock::time_point parse_utc(const std::string& s) {
  std::tm tm{};
  REQUIRE(strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  REQUIRE(s.back() == 'Z');
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

bool is_rfc3339_utc(const Json& v) {
  static const std::regex kTime(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), kTime);
}

std::string format_utc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using Admin = AdminFixture;

void auth_is_required(Kind kind) {
  Admin a(kind);
  const Json expected_missing = {{"code", "unauthorized"}};
  for (const auto& headers : std::vector<test::RequestHeaders>{
           {}, {{"Authorization", "Bearer wrong-token"}}, {{"Authorization", "Basic " + std::string(kManagementToken)}},
           {{"Authorization", "Bearer "}}, {{"Authorization", kAuth + "x"}}}) {
    for (const char* target : {"/manage/projects", "/manage/tokens", "/manage/audit", "/manage/nowhere"}) {
      auto r = a.proxy->request("GET", target, "", headers);
      INFO(target << " -> " << r.body);
      CHECK(r.status == 401);
      CHECK(r.header("Content-Type") == "application/json");
      auto j = Json::parse(r.body);
      CHECK(j.at("code") == "unauthorized");
      CHECK(!j.at("error").get<std::string>().empty());
      CHECK_THAT(r.body, !Contains(kManagementToken));
    }
  }
  // A mutation without the token changes nothing.
  auto r = a.proxy->request("POST", "/manage/projects", R"({"name":"x","api_key":"sk-1234567890"})");
  CHECK(r.status == 401);
  CHECK(a.count("projects") == 0);

  // With the token: known paths answer, unknown /manage paths are JSON 404s.
  CHECK(a.call("GET", "/manage/projects").status == 200);
  for (const char* target : {"/manage", "/manage/", "/manage/nowhere", "/manage/projects/a/b", "/manage/tokens/a/b"}) {
    auto nf = a.call("GET", target);
    INFO(target);
    CHECK(nf.status == 404);
    CHECK(Json::parse(nf.body).at("code") == "not_found");
  }
}
ADMIN_CASE("management API: missing or wrong token is 401, unknown paths 404", auth_is_required)

void project_crud(Kind kind) {
  Admin a(kind);
  const std::string key = "sk-proj-abcdefghijklmnopwxyz";
  auto created = a.create_project("alpha", key);
  CHECK(keys(created) == kProjectFields);
  CHECK(created["name"] == "alpha");
  CHECK(created["api_key"] == key);  // shown once, as sent
  CHECK(created["is_active"] == true);
  CHECK(created["deactivated_at"].is_null());
  CHECK(is_rfc3339_utc(created["created_at"]));
  CHECK(is_rfc3339_utc(created["updated_at"]));
  const std::string id = created["id"];
  CHECK(a.count("projects WHERE id = '" + id + "'") == 1);

  // Reads obfuscate the key like the reference: first 8 + "..." + last 4.
  auto got = a.ok("GET", "/manage/projects/" + id, "", 200);
  CHECK(keys(got) == kProjectDetailFields);
  CHECK(got["rate_limit_rpm"].is_null());
  CHECK(got["usage"] == Json::parse(
                           R"({"requests":0,"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"cache_hits":0})"));
  CHECK(got["api_key"] == "sk-proj-...wxyz");
  CHECK(got["created_at"] == created["created_at"]);
  auto list_response = a.call("GET", "/manage/projects");
  REQUIRE(list_response.status == 200);
  CHECK_THAT(list_response.body, !Contains(key));
  auto list = Json::parse(list_response.body);
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 1);
  auto got_without_usage = got;
  got_without_usage.erase("usage");
  CHECK(list[0] == got_without_usage);
  CHECK(list_response.header("X-Total-Count") == "1");

  SECTION("PATCH updates fields and obfuscates the key in its answer") {
    auto patched = a.ok("PATCH", "/manage/projects/" + id,
                        R"({"name":"alpha-2","api_key":"sk-other-0123456789-last"})", 200);
    CHECK(keys(patched) == kProjectFields);
    CHECK(patched["name"] == "alpha-2");
    CHECK(patched["api_key"] == "sk-other...last");
    CHECK(parse_utc(patched["updated_at"]) >= parse_utc(created["updated_at"]));
    CHECK(a.db.query("SELECT name FROM projects WHERE id = '" + id + "'") == "alpha-2");

    auto off = a.ok("PATCH", "/manage/projects/" + id, R"({"is_active":false})", 200);
    CHECK(off["is_active"] == false);
    CHECK(is_rfc3339_utc(off["deactivated_at"]));
    CHECK(a.count("projects WHERE NOT is_active") == 1);
    auto on = a.ok("PATCH", "/manage/projects/" + id, R"({"is_active":true})", 200);
    CHECK(on["is_active"] == true);
    CHECK(on["deactivated_at"].is_null());
  }

  SECTION("DELETE is refused with 405 and the project stays") {
    auto r = a.call("DELETE", "/manage/projects/" + id);
    CHECK(r.status == 405);
    CHECK(Json::parse(r.body) ==
          Json{{"error", "project deletion is not permitted"}, {"code", "method_not_allowed"}});
    CHECK(a.count("projects") == 1);
  }

  SECTION("short keys are masked entirely or almost entirely") {
    auto short_key = a.create_project("short", "abcdefghij");
    CHECK(a.ok("GET", "/manage/projects/" + short_key["id"].get<std::string>(), "", 200)["api_key"] == "ab********");
  }

  SECTION("pagination of the project list") {
    for (int i = 0; i < 4; ++i) a.create_project("p" + std::to_string(i));
    auto page1 = a.call("GET", "/manage/projects?page=1&page_size=2");
    auto page3 = a.call("GET", "/manage/projects?page=3&page_size=2");
    auto page4 = a.call("GET", "/manage/projects?page=4&page_size=2");
    CHECK(Json::parse(page1.body).size() == 2);
    CHECK(Json::parse(page3.body).size() == 1);
    CHECK(Json::parse(page4.body).empty());
    CHECK(page1.header("X-Total-Count") == "5");
    CHECK(page1.header("X-Total-Pages") == "3");
    CHECK(page1.header("X-Page-Size") == "2");
    // By name, like the reference: "alpha" < "p0" < ... < "p3".
    CHECK(Json::parse(page1.body)[0]["name"] == "alpha");
    CHECK(Json::parse(page1.body)[1]["name"] == "p0");
    CHECK(Json::parse(page3.body)[0]["name"] == "p3");
  }
}
ADMIN_CASE("management API: project create, read, list, update, delete refused", project_crud)

void api_key_encrypted_at_rest(Kind kind) {
  Admin a(kind, [](Environment& env) { env["ENCRYPTION_KEY"] = kEncryptionKey; });
  const std::string key = "sk-live-secret-key-0123456789";
  auto created = a.create_project("encrypted", key);
  const std::string id = created["id"];
  auto stored = a.db.query("SELECT api_key FROM projects WHERE id = '" + id + "'");
  CHECK(stored.rfind("enc:v1:", 0) == 0);
  CHECK_THAT(stored, !Contains(key));
  CHECK(a.ok("GET", "/manage/projects/" + id, "", 200)["api_key"] == "sk-live-...6789");
}
ADMIN_CASE("management API: api_key is encrypted at rest with ENCRYPTION_KEY", api_key_encrypted_at_rest)

void token_crud(Kind kind) {
  Admin a(kind);
  const std::string project = a.create_project("tokens")["id"];
  const auto before = std::chrono::system_clock::now();
  auto created = a.create_token(project, {{"duration_minutes", 90}});
  CHECK(keys(created) ==
        std::set<std::string>{"id", "token", "expires_at", "max_requests", "max_tokens", "rate_limit_rpm"});
  const std::string secret = created["token"];
  const std::string id = created["id"];
  CHECK(std::regex_match(secret, std::regex("^sk-[A-Za-z0-9_-]{22}$")));
  CHECK(created["max_requests"].is_null());
  REQUIRE(is_rfc3339_utc(created["expires_at"]));
  const auto expires = parse_utc(created["expires_at"]);
  CHECK(expires >= before + std::chrono::minutes(90) - 2s);
  CHECK(expires <= std::chrono::system_clock::now() + std::chrono::minutes(90) + 2s);

  // Stored only as a hash and a hint.
  CHECK(a.count("tokens WHERE id = '" + id + "'") == 1);
  CHECK(a.count("tokens WHERE token_hash = '" + secret + "' OR token_hint = '" + secret + "'") == 0);
  CHECK(a.db.query("SELECT length(token_hash) FROM tokens WHERE id = '" + id + "'") == "64");
  const std::string hint = "sk-" + secret.substr(3, 4) + "..." + secret.substr(secret.size() - 4);

  auto got_response = a.call("GET", "/manage/tokens/" + id);
  REQUIRE(got_response.status == 200);
  CHECK_THAT(got_response.body, !Contains(secret));
  auto got = Json::parse(got_response.body);
  CHECK(keys(got) == kTokenFields);
  CHECK(got["id"] == id);
  CHECK(got["token_hint"] == hint);
  CHECK(got["project_id"] == project);
  CHECK(got["expires_at"] == created["expires_at"]);
  CHECK(got["is_active"] == true);
  CHECK(got["deactivated_at"].is_null());
  CHECK(got["request_count"] == 0);
  CHECK(got["max_requests"].is_null());
  CHECK(got["max_tokens"].is_null());
  CHECK(got["rate_limit_rpm"].is_null());
  CHECK(got["prompt_tokens"] == 0);
  CHECK(got["completion_tokens"] == 0);
  CHECK(got["total_tokens"] == 0);
  CHECK(is_rfc3339_utc(got["created_at"]));
  CHECK(got["last_used_at"].is_null());
  CHECK(got["cache_hit_count"] == 0);

  auto quota = a.create_token(project, {{"max_requests", 10}});
  CHECK(quota["max_requests"] == 10);
  CHECK(a.create_token(project, {{"max_requests", 0}})["max_requests"].is_null());
  CHECK(a.create_token(project, {{"max_requests", nullptr}})["max_requests"].is_null());

  SECTION("list, filtered by project, never shows a secret") {
    const std::string other = a.create_project("other")["id"];
    a.create_token(other);
    for (const std::string& target : {"/manage/tokens?project_id=" + project, "/manage/tokens?projectId=" + project}) {
      auto r = a.call("GET", target);
      REQUIRE(r.status == 200);
      CHECK_THAT(r.body, !Contains(secret));
      CHECK_THAT(r.body, !Contains(quota["token"].get<std::string>()));
      auto list = Json::parse(r.body);
      REQUIRE(list.size() == 4);
      for (const auto& t : list) {
        CHECK(keys(t) == kTokenFields);
        CHECK(t["project_id"] == project);
      }
      CHECK(r.header("X-Total-Count") == "4");
    }
    CHECK(Json::parse(a.call("GET", "/manage/tokens").body).size() == 5);
    CHECK(Json::parse(a.call("GET", "/manage/tokens?page_size=2&page=3").body).size() == 1);
    CHECK(Json::parse(a.call("GET", "/manage/tokens?project_id=no-such-project").body).empty());
  }

  SECTION("list by state: active=true keeps the usable tokens, active=false the others") {
    REQUIRE(a.call("DELETE", "/manage/tokens/" + quota["id"].get<std::string>()).status == 204);
    auto usable = a.call("GET", "/manage/tokens?active=true&page=1&page_size=1&project_id=" + project);
    REQUIRE(usable.status == 200);
    CHECK(usable.header("X-Total-Count") == "3");
    CHECK(Json::parse(usable.body).size() == 1);
    auto other = Json::parse(a.call("GET", "/manage/tokens?active=false").body);
    REQUIRE(other.size() == 1);
    CHECK(other[0]["id"] == quota["id"]);
    a.refused("GET", "/manage/tokens?active=yes", "", 400, "invalid_request", "active");
  }

  SECTION("PATCH max_requests and is_active") {
    auto limited = a.ok("PATCH", "/manage/tokens/" + id, R"({"max_requests":5})", 200);
    CHECK(keys(limited) == kTokenFields);
    CHECK(limited["max_requests"] == 5);
    CHECK(a.db.query("SELECT max_requests FROM tokens WHERE id = '" + id + "'") == "5");
    CHECK(a.ok("PATCH", "/manage/tokens/" + id, R"({"max_requests":0})", 200)["max_requests"].is_null());
    a.ok("PATCH", "/manage/tokens/" + id, R"({"max_requests":7})", 200);
    CHECK(a.ok("PATCH", "/manage/tokens/" + id, R"({"max_requests":null})", 200)["max_requests"].is_null());
    CHECK(a.count("tokens WHERE id = '" + id + "' AND max_requests IS NULL") == 1);
    auto off = a.ok("PATCH", "/manage/tokens/" + id, R"({"is_active":false})", 200);
    CHECK(off["is_active"] == false);
    CHECK(is_rfc3339_utc(off["deactivated_at"]));
    auto on = a.ok("PATCH", "/manage/tokens/" + id, R"({"is_active":true})", 200);
    CHECK(on["is_active"] == true);
    CHECK(on["deactivated_at"].is_null());
  }

  SECTION("DELETE revokes softly and idempotently") {
    auto r = a.call("DELETE", "/manage/tokens/" + id);
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    CHECK(a.call("DELETE", "/manage/tokens/" + id).status == 204);
    auto revoked = a.ok("GET", "/manage/tokens/" + id, "", 200);
    CHECK(revoked["is_active"] == false);
    CHECK(is_rfc3339_utc(revoked["deactivated_at"]));
    CHECK(a.count("tokens WHERE id = '" + id + "' AND NOT is_active") == 1);
    a.refused("DELETE", "/manage/tokens/00000000-0000-4000-8000-000000000000", "", 404, "not_found", "token");
  }

  SECTION("an inactive project gets no new tokens") {
    a.ok("PATCH", "/manage/projects/" + project, R"({"is_active":false})", 200);
    const int tokens = a.count("tokens");
    a.refused("POST", "/manage/tokens", Json{{"project_id", project}, {"duration_minutes", 5}}.dump(), 403,
              "project_inactive", "inactive");
    CHECK(a.count("tokens") == tokens);
  }
}
ADMIN_CASE("management API: token create, read, list, update, revoke", token_crud)

void bad_input_changes_nothing(Kind kind) {
  Admin a(kind);
  const std::string project = a.create_project("stable")["id"];
  const std::string token = a.create_token(project)["id"];
  const std::string unknown = "00000000-0000-4000-8000-000000000000";
  auto snapshot = [&] {
    return a.db.query("SELECT name, api_key, is_active, updated_at FROM projects ORDER BY id") + "\n" +
           a.db.query("SELECT id, is_active, max_requests, expires_at FROM tokens ORDER BY id");
  };
  const auto before = snapshot();
  const std::string p = "/manage/projects";
  const std::string t = "/manage/tokens";

  // Invalid JSON names the parse problem.
  a.refused("POST", p, "{bad", 400, "invalid_json", "parse error");
  a.refused("POST", p, "", 400, "invalid_json", "empty");
  a.refused("POST", t, R"({"project_id":")", 400, "invalid_json", "invalid JSON");
  a.refused("PATCH", p + "/" + project, "{\"name\":}", 400, "invalid_json", "invalid JSON");
  a.refused("POST", p, "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", 400, "invalid_json", "nested");
  // Valid JSON of the wrong shape names the field.
  a.refused("POST", p, "[1,2]", 400, "invalid_request", "JSON object");
  a.refused("POST", p, R"({"api_key":"sk-1234567890abc"})", 400, "invalid_request", "\"name\"");
  a.refused("POST", p, R"({"name":"x"})", 400, "invalid_request", "\"api_key\"");
  a.refused("POST", p, R"({"name":5,"api_key":"sk-1234567890abc"})", 400, "invalid_request", "\"name\"");
  a.refused("POST", p, R"({"name":"x","api_key":null})", 400, "invalid_request", "\"api_key\"");
  a.refused("POST", p, R"({"name":"  ","api_key":"sk-1234567890abc"})", 400, "invalid_request", "\"name\"");
  a.refused("POST", p, R"({"name":"x","api_key":"sk-proj-...wxyz"})", 400, "invalid_request", "\"api_key\"");
  a.refused("POST", p, R"({"name":"x","extra":1})", 400, "invalid_request", "\"api_key\"");
  a.refused("POST", p, R"({"name":"line\nbreak","api_key":"sk-1234567890abc"})", 400, "invalid_request",
            "\"name\"");
  a.refused("POST", t, Json{{"project_id", project}}.dump(), 400, "invalid_request", "\"duration_minutes\"");
  for (const Json& minutes : {Json("60"), Json(0), Json(-5), Json(525601), Json(1.5), Json(true), Json(nullptr)}) {
    a.refused("POST", t, Json{{"project_id", project}, {"duration_minutes", minutes}}.dump(), 400,
              "invalid_request", "field \"duration_minutes\" must be an integer from 1 to 525600");
  }
  for (const Json& max : {Json(-1), Json("5"), Json(2.5), Json(false)}) {
    a.refused("POST", t, Json{{"project_id", project}, {"duration_minutes", 5}, {"max_requests", max}}.dump(),
              400, "invalid_request", "\"max_requests\"");
  }
  a.refused("POST", t, R"({"duration_minutes":5})", 400, "invalid_request", "\"project_id\"");
  a.refused("POST", t, R"({"project_id":42,"duration_minutes":5})", 400, "invalid_request", "\"project_id\"");
  a.refused("POST", t, R"({"project_id":"x","duration_minutes":"5","maxRequests":3})", 400, "invalid_request",
            "\"duration_minutes\"");
  a.refused("PATCH", p + "/" + project, R"({"is_active":"no"})", 400, "invalid_request", "\"is_active\"");
  a.refused("PATCH", p + "/" + project, R"({})", 400, "invalid_request", "no fields");
  a.refused("PATCH", p + "/" + project, R"({"revoke_tokens":true})", 400, "invalid_request", "\"revoke_tokens\"");
  a.refused("PATCH", p + "/" + project, R"({"is_active":true,"revoke_tokens":true})", 400, "invalid_request",
            "\"revoke_tokens\"");
  a.refused("PATCH", p + "/" + project, R"({"name":""})", 400, "invalid_request", "\"name\"");
  a.refused("PATCH", t + "/" + token, R"({"max_requests":-3})", 400, "invalid_request", "\"max_requests\"");
  a.refused("PATCH", t + "/" + token, R"({"is_active":1})", 400, "invalid_request", "\"is_active\"");
  a.refused("PATCH", t + "/" + token, R"({})", 400, "invalid_request", "no fields");
  // Unknown ids are 404 wherever they appear.
  a.refused("POST", t, Json{{"project_id", unknown}, {"duration_minutes", 5}}.dump(), 404, "not_found", unknown);
  a.refused("GET", p + "/" + unknown, "", 404, "not_found", unknown);
  a.refused("PATCH", p + "/" + unknown, R"({"name":"y"})", 404, "not_found", unknown);
  a.refused("POST", p + "/" + unknown + "/tokens/revoke", "", 404, "not_found", unknown);
  a.refused("GET", t + "/" + unknown, "", 404, "not_found", unknown);
  a.refused("PATCH", t + "/" + unknown, R"({"is_active":false})", 404, "not_found", unknown);
  a.refused("DELETE", t + "/" + unknown, "", 404, "not_found", unknown);
  a.refused("GET", "/manage/audit/" + unknown, "", 404, "not_found", unknown);
  a.refused("GET", t + "/%27%20OR%201=1", "", 404, "not_found", "not found");
  // Pagination and filters name the parameter.
  for (const char* q : {"page=0", "page=-1", "page=abc", "page=", "page=1.5"}) {
    a.refused("GET", p + "?" + q, "", 400, "invalid_request", "\"page\"");
    a.refused("GET", t + "?" + q, "", 400, "invalid_request", "\"page\"");
    a.refused("GET", std::string("/manage/audit?") + q, "", 400, "invalid_request", "\"page\"");
  }
  for (const char* q : {"page_size=0", "page_size=101", "page_size=x"}) {
    a.refused("GET", p + "?" + q, "", 400, "invalid_request", "\"page_size\"");
    a.refused("GET", std::string("/manage/audit?") + q, "", 400, "invalid_request", "\"page_size\"");
  }
  a.refused("GET", "/manage/audit?start_time=yesterday", "", 400, "invalid_request", "\"start_time\"");
  a.refused("GET", "/manage/audit?end_time=2026-13-01T00:00:00Z", "", 400, "invalid_request", "\"end_time\"");
  a.refused("GET", "/manage/audit?outcome=maybe", "", 400, "invalid_request", "\"outcome\"");
  // Wrong methods on known paths.
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", p}, {"DELETE", p}, {"POST", p + "/" + project}, {"GET", p + "/" + project + "/tokens/revoke"},
           {"PUT", t}, {"POST", t + "/" + token}, {"POST", "/manage/audit"}, {"DELETE", "/manage/audit/x"}}) {
    auto r = a.call(method, target);
    INFO(method << " " << target);
    CHECK(r.status == 405);
    CHECK(Json::parse(r.body).at("code") == "method_not_allowed");
    CHECK(!r.header("Allow").empty());
  }

  CHECK(snapshot() == before);
  CHECK(a.count("projects") == 1);
  CHECK(a.count("tokens") == 1);
}
ADMIN_CASE("management API: bad input is refused with a message naming the field and changes nothing",
           bad_input_changes_nothing)

void duplicate_names(Kind kind) {
  Admin a(kind);
  a.create_project("dup");
  a.refused("POST", "/manage/projects", R"({"name":"dup","api_key":"sk-1234567890abcdef"})", 409, "conflict",
            "\"dup\"");
  CHECK(a.count("projects") == 1);
  const std::string other = a.create_project("other")["id"];
  a.refused("PATCH", "/manage/projects/" + other, R"({"name":"dup","is_active":false,"revoke_tokens":true})", 409,
            "conflict", "\"dup\"");
  CHECK(a.db.query("SELECT name FROM projects WHERE id = '" + other + "'") == "other");
  CHECK(a.count("projects WHERE NOT is_active") == 0);
  // Renaming a project to its own name is not a conflict.
  CHECK(a.ok("PATCH", "/manage/projects/" + other, R"({"name":"other"})", 200)["name"] == "other");
}
ADMIN_CASE("management API: duplicate project names are 409 and change nothing", duplicate_names)

void revoke_counts(Kind kind) {
  Admin a(kind);
  const std::string project = a.create_project("bulk")["id"];
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(a.create_token(project)["id"]);
  const std::string bystander = a.create_project("bystander")["id"];
  const std::string kept = a.create_token(bystander)["id"];
  REQUIRE(a.call("DELETE", "/manage/tokens/" + ids[0]).status == 204);

  auto first = a.ok("POST", "/manage/projects/" + project + "/tokens/revoke", "", 200);
  CHECK(first == Json{{"revoked_count", 2}, {"already_revoked_count", 1}, {"total_tokens", 3}});
  auto again = a.ok("POST", "/manage/projects/" + project + "/tokens/revoke", "", 200);
  CHECK(again == Json{{"revoked_count", 0}, {"already_revoked_count", 3}, {"total_tokens", 3}});
  CHECK(a.count("tokens WHERE project_id = '" + project + "' AND is_active") == 0);
  CHECK(a.count("tokens WHERE id = '" + kept + "' AND is_active") == 1);
  CHECK(a.count("projects WHERE NOT is_active") == 0);  // the project itself stays active

  SECTION("deactivating a project with revoke_tokens revokes its tokens") {
    a.create_token(bystander);
    auto r = a.ok("PATCH", "/manage/projects/" + bystander, R"({"is_active":false,"revoke_tokens":true})", 200);
    CHECK(r["is_active"] == false);
    CHECK(r["tokens_revoked"] == Json{{"revoked_count", 2}, {"already_revoked_count", 0}, {"total_tokens", 2}});
    CHECK(a.count("tokens WHERE project_id = '" + bystander + "' AND is_active") == 0);
  }
  SECTION("deactivating without revoke_tokens keeps the tokens") {
    auto r = a.ok("PATCH", "/manage/projects/" + bystander, R"({"is_active":false})", 200);
    CHECK(!r.contains("tokens_revoked"));
    CHECK(a.count("tokens WHERE id = '" + kept + "' AND is_active") == 1);
  }
}
ADMIN_CASE("management API: bulk revoke reports counts", revoke_counts)

void audit_trail(Kind kind) {
  Admin a(kind);
  const std::string key = "sk-proj-audit-secret-key-1234";
  const auto start = std::chrono::system_clock::now() - 2s;
  test::RequestHeaders headers{{"X-Request-ID", "audit-req-1"}, {"User-Agent", "admin-test/1.0"}};
  auto created = a.call("POST", "/manage/projects", Json{{"name", "audited"}, {"api_key", key}}.dump(), headers);
  REQUIRE(created.status == 201);
  const std::string project = Json::parse(created.body)["id"];
  auto token = a.create_token(project, {{"max_requests", 3}});
  const std::string token_id = token["id"];
  const std::string secret = token["token"];
  a.ok("PATCH", "/manage/tokens/" + token_id, R"({"max_requests":4})", 200);
  REQUIRE(a.call("DELETE", "/manage/tokens/" + token_id).status == 204);
  a.ok("PATCH", "/manage/projects/" + project, R"({"name":"audited-2"})", 200);
  a.ok("POST", "/manage/projects/" + project + "/tokens/revoke", "", 200);
  REQUIRE(a.call("POST", "/manage/projects", R"({"name":"audited-2","api_key":"sk-1234567890abcdef"})").status ==
          409);
  REQUIRE(a.call("DELETE", "/manage/projects/" + project).status == 405);

  auto all = a.audit_until("actor=management_api", 8);
  const auto& events = all["events"];
  REQUIRE(events.size() == 8);
  const std::vector<std::string> newest_first{"project.delete", "project.create",     "token.revoke_batch",
                                              "project.update", "token.revoke",       "token.update",
                                              "token.create",   "project.create"};
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO(i << " " << events[i].dump());
    CHECK(events[i]["action"] == newest_first[i]);
    CHECK(events[i]["actor"] == "management_api");
    if (i > 0) CHECK(events[i - 1]["timestamp"].get<std::string>() >= events[i]["timestamp"].get<std::string>());
  }
  CHECK(all["pagination"] == Json{{"page", 1}, {"page_size", 20}, {"total_count", 8}, {"total_pages", 1},
                                  {"has_next", false}, {"has_prev", false}});
  // Secrets never reach the audit trail.
  CHECK_THAT(all.dump(), !Contains(key));
  CHECK_THAT(all.dump(), !Contains(secret));

  // The first create carries the request's details.
  const auto& create = events[7];
  CHECK(create["outcome"] == "success");
  CHECK(create["project_id"] == project);
  CHECK(create["request_id"] == "audit-req-1");
  CHECK(create["client_ip"] == "127.0.0.1");
  CHECK(create["method"] == "POST");
  CHECK(create["path"] == "/manage/projects");
  CHECK(create["user_agent"] == "admin-test/1.0");
  REQUIRE(create["metadata"].is_string());
  CHECK(Json::parse(create["metadata"].get<std::string>())["name"] == "audited");
  CHECK(is_rfc3339_utc(create["timestamp"]));
  CHECK(events[6]["token_id"] == token_id);
  CHECK(events[6]["project_id"] == project);
  CHECK(events[2]["metadata"].is_string());
  CHECK(Json::parse(events[2]["metadata"].get<std::string>())["revoked_count"] == 0);

  // Failures are recorded with a reason.
  const auto& conflict = events[1];
  CHECK(conflict["outcome"] == "failure");
  CHECK_THAT(conflict["reason"].get<std::string>(), Contains("already exists"));
  CHECK(events[0]["outcome"] == "failure");
  CHECK(events[0]["project_id"] == project);

  auto one = a.ok("GET", "/manage/audit/" + create["id"].get<std::string>(), "", 200);
  CHECK(one == create);

  // Filters.
  auto by_action = a.ok("GET", "/manage/audit?action=project.create", "", 200);
  CHECK(by_action["pagination"]["total_count"] == 2);
  auto failures = a.ok("GET", "/manage/audit?outcome=failure", "", 200);
  CHECK(failures["pagination"]["total_count"] == 2);
  auto by_project = a.ok("GET", "/manage/audit?project_id=" + project + "&action=token.create", "", 200);
  CHECK(by_project["pagination"]["total_count"] == 1);
  CHECK(a.ok("GET", "/manage/audit?request_id=audit-req-1", "", 200)["pagination"]["total_count"] == 1);
  CHECK(a.ok("GET", "/manage/audit?method=PATCH", "", 200)["pagination"]["total_count"] == 2);
  CHECK(a.ok("GET", "/manage/audit?search=admin-test", "", 200)["pagination"]["total_count"] == 1);
  CHECK(a.ok("GET", "/manage/audit?search=%25%27%20OR%201%3D1%20--", "", 200)["pagination"]["total_count"] == 0);
  const auto future = format_utc(std::chrono::system_clock::now() + std::chrono::hours(1));
  const auto past = format_utc(start - std::chrono::hours(1));
  CHECK(a.ok("GET", "/manage/audit?start_time=" + future, "", 200)["pagination"]["total_count"] == 0);
  CHECK(a.ok("GET", "/manage/audit?end_time=" + past, "", 200)["pagination"]["total_count"] == 0);
  CHECK(a.ok("GET", "/manage/audit?actor=management_api&start_time=" + format_utc(start) + "&end_time=" + future, "",
             200)["pagination"]["total_count"] == 8);
  // RFC 3339 with an offset.
  CHECK(a.ok("GET", "/manage/audit?actor=management_api&start_time=2000-01-01T01:00:00%2B01:00", "",
             200)["pagination"]["total_count"] == 8);

  // Pagination.
  auto page1 = a.ok("GET", "/manage/audit?actor=management_api&page_size=3", "", 200);
  auto page3 = a.ok("GET", "/manage/audit?actor=management_api&page_size=3&page=3", "", 200);
  CHECK(page1["events"].size() == 3);
  CHECK(page1["events"][0]["id"] == events[0]["id"]);
  CHECK(page1["pagination"] == Json{{"page", 1}, {"page_size", 3}, {"total_count", 8}, {"total_pages", 3},
                                    {"has_next", true}, {"has_prev", false}});
  CHECK(page3["events"].size() == 2);
  CHECK(page3["events"][1]["id"] == events[7]["id"]);
  CHECK(page3["pagination"]["has_next"] == false);
  CHECK(page3["pagination"]["has_prev"] == true);
}
ADMIN_CASE("management API: mutations are audited, audit list filters and paginates newest first", audit_trail)

void names_stored_verbatim(Kind kind) {
  Admin a(kind);
  const std::vector<std::string> names{"Robert'); DROP TABLE projects;--", "Ünïcödé 项目 🚀",
                                       "quote\"back\\slash %_ *", "1 OR 1=1; SELECT * FROM tokens"};
  std::vector<std::string> ids;
  for (const auto& name : names) {
    auto created = a.create_project(name);
    CHECK(created["name"] == name);
    ids.push_back(created["id"]);
  }
  CHECK(a.count("projects") == static_cast<int>(names.size()));
  for (std::size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    CHECK(a.ok("GET", "/manage/projects/" + ids[i], "", 200)["name"] == names[i]);
    CHECK(a.db.query("SELECT name FROM projects WHERE id = '" + ids[i] + "'") == names[i]);
  }
  // The raw bytes are returned, not \u escapes.
  CHECK_THAT(a.call("GET", "/manage/projects/" + ids[1]).body, Contains("Ünïcödé 项目 🚀"));
  // Renames keep them verbatim too, and a name differing only in case or accents is a different name.
  CHECK(a.ok("PATCH", "/manage/projects/" + ids[1], Json{{"name", "ünïcödé 项目 🚀"}}.dump(), 200)["name"] ==
        "ünïcödé 项目 🚀");
  const std::string token = a.create_token(ids[0])["id"];
  CHECK(a.count("tokens WHERE id = '" + token + "'") == 1);
}
ADMIN_CASE("management API: SQL metacharacters and non-ASCII names are stored verbatim", names_stored_verbatim)

}  // namespace
