#include "llmproxy/admin/admin.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/admin/detail/views.hpp"
#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/trusted_proxies.hpp"

namespace llmproxy::admin {

namespace detail {

void rethrow_db_error(std::exception_ptr error, const DbMessages& messages) {
  const auto mapped = db::map_to_http(error);
  if (mapped.status == 404 && !messages.not_found.empty()) {
    throw RequestError(mapped.status, mapped.code, messages.not_found);
  }
  if (mapped.status == 409 && !messages.conflict.empty()) {
    throw RequestError(mapped.status, mapped.code, messages.conflict);
  }
  std::rethrow_exception(error);
}

}  // namespace detail

namespace {

using detail::RequestContext;
using detail::HandlerResult;
namespace net = boost::asio;

constexpr std::string_view kPrefix = "/manage/";

/// A handler and, for mutations, the audit action it records.
struct Route {
  HandlerResult (*handler)(RequestContext&) = nullptr;
  const char* action = nullptr;
};

/// What a path and method resolve to: unknown path (404), known path with another method (405 + Allow), or a
/// route with the `{id}` segment.
struct Resolved {
  bool known = false;
  const char* allow = "";
  Route route;
  std::string id;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.starts_with(kPrefix)) {
    path.remove_prefix(kPrefix.size());
  } else {
    path = {};  // "/manage" itself
  }
  if (path.ends_with('/')) path.remove_suffix(1);  // "/manage/projects/" is "/manage/projects"
  while (!path.empty()) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return parts;
}

Resolved resolve(std::string_view method, std::string_view path) {
  const auto parts = split_path(path);
  Resolved r;
  const auto pick = [&](const char* allow, std::initializer_list<std::pair<std::string_view, Route>> methods) {
    r.known = true;
    r.allow = allow;
    for (const auto& [m, route] : methods) {
      if (m == method) r.route = route;
    }
  };
  const std::size_t n = parts.size();
  if (n == 0 || std::any_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); })) return r;
  if (n >= 2) r.id = std::string(parts[1]);

  if (parts[0] == "projects") {
    if (n == 1) {
      pick("GET, POST", {{"GET", {detail::list_projects}}, {"POST", {detail::create_project, "project.create"}}});
    } else if (n == 2) {
      // DELETE answers 405 itself (audited as project.delete), so it is listed here and not in Allow.
      pick("GET, PATCH", {{"GET", {detail::get_project}},
                          {"PATCH", {detail::update_project, "project.update"}},
                          {"DELETE", {detail::delete_project, "project.delete"}}});
    } else if (n == 4 && parts[2] == "tokens" && parts[3] == "revoke") {
      // The reference's action name for a bulk revoke.
      pick("POST", {{"POST", {detail::revoke_project_tokens, "token.revoke_batch"}}});
    }
  } else if (parts[0] == "tokens") {
    if (n == 1) {
      pick("GET, POST", {{"GET", {detail::list_tokens}}, {"POST", {detail::create_token, "token.create"}}});
    } else if (n == 2) {
      pick("GET, PATCH, DELETE", {{"GET", {detail::get_token}},
                                  {"PATCH", {detail::update_token, "token.update"}},
                                  {"DELETE", {detail::revoke_token, "token.revoke"}}});
    }
  } else if (parts[0] == "cache") {
    if (n == 2 && parts[1] == "purge") {
      pick("POST", {{"POST", {detail::purge_cache, "cache.purge"}}});
    }
  } else if (parts[0] == "usage") {
    if (n == 1) pick("GET", {{"GET", {detail::get_usage}}});
  } else if (parts[0] == "audit") {
    if (n == 1) {
      pick("GET", {{"GET", {detail::list_audit_events}}});
    } else if (n == 2) {
      pick("GET", {{"GET", {detail::get_audit_event}}});
    }
  }
  return r;
}

/// Checks `Authorization: Bearer <MANAGEMENT_TOKEN>` in constant time. Returns the 401 message, or empty when
/// the caller is authorized.
std::string check_auth(const server::Request& request, const std::string& expected) {
  constexpr std::string_view kScheme = "Bearer ";
  const auto header = server::trim_ows(request.headers.get("Authorization"));
  if (header.size() <= kScheme.size() || !server::iequals(header.substr(0, kScheme.size()), kScheme) ||
      server::trim_ows(header.substr(kScheme.size())).empty()) {
    return "missing or invalid Authorization header: expected \"Bearer <MANAGEMENT_TOKEN>\"";
  }
  // An empty configured token never matches (config refuses to boot without one; this is a second guard).
  if (expected.empty() || !util::constant_time_equal(server::trim_ows(header.substr(kScheme.size())), expected)) {
    return "invalid management token";
  }
  return {};
}

/// The client address for audit events: the TCP peer, or behind a trusted proxy the X-Forwarded-For address
/// that TRUSTED_PROXIES selects (every X-Forwarded-For field, joined in order like one list).
std::string audit_client_ip(const server::Request& request, const Deps& deps) {
  if (deps.trusted_proxies == nullptr || deps.trusted_proxies->empty()) return request.client_ip;
  std::string forwarded;
  for (const auto& field : request.headers) {
    if (!server::iequals(field.name, "X-Forwarded-For")) continue;
    if (!forwarded.empty()) forwarded += ',';
    forwarded += field.value;
  }
  return deps.trusted_proxies->client_ip(request.client_ip, forwarded);
}

