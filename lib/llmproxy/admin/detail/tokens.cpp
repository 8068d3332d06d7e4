// Tokens: /manage/tokens[/{id}] (SPEC §6.1, §7.2). Secrets leave the server once, in the create response;
// the database keeps only their SHA-256 and a hint.
#include <chrono>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/admin/detail/views.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"
#include "llmproxy/util/token.hpp"

namespace llmproxy::admin::detail {

namespace {

std::string token_not_found(const std::string& id) {
  return plausible_id(id) ? "token \"" + id + "\" not found" : "token not found";
}

void invalidate_token(const Deps& deps, const std::string& id) {
  if (deps.tokens) deps.tokens->invalidate_token(id);
}

}  // namespace

HandlerResult list_tokens(RequestContext& ctx) {
  const auto requested = parse_optional_page(ctx.ex.request);
  const db::PageRequest page = requested.value_or(kEveryRow);
  // `project_id` as documented; `projectId` is what the reference's own clients send.
  auto project_id = query_filter(ctx.ex.request, "project_id");
  if (!project_id) project_id = query_filter(ctx.ex.request, "projectId");
  // `active=true`: tokens usable now (active and unexpired); `false`: the revoked and the expired. The admin
  // UI's dashboard counts the former with page_size=1.
  std::optional<db::TokenStateFilter> state;
  if (const auto active = query_filter(ctx.ex.request, "active")) {
    if (*active != "true" && *active != "false") invalid("query parameter \"active\" must be true or false");
    state = db::TokenStateFilter{*active == "true", util::now()};
  }
  db::Database* db = ctx.deps.db;
  // The body is serialised on the DB pool, not on the I/O thread, one item at a time (no JSON tree of the whole
  // list): an unpaged list can hold every token (100000 tokens: 37 MB of JSON, about a second of work).
  auto pending = run_db(ctx, [db, project_id, page, state] {
    auto rows = db->list_tokens(project_id, page, state);
    return std::pair{json_array_text(rows.items, token_json), rows.total_count};
  });
  auto [body, total] = co_await std::move(pending);
  add_pagination_headers(ctx.headers, requested, total);
  co_return server::Response::json(200, std::move(body));
}

HandlerResult create_token(RequestContext& ctx) {
  const auto body = parse_object(ctx.ex.request.body);
  warn_unknown_fields(ctx, body, {"project_id", "duration_minutes", "max_requests", "max_tokens", "rate_limit_rpm"});
  auto project_id = string_field(body, "project_id");
  if (!project_id) invalid("field \"project_id\" is required");
  if (project_id->empty()) invalid("field \"project_id\" must not be empty");
  if (plausible_id(*project_id)) ctx.event->project_id = *project_id;
  const auto minutes = duration_minutes_field(body);
  const auto max_requests = max_requests_field(body).value_or(std::nullopt);
  const auto max_tokens = limit_field(body, "max_tokens").value_or(std::nullopt);
  const auto rate_limit_rpm = limit_field(body, "rate_limit_rpm").value_or(std::nullopt);
  ctx.metadata["duration_minutes"] = minutes;
  ctx.metadata["max_requests"] = max_requests ? Json(*max_requests) : Json(nullptr);
  ctx.metadata["max_tokens"] = max_tokens ? Json(*max_tokens) : Json(nullptr);
  ctx.metadata["rate_limit_rpm"] = rate_limit_rpm ? Json(*rate_limit_rpm) : Json(nullptr);
  if (!plausible_id(*project_id)) not_found("project", *project_id);

  // The secret exists only in this frame and in the response.
  const std::string secret = util::generate_token();
  db::Token token;
  token.id = util::uuid_v4();
  token.token_hash = util::sha256_hex(secret);
  token.token_hint = util::token_hint(secret);
  token.project_id = *project_id;
  token.created_at = util::now();
  token.expires_at = token.created_at + std::chrono::minutes(minutes);
  token.max_requests = max_requests;
  token.max_tokens = max_tokens;
  token.rate_limit_rpm = rate_limit_rpm;
  token.is_active = true;

  db::Database* db = ctx.deps.db;
  auto pending = run_db(
      ctx,
      [db, token] {
        if (!db->get_project(token.project_id).is_active) return false;
        db->create_token(token);
        return true;
      },
      DbMessages::missing("project \"" + *project_id + "\" not found"));
  const bool project_active = co_await std::move(pending);
  ctx.ex.access.project_id = token.project_id;
  if (!project_active) {
    throw RequestError(403, "project_inactive", "cannot create tokens for inactive projects");
  }
  ctx.event->token_id = token.id;
  ctx.metadata["expires_at"] = util::format_time(*token.expires_at);
  ctx.ex.access.token_hint = token.token_hint;

  Json response;
  response["id"] = token.id;
  response["token"] = secret;
  response["expires_at"] = util::format_time(*token.expires_at);
  response["max_requests"] = max_requests ? Json(*max_requests) : Json(nullptr);
  response["max_tokens"] = max_tokens ? Json(*max_tokens) : Json(nullptr);
  response["rate_limit_rpm"] = rate_limit_rpm ? Json(*rate_limit_rpm) : Json(nullptr);
  // 200 like the reference (project create answers 201, also like the reference).
  co_return json_response(200, response);
}

HandlerResult get_token(RequestContext& ctx) {
  if (!plausible_id(ctx.id)) not_found("token", ctx.id);
  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, id = ctx.id] { return db->get_token(id); },
                        DbMessages::missing(token_not_found(ctx.id)));
  auto token = co_await std::move(pending);
  ctx.ex.access.project_id = token.project_id;
  co_return json_response(200, token_json(token));
}

