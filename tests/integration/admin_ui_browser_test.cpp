// The admin web UI in a real browser (SPEC §15, issue 14): headless Chromium (Debian `chromium`) driven by
// puppeteer-core (npm) through tests/browser/admin_ui.cjs, against the real binary with usage already in the
// database: two projects, 24 active tokens and a revoked one, 23 of them in one project to page through, and
// three proxied requests today. The script signs in (a wrong token first), checks the dashboard's counts and
// chart, creates a project (and is refused a duplicate) and a token, reads the secret once, pages through the
// tokens with the keyboard, finds and revokes the token, finds the audit event, tries an XSS through a project
// name, purges the cache and checks keyboard and phone use, saving screenshots. This side then checks through
// the API that what the browser did really happened.
// Needs Chromium and puppeteer-core in LLMPROXY_NPM_PREFIX (default ~/.cache/llm-proxy/npm), both installed by
// scripts/setup-sdk.sh (the README test command runs it); without them the test fails, naming the script.
// Screenshots: LLMPROXY_SCREENSHOT_DIR, default test-output/admin-ui/ in ctest's working directory (the build's
// tests/ folder).
#include <cstdlib>
#include <filesystem>

#include "integration/proxy_fixture.hpp"

namespace llmproxy::itest {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

/// The last day of GET /manage/usage (today, UTC): {"day", "requests", ...}. Usage reaches the table with the
/// periodic flush.
nlohmann::json usage_today(ProxyFixture& f) {
  auto r = f.proxy->manage("GET", "/manage/usage?group_by=day");
  REQUIRE(r.status == 200);
  return nlohmann::json::parse(r.body)["series"].back();
}

/// Waits out the last minute of a UTC day, so that the requests sent now and the chart read a few seconds later
/// fall on the same day.
void avoid_midnight() {
  const auto now = std::chrono::system_clock::now();
  const auto into_day = now - std::chrono::floor<std::chrono::days>(now);
  const auto left = std::chrono::days(1) - into_day;
  if (left < std::chrono::minutes(1)) std::this_thread::sleep_for(left + std::chrono::seconds(1));
}

TEST_CASE("admin UI in headless Chromium: sign in, chart, project, copy-once token, revoke, audit, XSS as text",
          "[admin_ui][browser]") {
  const std::string modules = env_or("LLMPROXY_NPM_PREFIX", env_or("HOME", "") + "/.cache/llm-proxy/npm") +
                              "/node_modules";
  const std::string chromium = env_or("LLMPROXY_CHROMIUM", "/usr/bin/chromium");
  INFO("run scripts/setup-sdk.sh to install Chromium and puppeteer-core (into " << modules << ")");
  REQUIRE(fs::exists(modules + "/puppeteer-core/package.json"));
  REQUIRE(fs::exists(chromium));

  ProxyFixture f(TestDatabase::Kind::sqlite);
  // Two projects; 24 active tokens (one with usage, 23 to page through) and one revoked, which the dashboard
  // must not count.
  const auto seeded = f.create_project("seeded-" + random_suffix());
  const auto token = f.create_token(seeded).at("token").get<std::string>();
  const auto revoked = f.create_token(seeded).at("id").get<std::string>();
  REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + revoked).status == 204);
  const auto paging = f.create_project("paging-" + random_suffix());
  for (int i = 0; i < 23; ++i) f.create_token(paging);
  avoid_midnight();
  constexpr int kRequests = 3;
  for (int i = 0; i < kRequests; ++i) REQUIRE(f.chat(token).status == 200);
  for (int i = 0; i < 100 && usage_today(f)["requests"].get<int>() < kRequests; ++i) std::this_thread::sleep_for(50ms);
  const auto today = usage_today(f);
  REQUIRE(today["requests"] == kRequests);

  const fs::path shots = env_or("LLMPROXY_SCREENSHOT_DIR", (fs::current_path() / "test-output" / "admin-ui").string());
  fs::remove_all(shots);
  const std::string project_name = "ui-" + random_suffix();
  Environment env{{"ADMIN_URL", "http://127.0.0.1:" + std::to_string(f.proxy->port()) + "/admin/"},
                  {"MANAGEMENT_TOKEN", kManagementToken},
                  {"SCREENSHOT_DIR", shots.string()},
                  {"EXPECTED_REQUESTS_TODAY", std::to_string(kRequests)},
                  {"EXPECTED_DAY", today["day"].get<std::string>()},
                  {"EXPECTED_PROJECTS", "2"},
                  {"EXPECTED_ACTIVE_TOKENS", "24"},
                  {"PAGING_PROJECT_ID", paging},
                  {"PROJECT_NAME", project_name},
                  {"CHROMIUM", chromium},
                  {"NODE_PATH", modules},
                  {"HOME", f.dir.path().string()}};
  auto [code, out] = test::run_command(
      {"node", std::string(LLMPROXY_SOURCE_DIR) + "/tests/browser/admin_ui.cjs"}, env, std::chrono::seconds(180));
  INFO(out);
  REQUIRE(code == 0);
  const auto start = out.rfind("{\"project_id\"");
  REQUIRE(start != std::string::npos);
  const auto result = nlohmann::json::parse(out.substr(start, out.find('\n', start) - start));

  // The project the browser created, under the exact name typed.
  const std::string project_id = result.at("project_id");
  auto project = f.proxy->manage("GET", "/manage/projects/" + project_id);
  REQUIRE(project.status == 200);
  CHECK(nlohmann::json::parse(project.body)["name"] == project_name);

  // Its token, revoked in the browser; the secret the browser showed was a real one of ours.
  const std::string token_id = result.at("token_id");
  auto t = f.proxy->manage("GET", "/manage/tokens/" + token_id);
  REQUIRE(t.status == 200);
  const auto tj = nlohmann::json::parse(t.body);
  CHECK(tj["project_id"] == project_id);
  CHECK(tj["is_active"] == false);
  CHECK(tj["max_requests"] == 5);
  CHECK(tj["max_tokens"] == 1000);  // edited in the browser
  CHECK(tj["token_hint"].get<std::string>().starts_with(result.at("secret_prefix").get<std::string>()));

  // The audit trail has the browser's create and revoke.
  auto audit = f.proxy->manage("GET", "/manage/audit?action=token.revoke&page_size=100");
  REQUIRE(audit.status == 200);
  const auto events = nlohmann::json::parse(audit.body)["events"];
  bool revoke_seen = false;
  for (const auto& e : events) revoke_seen |= e["token_id"] == token_id;
  CHECK(revoke_seen);

  // The XSS project was stored verbatim (the browser checked it rendered as text).
  auto xss = f.proxy->manage("GET", "/manage/projects/" + result.at("xss_project_id").get<std::string>());
  REQUIRE(xss.status == 200);
  CHECK(nlohmann::json::parse(xss.body)["name"].get<std::string>().starts_with("<img src=x onerror="));

  for (const char* shot : {"01-signin.png", "03-dashboard.png", "05-token-secret.png", "10-xss.png",
                           "12-phone-dashboard.png"}) {
    INFO(shot);
    CHECK(fs::file_size(shots / shot) > 1000);
  }
}

}  // namespace
}  // namespace llmproxy::itest
