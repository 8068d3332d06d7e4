// POST /manage/cache/purge (SPEC §13): drops stored answers of the response cache, by resource (method + URL, of
// one project or of all) or by key prefix. Audited as cache.purge.
#include <algorithm>

#include "llmproxy/admin/detail/input.hpp"
#include "llmproxy/admin/detail/request_context.hpp"
#include "llmproxy/cache/cache.hpp"
#include "llmproxy/cache/policy.hpp"

namespace llmproxy::admin::detail {

namespace {

/// The longest key (three parts of 32 hex digits and two ':'); a longer prefix can match nothing.
constexpr std::size_t kMaxPrefix = 98;

/// An HTTP method token (RFC 9110 §9.1), at most 32 characters.
bool method_token(std::string_view m) {
  return !m.empty() && m.size() <= 32 && std::all_of(m.begin(), m.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

/// The origin-form target of `url`: an absolute http(s) URL loses its scheme and authority.
std::optional<std::string_view> origin_form(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.size() > scheme.size() && std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) {
          return a == (b | 0x20) || a == b;
        })) {
      const std::size_t slash = url.find('/', scheme.size());
      if (slash == std::string_view::npos) return std::string_view("/");
      return url.substr(slash);
    }
  }
  if (url.starts_with('/')) return url;
  return std::nullopt;
}

}  // namespace

HandlerResult purge_cache(RequestContext& ctx) {
  if (ctx.deps.cache == nullptr) {
    throw RequestError(400, "cache_disabled", "the response cache is disabled (HTTP_CACHE_ENABLED=false)");
  }
  const auto body = parse_object(ctx.ex.request.body);
  warn_unknown_fields(ctx, body, {"method", "url", "project_id", "prefix"});
  const auto method = string_field(body, "method");
  const auto url = string_field(body, "url");
  const auto project_id = string_field(body, "project_id");
  const auto prefix = string_field(body, "prefix");

  std::string pattern;
  if (prefix) {
    if (method || url || project_id) invalid("give either \"prefix\" or \"method\" and \"url\" (with \"project_id\")");
    const bool key_alphabet = std::all_of(prefix->begin(), prefix->end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':';
    });
    if (!key_alphabet || prefix->size() > kMaxPrefix) {
      invalid("field \"prefix\" must be the start of a cache key (X-PROXY-CACHE-KEY): lower-case hex digits and "
              "':', at most 98 characters; \"\" purges everything");
    }
    ctx.metadata["purge_type"] = "prefix";
    ctx.metadata["prefix"] = *prefix;
    pattern = *prefix + "*";
  } else {
    if (!method || !url) invalid("fields \"method\" and \"url\" are required (or \"prefix\")");
    if (!method_token(*method)) invalid("field \"method\" must be an HTTP method such as GET or POST");
    const auto target = origin_form(*url);
    const auto normalised = target ? ctx.deps.normalise_target(*target) : std::nullopt;
    if (!normalised) {
      invalid("field \"url\" must be a path such as /v1/models?x=1 or an http(s) URL whose path the proxy accepts");
    }
    if (project_id) {
      if (!plausible_id(*project_id)) invalid("field \"project_id\" is not a project id");
      ctx.event->project_id = *project_id;
    }
    ctx.metadata["purge_type"] = project_id ? "resource" : "resource_all_projects";
    ctx.metadata["method"] = *method;
    ctx.metadata["url"] = clean_text(*normalised, 2048);
    pattern = cache::resource_pattern(project_id.value_or(""), *method, *normalised);
  }

  auto purge = ctx.deps.cache->purge(std::move(pattern));
  const std::optional<std::uint64_t> deleted = co_await std::move(purge);
  if (!deleted) {
    throw RequestError(503, "cache_unavailable", "the response cache backend is unavailable; nothing was purged");
  }
  ctx.metadata["deleted"] = *deleted;
  co_return server::Response::json(200, Json{{"deleted", *deleted}}.dump());
}

}  // namespace llmproxy::admin::detail