HandlerResult update_token(RequestContext& ctx) {
  if (plausible_id(ctx.id)) ctx.event->token_id = ctx.id;
  const auto body = parse_object(ctx.ex.request.body);
  warn_unknown_fields(ctx, body, {"is_active", "max_requests", "max_tokens", "rate_limit_rpm"});
  db::TokenUpdate update;
  update.is_active = bool_field(body, "is_active");
  update.max_requests = max_requests_field(body);
  update.max_tokens = limit_field(body, "max_tokens");
  update.rate_limit_rpm = limit_field(body, "rate_limit_rpm");
  if (!update.is_active && !update.max_requests && !update.max_tokens && !update.rate_limit_rpm) {
    invalid("no fields to update: give at least one of \"is_active\", \"max_requests\", \"max_tokens\", "
            "\"rate_limit_rpm\"");
  }
  if (update.is_active) ctx.metadata["is_active"] = *update.is_active;
  const auto note_limit = [&](const char* name, const std::optional<std::optional<std::int64_t>>& limit) {
    if (limit) ctx.metadata[name] = *limit ? Json(**limit) : Json(nullptr);
  };
  note_limit("max_requests", update.max_requests);
  note_limit("max_tokens", update.max_tokens);
  note_limit("rate_limit_rpm", update.rate_limit_rpm);
  if (!plausible_id(ctx.id)) not_found("token", ctx.id);

  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, id = ctx.id, update] { return db->update_token(id, update, util::now()); },
                        DbMessages::missing(token_not_found(ctx.id)));
  auto token = co_await std::move(pending);
  invalidate_token(ctx.deps, token.id);
  ctx.event->project_id = token.project_id;
  ctx.ex.access.project_id = token.project_id;
  co_return json_response(200, token_json(token));
}

HandlerResult revoke_token(RequestContext& ctx) {
  if (!plausible_id(ctx.id)) not_found("token", ctx.id);
  ctx.event->token_id = ctx.id;
  db::Database* db = ctx.deps.db;
  auto pending = run_db(
      ctx,
      [db, id = ctx.id] {
        const bool active = db->revoke_token(id, util::now());
        return std::pair{active, db->get_token(id).project_id};
      },
      DbMessages::missing(token_not_found(ctx.id)));
  auto [was_active, project_id] = co_await std::move(pending);
  invalidate_token(ctx.deps, ctx.id);
  ctx.event->project_id = project_id;
  ctx.ex.access.project_id = project_id;
  ctx.metadata["already_revoked"] = !was_active;
  server::Response response;
  response.status = 204;  // idempotent: revoking a revoked token is still a success
  co_return response;
}

}  // namespace llmproxy::admin::detail