db::AuditEvent base_event(const server::Exchange& ex, const Deps& deps, const char* action) {
  const auto& request = ex.request;
  db::AuditEvent e;
  e.action = action;
  e.actor = "management_api";  // the reference's actor for management calls
  e.outcome = "success";
  const auto optional_text = [](std::string_view s, std::size_t max) {
    return s.empty() ? std::nullopt : std::optional<std::string>(detail::clean_text(s, max));
  };
  e.request_id = optional_text(request.request_id, 128);
  e.correlation_id = optional_text(request.correlation_id, 128);
  e.client_ip = optional_text(audit_client_ip(request, deps), 64);
  e.method = optional_text(request.method, 16);
  e.path = optional_text(request.path(), 1024);
  e.user_agent = optional_text(request.headers.get("User-Agent"), 512);
  return e;
}

server::Response unavailable() {
  return server::Response::error(503, "service_unavailable",
                                 "the server is starting: the database is not ready yet");
}

using FailureCounter = std::shared_ptr<std::atomic<std::uint64_t>>;

/// Audits a refused management login: one `management.auth_failed` row per client address and minute with a
/// count (Auditor::record_coalesced). Only the reason is kept, never what was presented.
void audit_auth_failure(const server::Exchange& ex, const Deps& deps, const std::string& reason) {
  if (deps.auditor == nullptr) return;
  db::AuditEvent event = base_event(ex, deps, "management.auth_failed");
  event.actor = "anonymous";
  event.outcome = "denied";
  event.reason = reason;
  // Shorter than for authorized calls: up to coalesce_max_keys of these are held in memory at once.
  if (event.path) event.path = detail::clean_text(*event.path, 256);
  if (event.user_agent) event.user_agent = detail::clean_text(*event.user_agent, 256);
  std::string key = "management.auth_failed|" + event.client_ip.value_or("");
  deps.auditor->record_coalesced(std::move(key), std::move(event));
}

net::awaitable<void> dispatch(server::Exchange& ex, lifecycle::Published<const Deps> published,
                              FailureCounter auth_failures) {
  ex.access.route = "manage";
  const Deps* deps = published.get();
  // Before boot completes there is no configuration to check the token against; nothing is revealed but the
  // fact that the server is starting, which /ready says publicly anyway.
  if (!deps) {
    co_await ex.respond(unavailable());
    co_return;
  }
  if (auto denied = check_auth(ex.request, deps->management_token); !denied.empty()) {
    auth_failures->fetch_add(1, std::memory_order_relaxed);
    audit_auth_failure(ex, *deps, denied);
    auto response = server::Response::error(401, "unauthorized", denied);
    response.headers.set("WWW-Authenticate", "Bearer");
    co_await ex.respond(std::move(response));
    co_return;
  }
  if (!deps->db || !deps->executor || !deps->cipher) {
    co_await ex.respond(unavailable());
    co_return;
  }

  auto resolved = resolve(ex.request.method, ex.request.path());
  if (!resolved.known) {
    co_await ex.respond(server::Response::error(404, "not_found", "not found"));
    co_return;
  }
  if (!resolved.route.handler) {
    auto response = server::Response::error(
        405, "method_not_allowed",
        "method " + detail::clean_text(ex.request.method, 16) + " is not allowed here; allowed: " + resolved.allow);
    response.headers.set("Allow", resolved.allow);
    co_await ex.respond(std::move(response));
    co_return;
  }

  RequestContext ctx{ex, *deps, std::move(resolved.id), {}, detail::Json::object(), {}};
  if (resolved.route.action) ctx.event = base_event(ex, *deps, resolved.route.action);

  server::Response response;
  std::string failure;
  try {
    response = co_await resolved.route.handler(ctx);
  } catch (const detail::RequestError& e) {
    failure = e.what();
    response = server::Response::error(e.status, e.code, failure);
  } catch (const std::exception& e) {
    const auto mapped = db::map_to_http(std::current_exception());
    failure = mapped.message;
    response = server::Response::error(mapped.status, mapped.code, mapped.message);
    log::write(mapped.status >= 500 ? log::Level::error : log::Level::warn, "manage_error",
               {{"request_id", ex.request.request_id}, {"path", std::string(ex.request.path())},
                {"status", mapped.status}, {"error", e.what()}});
  }
  for (const auto& field : ctx.headers) response.headers.set(field.name, field.value);

  if (ctx.event && deps->auditor) {
    auto& event = *ctx.event;
    event.outcome = response.status < 400 ? "success" : response.status < 500 ? "failure" : "error";
    if (!failure.empty()) event.reason = detail::clean_text(failure, 1024);
    if (!ctx.metadata.empty()) {
      event.metadata = ctx.metadata.dump(-1, ' ', /*ensure_ascii=*/false, detail::Json::error_handler_t::replace);
    }
    deps->auditor->record(std::move(event));
  }
  co_await ex.respond(std::move(response));
}

}  // namespace

void register_routes(server::Router& router, lifecycle::Published<const Deps> deps, metrics::Registry& registry) {
  auto auth_failures = std::make_shared<std::atomic<std::uint64_t>>(0);
  registry.add_counter("llm_proxy_management_auth_failures_total",
                       "Management API requests refused for a missing, malformed or wrong management token.",
                       [auth_failures] { return static_cast<double>(auth_failures->load(std::memory_order_relaxed)); });
  server::Handler handler = [deps, auth_failures](server::Exchange& ex) { return dispatch(ex, deps, auth_failures); };
  router.add_exact("/manage", handler);
  router.add_prefix(std::string(kPrefix), handler);
}

}  // namespace llmproxy::admin
