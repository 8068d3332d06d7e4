#pragma once
/// The `/v1/*` request pipeline (SPEC §5.2, §5.5): target normalisation -> CORS preflight -> method -> endpoint ->
/// origin -> token -> project active -> param whitelist -> quota -> circuit breaker -> forward, relaying responses
/// (streams chunk by chunk). The pure rules live in target.hpp, headers.hpp and params.hpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "llmproxy/config/providers.hpp"
#include "llmproxy/lifecycle/readiness.hpp"
#include "llmproxy/server/router.hpp"

namespace llmproxy::auth {
class TokenService;
}
namespace llmproxy::upstream {
class Client;
class CircuitBreaker;
}  // namespace llmproxy::upstream
namespace llmproxy::metrics {
class Registry;
}
namespace llmproxy::events {
class EventLog;
}
namespace llmproxy::cache {
class Backend;
}

namespace llmproxy::proxy {

/// Collaborators published once boot completed; all non-null then and outliving the server.
struct Deps {
  auth::TokenService* tokens = nullptr;
  upstream::Client* client = nullptr;
  upstream::CircuitBreaker* breaker = nullptr;
  metrics::Registry* metrics = nullptr;
  cache::Backend* cache = nullptr;  // the response cache (SPEC §13); null when HTTP_CACHE_ENABLED=false
  events::EventLog* events = nullptr;  // EVENT_LOG_FILE (SPEC §14); null when off
};

/// The response cache's rules that are settings (SPEC §13).
struct CacheOptions {
  std::size_t max_object_bytes = 1u << 20;  // HTTP_CACHE_MAX_OBJECT_BYTES: larger bodies are never stored
  std::chrono::seconds default_ttl{0};      // HTTP_CACHE_DEFAULT_TTL: for storable answers naming no lifetime
  bool stream_responses = false;            // HTTP_CACHE_STREAM_RESPONSES: text/event-stream answers too
};

struct Options {
  config::Provider provider;
  std::chrono::milliseconds request_timeout{300000};      // headers + non-streaming body
  std::chrono::milliseconds stream_idle_timeout{300000};  // silence between two chunks of a stream
  std::uint64_t max_buffered_response_size = 10485760;    // larger non-streaming bodies are relayed as they arrive
  CacheOptions cache;
  /// EVENT_LOG_BODIES: bytes of each body kept for the event log (EVENT_LOG_MAX_BODY_BYTES); 0: bodies off.
  std::size_t event_body_bytes = 0;
};

/// An error the proxy itself answers on `/v1` (SPEC §5.2), in OpenAI's envelope so the official SDKs expose
/// `code` and `type`: `{"error":{"message","type","param":null,"code"}}`. The type follows the status like
/// OpenAI's: 429 `rate_limit_error`, 5xx `server_error`, other 4xx `invalid_request_error`.
server::Response api_error(int status, std::string_view code, std::string_view message);

/// CORS on `/v1` answers (upstream's and the proxy's own alike): with `allowed_origins` empty every Origin is
/// allowed (like the reference); otherwise only the listed ones. An allowed Origin is echoed with
/// `Vary: Origin` and `Access-Control-Expose-Headers`; the upstream's own CORS fields are replaced.
bool origin_allowed(const config::Provider& provider, std::string_view origin);
void add_cors_headers(server::Headers& headers, std::string_view origin);

/// For ServerHooks::shape_error: errors the HTTP session answers itself on `/v1` (413, 408, refused framing,
/// 500) in the same envelope, with CORS for an allowed Origin. Other paths keep the default shape.
std::function<std::optional<server::Response>(std::string_view target, std::string_view origin, int status,
                                              std::string_view code, std::string_view message)>
session_error_shaper(const config::Provider& provider);

/// Registers the `/v1/` prefix. Checks that need no state (target, method, endpoint, origin) run before boot
/// completes; anything needing the database answers 503 service_unavailable until `deps` is published.
/// What `deps` refers to must outlive the router.
void register_routes(server::Router& router, Options options, lifecycle::Published<const Deps> deps);

}  // namespace llmproxy::proxy
