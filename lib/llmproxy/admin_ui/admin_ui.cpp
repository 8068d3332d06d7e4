#include "llmproxy/admin_ui/admin_ui.hpp"

#include <algorithm>

#include "llmproxy/admin_ui/assets.hpp"

namespace llmproxy::admin_ui {

namespace net = boost::asio;

namespace {

// Only this origin's own files. No 'unsafe-inline' anywhere, so an injected <script> or on* attribute never runs;
// form-action 'none', so a form can never be submitted by the browser itself (with the token in a query string,
// say, if a script failed to load); require-trusted-types-for with no policy allowed, so no script, ours
// included, can assign HTML (innerHTML and friends throw): every value from the API is rendered as text.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; "
    "trusted-types 'none'";

constexpr std::string_view kPrefix = "/admin/";

server::Response plain(int status, std::string_view text) {
  server::Response r;
  r.status = status;
  r.headers.set("Content-Type", "text/plain; charset=utf-8");
  r.body = std::string(text) + "\n";
  return r;
}

bool get_or_head(const server::Request& request) { return request.method == "GET" || request.method == "HEAD"; }

/// True when the client's If-None-Match names `etag` (or is `*`): its copy is current.
bool not_modified(const server::Request& request, std::string_view etag) {
  std::string_view list = request.headers.get("If-None-Match");
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = server::trim_ows(list.substr(0, comma));
    if (item.starts_with("W/")) item.remove_prefix(2);  // weak comparison (RFC 9110 §13.1.2)
    if (item == etag || item == "*") return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

server::Response serve(const server::Request& request) {
  if (!get_or_head(request)) {
    auto r = plain(405, "method not allowed");
    r.headers.set("Allow", "GET, HEAD");
    return r;
  }
  std::string_view path = request.path();
  path.remove_prefix(kPrefix.size());
  if (path.empty()) path = "index.html";
  const Asset* asset = find_asset(path);
  if (asset == nullptr) return plain(404, "not found");
  server::Response r;
  r.headers.set("ETag", asset->etag);
  // Revalidate every time: the files change only with the binary, and a page must never mix scripts of two
  // versions. A 304 costs one round trip and no body.
  r.headers.set("Cache-Control", "no-cache");
  if (not_modified(request, asset->etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.set("Content-Type", asset->content_type);
  r.body.assign(asset->body);
  return r;
}

}  // namespace

const Asset* find_asset(std::string_view path) {
  const auto assets = embedded_assets();
  const auto it = std::lower_bound(assets.begin(), assets.end(), path,
                                   [](const Asset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

void add_security_headers(server::Headers& headers) {
  headers.set("Content-Security-Policy", kContentSecurityPolicy);
  headers.set("X-Frame-Options", "DENY");
  headers.set("Referrer-Policy", "no-referrer");
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Resource-Policy", "same-origin");
}

std::optional<server::Response> shape_session_error(std::string_view target, int status, std::string_view code,
                                                    std::string_view message) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/admin" && !path.starts_with(kPrefix)) return std::nullopt;
  auto r = server::Response::error(status, code, message);
  add_security_headers(r.headers);
  return r;
}

void register_routes(server::Router& router) {
  router.add_exact("/admin", [](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "admin_ui";
    server::Response r;
    if (get_or_head(ex.request)) {
      // Relative URLs in index.html resolve against the directory, so the page needs its trailing slash. The
      // Location is relative too (RFC 9110 §10.2.2), so it holds behind a reverse proxy that adds a path prefix.
      r = plain(308, "moved to /admin/");
      r.headers.set("Location", "admin/");
    } else {
      r = plain(405, "method not allowed");
      r.headers.set("Allow", "GET, HEAD");
    }
    add_security_headers(r.headers);
    co_await ex.respond(std::move(r));
  });
  router.add_prefix(std::string(kPrefix), [](server::Exchange& ex) -> net::awaitable<void> {
    ex.access.route = "admin_ui";
    server::Response r = serve(ex.request);
    add_security_headers(r.headers);
    co_await ex.respond(std::move(r));
  });
}

}  // namespace llmproxy::admin_ui
