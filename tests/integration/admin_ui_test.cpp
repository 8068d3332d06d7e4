// The admin web UI's files as the binary serves them (SPEC §15): every file of web/admin/ byte for byte with its
// content type, the security headers on every /admin answer, revalidation, and ADMIN_UI_ENABLED=false. What the
// pages do in a browser is tests/browser/admin_ui.cjs, run by admin_ui_browser_test.cpp.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "integration/binary_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

namespace fs = std::filesystem;

const fs::path kWebRoot = fs::path(LLMPROXY_SOURCE_DIR) / "web" / "admin";

std::string read_web_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Every file under web/admin/, as the path it is served at below /admin/.
std::vector<std::string> web_files() {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(kWebRoot)) {
    if (entry.is_regular_file()) files.push_back(fs::relative(entry.path(), kWebRoot).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string expected_type(const std::string& path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "?";
}

// Exactly the policy docs/admin-ui.md and docs/security.md state: only this origin's files, no inline script or
// style, no form submissions, no framing, and Trusted Types without any policy (no script can write HTML).
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; "
    "trusted-types 'none'";

void check_security_headers(const test::HttpResponse& r) {
  CHECK(r.header("Content-Security-Policy") == kPolicy);
  CHECK(r.header("X-Frame-Options") == "DENY");
  CHECK(r.header("Referrer-Policy") == "no-referrer");
  CHECK(r.header("X-Content-Type-Options") == "nosniff");
  CHECK(r.header("Cross-Origin-Opener-Policy") == "same-origin");
  CHECK(r.header("Cross-Origin-Resource-Policy") == "same-origin");
}

struct UiFixture {
  TempDir dir;
  TestDatabase db{TestDatabase::Kind::sqlite};
  std::unique_ptr<Proxy> proxy;

  explicit UiFixture(const std::string& enabled = "") {
    auto env = base_env(dir);
    db.apply(env);
    if (!enabled.empty()) env["ADMIN_UI_ENABLED"] = enabled;
    proxy = std::make_unique<Proxy>(env);
  }
};

TEST_CASE("admin UI: every file of web/admin/ is served byte for byte, typed, with the security headers",
          "[admin_ui]") {
  UiFixture f;
  const auto files = web_files();
  REQUIRE(std::find(files.begin(), files.end(), "index.html") != files.end());
  std::set<std::string> etags;
  for (const auto& path : files) {
    INFO(path);
    auto r = f.proxy->get("/admin/" + path);
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == expected_type(path));
    CHECK(r.body == read_web_file(kWebRoot / path));
    CHECK(r.header("Cache-Control") == "no-cache");
    CHECK(std::regex_match(r.header("ETag"), std::regex("\"[0-9a-f]{16}\"")));
    etags.insert(r.header("ETag"));
    check_security_headers(r);
  }
  CHECK(etags.size() == files.size());  // one validator per content

  auto index = f.proxy->get("/admin/");
  REQUIRE(index.status == 200);
  CHECK(index.body == read_web_file(kWebRoot / "index.html"));
  check_security_headers(index);
  auto metrics = f.proxy->get("/metrics");
  for (int i = 0; i < 50 && metrics.body.find("route=\"admin_ui\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    metrics = f.proxy->get("/metrics");
  }
  CHECK_THAT(metrics.body, Contains("llm_proxy_requests_total{route=\"admin_ui\",status=\"200\"}"));
}

TEST_CASE("admin UI: redirect, HEAD, revalidation, wrong methods and unknown paths", "[admin_ui]") {
  UiFixture f;
  auto redirect = f.proxy->get("/admin");
  CHECK(redirect.status == 308);
  CHECK(redirect.header("Location") == "admin/");  // relative: /admin -> /admin/, /prefix/admin -> /prefix/admin/
  check_security_headers(redirect);

  auto full = f.proxy->get("/admin/index.html");
  REQUIRE(full.status == 200);
  const std::string etag = full.header("ETag");
  auto head = f.proxy->request("HEAD", "/admin/");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.header("Content-Length") == std::to_string(full.body.size()));
  CHECK(head.header("ETag") == etag);

  for (const std::string& validator : {etag, "\"other\", " + etag, "W/" + etag, std::string("*")}) {
    INFO(validator);
    auto cached = f.proxy->get("/admin/", {{"If-None-Match", validator}});
    CHECK(cached.status == 304);
    CHECK(cached.body.empty());
    CHECK(cached.header("ETag") == etag);
    check_security_headers(cached);
  }
  CHECK(f.proxy->get("/admin/", {{"If-None-Match", "\"0000000000000000\""}}).status == 200);

  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"}) {
    INFO(method);
    auto r = f.proxy->request(method, "/admin/index.html", "x");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, HEAD");
    check_security_headers(r);
    CHECK(f.proxy->request(method, "/admin", "x").status == 405);
  }
  // Errors the connection answers itself, before any handler, carry the headers too.
  auto too_large = f.proxy->request("POST", "/admin/", "", {{"Content-Length", "999999999"}});
  CHECK(too_large.status == 413);
  check_security_headers(too_large);
  auto not_admin = f.proxy->request("POST", "/manage/projects", "", {{"Content-Length", "999999999"}});
  CHECK(not_admin.status == 413);
  CHECK_FALSE(not_admin.has_header("Content-Security-Policy"));

  // Files are looked up in the embedded table, never on disk: no path reaches anything else.
  for (const std::string target :
       {"/admin/nope.js", "/admin/js/", "/admin/../manage/projects", "/admin/%2e%2e/CMakeLists.txt",
        "/admin/js/../index.html", "/admin//index.html", "/admin/index.html/", "/admin/INDEX.HTML",
        "/admin/../../etc/passwd", "/adminx"}) {
    INFO(target);
    auto r = f.proxy->get(target);
    CHECK(r.status == 404);
    if (target != "/adminx") check_security_headers(r);
  }
}

