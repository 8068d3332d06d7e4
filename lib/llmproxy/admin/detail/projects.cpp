// Projects: /manage/projects[/{id}[/tokens/revoke]] (SPEC §6.2, §7.2).
#include <tuple>
#include <utility>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/admin/detail/views.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::admin::detail {

namespace {

/// The api_key as reads show it: decrypted, then obfuscated. A value that cannot be decrypted (ENCRYPTION_KEY
/// changed or removed since it was stored) shows as "****" rather than failing the read.
std::string displayed_key(const util::Cipher& cipher, const std::string& stored) {
  try {
    return obfuscate_api_key(cipher.decrypt(stored));
  } catch (const util::CryptoError&) {
    return "****";
  }
}

std::string project_not_found(const std::string& id) {
  return plausible_id(id) ? "project \"" + id + "\" not found" : "project not found";
}

std::string name_taken(const std::string& name) {
  return "a project named \"" + clean_text(name, 300) + "\" already exists";
}

/// Drops the project and every cached token of it from the token service's caches (one pass per cache), so
/// revocations and key or status changes take effect on this instance at once (other instances follow within
/// their cache TTLs).
void invalidate_project(const Deps& deps, const std::string& project_id) {
  if (deps.tokens) deps.tokens->invalidate_project(project_id);
}

struct UpdateOutcome {
  db::Project project;
  std::string displayed_key;
  std::optional<db::RevokeResult> revoked;
};

}  // namespace

HandlerResult list_projects(RequestContext& ctx) {
  const auto requested = parse_optional_page(ctx.ex.request);
  const db::PageRequest page = requested.value_or(kEveryRow);
  db::Database* db = ctx.deps.db;
  const util::Cipher* cipher = ctx.deps.cipher;
  // The body is serialised on the DB pool too (an unpaged list can hold every project), item by item.
  auto pending = run_db(ctx, [db, cipher, page] {
    auto rows = db->list_projects(page);
    auto item = [cipher](const db::Project& p) { return project_json(p, displayed_key(*cipher, p.api_key)); };
    return std::pair{json_array_text(rows.items, item), rows.total_count};
  });
  auto [body, total] = co_await std::move(pending);
  add_pagination_headers(ctx.headers, requested, total);
  co_return server::Response::json(200, std::move(body));
}

HandlerResult create_project(RequestContext& ctx) {
  const auto body = parse_object(ctx.ex.request.body);
  warn_unknown_fields(ctx, body, {"name", "api_key", "rate_limit_rpm"});
  auto name = string_field(body, "name");
  if (!name) invalid("field \"name\" is required");
  validate_name(*name, "name");
  ctx.metadata["name"] = *name;
  auto api_key = string_field(body, "api_key");
  if (!api_key) invalid("field \"api_key\" is required");
  validate_api_key(*api_key, "api_key");
  const auto rate_limit_rpm = limit_field(body, "rate_limit_rpm").value_or(std::nullopt);
  if (rate_limit_rpm) ctx.metadata["rate_limit_rpm"] = *rate_limit_rpm;

  db::Project project;
  project.id = util::uuid_v4();
  project.name = *name;
  project.api_key = ctx.deps.cipher->encrypt(*api_key);
  project.is_active = true;
  project.rate_limit_rpm = rate_limit_rpm;
  project.created_at = project.updated_at = util::now();

  db::Database* db = ctx.deps.db;
  auto pending = run_db(ctx, [db, project] { db->create_project(project); }, DbMessages::taken(name_taken(*name)));
  co_await std::move(pending);
  ctx.event->project_id = project.id;
  ctx.ex.access.project_id = project.id;
  // The only response that shows the key as sent; every later read obfuscates it.
  co_return json_response(201, project_json(project, *api_key));
}

HandlerResult get_project(RequestContext& ctx) {
  if (!plausible_id(ctx.id)) not_found("project", ctx.id);
  db::Database* db = ctx.deps.db;
  const util::Cipher* cipher = ctx.deps.cipher;
  auto pending = run_db(
      ctx,
      [db, cipher, id = ctx.id] {
        auto p = db->get_project(id);
        auto shown = displayed_key(*cipher, p.api_key);
        const db::UsageTotals totals = db->project_usage_totals(id);
        return std::tuple{std::move(p), std::move(shown), totals};
      },
      DbMessages::missing(project_not_found(ctx.id)));
  auto [project, key, totals] = co_await std::move(pending);
  ctx.ex.access.project_id = project.id;
  Json body = project_json(project, key);
  // What its tokens used, all time (per day: GET /manage/usage?project_id=...).
  body["usage"] = Json{{"requests", totals.requests},
                       {"prompt_tokens", totals.prompt_tokens},
                       {"completion_tokens", totals.completion_tokens},
                       {"total_tokens", totals.prompt_tokens + totals.completion_tokens},
                       {"cache_hits", totals.cache_hits}};
  co_return json_response(200, body);
}

