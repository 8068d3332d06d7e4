#pragma once
/// Internals of the management API: the per-request context every handler gets, the error a handler throws for
/// a client mistake, and the handler entry points the dispatcher (admin.cpp) routes to.
#include <boost/asio/awaitable.hpp>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "llmproxy/admin/admin.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/db/http_mapping.hpp"
#include "llmproxy/db/models.hpp"
#include "llmproxy/server/exchange.hpp"

namespace llmproxy::admin::detail {

namespace net = boost::asio;
/// Responses keep the documented field order.
using Json = nlohmann::ordered_json;

/// A request the API refuses (4xx) because of what the client sent or asked for. Thrown by validation and by
/// handlers, turned into `{"error":message,"code":code}` by the dispatcher. Messages name the offending field.
struct RequestError : std::runtime_error {
  RequestError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;
};

/// The context of one management request as the handlers see it: the exchange, the published deps, the `{id}`
/// segment, and what a handler adds to the audit event and the response. Lives in the dispatcher's coroutine
/// frame.
struct RequestContext {
  server::Exchange& ex;
  const Deps& deps;
  std::string id;  // the `{id}` path segment, if the route has one

  /// The audit event of a mutation (set by the dispatcher for routes that have an action). Handlers fill in
  /// project_id / token_id as they learn them and add metadata; the dispatcher sets outcome and reason and
  /// records it once the response is known.
  std::optional<db::AuditEvent> event;
  Json metadata = Json::object();
  /// Extra response headers (e.g. pagination of lists).
  server::Headers headers;
};

/// Messages replacing the driver's text for errors a client causes (the driver's text names tables, not fields).
struct DbMessages {
  std::string not_found;  // for db::NotFound (404)
  std::string conflict;   // for db::Conflict (409)

  static DbMessages missing(std::string message) { return {std::move(message), {}}; }
  static DbMessages taken(std::string message) { return {{}, std::move(message)}; }
};

/// Rethrows `error`: a db::NotFound / db::Conflict with a message in `messages` becomes a RequestError with the
/// status and code of db::map_to_http and that message; everything else is rethrown unchanged.
[[noreturn]] void rethrow_db_error(std::exception_ptr error, const DbMessages& messages);

/// Runs the blocking repository call `fn` on the DB pool (it must own what it touches: capture by value) and
/// resumes on the caller's strand with its result. db errors are translated per rethrow_db_error on the pool
/// thread. Call it outside the co_await (`auto pending = run_db(ctx, [..] {..}); co_await std::move(pending);`):
/// GCC 12.2 destroys a lambda temporary with non-trivial captures twice when the lambda expression appears
/// inside a co_await full-expression (double free; reproduced with ASan, with or without a wrapper).
template <class Fn>
auto run_db(const RequestContext& ctx, Fn fn, DbMessages messages = {}) {
  auto guarded = [fn = std::move(fn), messages = std::move(messages)]() {
    try {
      return fn();
    } catch (const db::Error&) {
      rethrow_db_error(std::current_exception(), messages);
    }
  };
  return ctx.deps.executor->run(std::move(guarded));
}

/// A handler produces the response; it throws RequestError for client mistakes and lets db::Error escape
/// (the dispatcher maps it through db::map_to_http).
using HandlerResult = net::awaitable<server::Response>;

HandlerResult get_usage(RequestContext& ctx);
HandlerResult list_projects(RequestContext& ctx);
HandlerResult create_project(RequestContext& ctx);
HandlerResult get_project(RequestContext& ctx);
HandlerResult update_project(RequestContext& ctx);
HandlerResult delete_project(RequestContext& ctx);
HandlerResult revoke_project_tokens(RequestContext& ctx);

HandlerResult list_tokens(RequestContext& ctx);
HandlerResult create_token(RequestContext& ctx);
HandlerResult get_token(RequestContext& ctx);
HandlerResult update_token(RequestContext& ctx);
HandlerResult revoke_token(RequestContext& ctx);

HandlerResult list_audit_events(RequestContext& ctx);

HandlerResult purge_cache(RequestContext& ctx);
HandlerResult get_audit_event(RequestContext& ctx);

}  // namespace llmproxy::admin::detail