TEST_CASE("admin UI: ADMIN_UI_ENABLED=false serves nothing at /admin, the API stays", "[admin_ui]") {
  UiFixture f("false");
  CHECK(f.proxy->get("/admin/").status == 404);
  CHECK(f.proxy->get("/admin").status == 404);
  CHECK(f.proxy->get("/admin/index.html").status == 404);
  CHECK(f.proxy->manage("GET", "/manage/projects").status == 200);
}

TEST_CASE("admin UI: the pages load only files that exist and never write HTML", "[admin_ui]") {
  const auto files = web_files();
  const std::set<std::string> served(files.begin(), files.end());
  // Every relative reference of index.html and every relative import of a module names an embedded file.
  const std::regex html_ref(R"re((?:src|href)="([^"#:]+)")re");
  const std::regex js_import(R"re((?:from|import)\s*\(?\s*['"](\.{1,2}/[^'"]+)['"])re");
  std::size_t references = 0;
  for (const auto& path : files) {
    const std::string text = read_web_file(kWebRoot / path);
    const bool html = path.ends_with(".html");
    if (!html && !path.ends_with(".js")) continue;
    const fs::path base = fs::path(path).parent_path();
    for (std::sregex_iterator it(text.begin(), text.end(), html ? html_ref : js_import), end; it != end; ++it) {
      const std::string target = (base / (*it)[1].str()).lexically_normal().generic_string();
      INFO(path << " references " << (*it)[1].str());
      CHECK(served.count(target) == 1);
      ++references;
    }
    if (html) {
      // No inline script or handler (the CSP would block it anyway: this finds the mistake before a browser).
      CHECK_FALSE(std::regex_search(text, std::regex(R"(<script(?![^>]*\ssrc=)[^>]*>)")));
      CHECK_FALSE(std::regex_search(text, std::regex(R"(\son[a-z]+\s*=)", std::regex::icase)));
      CHECK_FALSE(std::regex_search(text, std::regex(R"(\sstyle\s*=)", std::regex::icase)));
    } else {
      INFO(path);
      for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("}) {
        CHECK_THAT(text, !Contains(sink));
      }
    }
  }
  CHECK(references >= 3);  // the stylesheet, the main module and its imports at least
}

}  // namespace