HandlerResult update_project(RequestContext& ctx) {
  if (plausible_id(ctx.id)) ctx.event->project_id = ctx.id;
  const auto body = parse_object(ctx.ex.request.body);
  warn_unknown_fields(ctx, body, {"name", "api_key", "is_active", "revoke_tokens", "rate_limit_rpm"});
  db::ProjectUpdate update;
  Json fields = Json::array();
  if (auto name = string_field(body, "name")) {
    validate_name(*name, "name");
    ctx.metadata["name"] = *name;
    fields.push_back("name");
    update.name = std::move(*name);
  }
  if (auto api_key = string_field(body, "api_key")) {
    validate_api_key(*api_key, "api_key");
    fields.push_back("api_key");
    update.api_key = ctx.deps.cipher->encrypt(*api_key);
  }
  if (auto active = bool_field(body, "is_active")) {
    ctx.metadata["is_active"] = *active;
    fields.push_back("is_active");
    update.is_active = *active;
  }
  if (auto limit = limit_field(body, "rate_limit_rpm")) {
    ctx.metadata["rate_limit_rpm"] = *limit ? Json(**limit) : Json(nullptr);
    fields.push_back("rate_limit_rpm");
    update.rate_limit_rpm = *limit;
  }
  const auto revoke_tokens = bool_field(body, "revoke_tokens");
  // Like the reference: revoke_tokens only makes sense while deactivating the project.
  if (revoke_tokens && update.is_active.value_or(true)) {
    invalid("field \"revoke_tokens\" is only allowed together with \"is_active\": false");
  }
  if (fields.empty()) {
    invalid("no fields to update: give at least one of \"name\", \"api_key\", \"is_active\", \"rate_limit_rpm\"");
  }
  ctx.metadata["updated_fields"] = fields;
  if (!plausible_id(ctx.id)) not_found("project", ctx.id);

  db::Database* db = ctx.deps.db;
  const util::Cipher* cipher = ctx.deps.cipher;
  const bool revoke = revoke_tokens.value_or(false);
  DbMessages messages{project_not_found(ctx.id), update.name ? name_taken(*update.name) : std::string{}};
  auto pending = run_db(
      ctx,
      [db, cipher, id = ctx.id, update, revoke] {
        UpdateOutcome out;
        // The project change comes first: if it fails (unknown id, duplicate name) no token is touched.
        out.project = db->update_project(id, update, util::now());
        out.displayed_key = displayed_key(*cipher, out.project.api_key);
        if (revoke) out.revoked = db->revoke_project_tokens(id, util::now());
        return out;
      },
      std::move(messages));
  auto outcome = co_await std::move(pending);
  invalidate_project(ctx.deps, ctx.id);
  ctx.ex.access.project_id = outcome.project.id;

  Json response = project_json(outcome.project, outcome.displayed_key);
  if (outcome.revoked) {
    ctx.metadata["tokens_revoked"] = outcome.revoked->revoked_count;
    response["tokens_revoked"] = revoke_json(*outcome.revoked);
  }
  co_return json_response(200, response);
}

HandlerResult delete_project(RequestContext& ctx) {
  if (plausible_id(ctx.id)) ctx.event->project_id = ctx.id;
  ctx.headers.set("Allow", "GET, PATCH");
  throw RequestError(405, "method_not_allowed", "project deletion is not permitted");
  co_return server::Response{};  // unreachable; the co_return keeps this a coroutine like every handler
}

HandlerResult revoke_project_tokens(RequestContext& ctx) {
  if (plausible_id(ctx.id)) ctx.event->project_id = ctx.id;
  if (!plausible_id(ctx.id)) not_found("project", ctx.id);
  db::Database* db = ctx.deps.db;
  auto pending = run_db(
      ctx, [db, id = ctx.id] { return db->revoke_project_tokens(id, util::now()); },
      DbMessages::missing(project_not_found(ctx.id)));
  const db::RevokeResult result = co_await std::move(pending);
  invalidate_project(ctx.deps, ctx.id);
  ctx.ex.access.project_id = ctx.id;
  ctx.metadata = revoke_json(result);
  co_return json_response(200, revoke_json(result));
}

}  // namespace llmproxy::admin::detail
