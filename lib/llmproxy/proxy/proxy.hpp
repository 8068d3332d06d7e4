#pragma once
/// The `/v1/*` request pipeline (SPEC §5.2, §5.5): target normalisation -> CORS preflight -> method -> endpoint ->
/// origin -> token -> project active -> param whitelist -> quota -> circuit breaker -> forward, relaying responses
/// (streams chunk by chunk). The pure rules live in target.hpp, headers.hpp and params.hpp.
#include <chrono>
#include <cstdint>

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

namespace llmproxy::proxy {

/// Collaborators published once boot completed; all non-null then and outliving the server.
struct Deps {
  auth::TokenService* tokens = nullptr;
  upstream::Client* client = nullptr;
  upstream::CircuitBreaker* breaker = nullptr;
  metrics::Registry* metrics = nullptr;
};

struct Options {
  config::Provider provider;
  std::chrono::milliseconds request_timeout{300000};      // headers + non-streaming body
  std::chrono::milliseconds stream_idle_timeout{300000};  // silence between two chunks of a stream
  std::uint64_t max_buffered_response_size = 10485760;    // larger non-streaming bodies are relayed as they arrive
};

/// Registers the `/v1/` prefix. Checks that need no state (target, method, endpoint, origin) run before boot
/// completes; anything needing the database answers 503 service_unavailable until `deps` is published.
/// What `deps` refers to must outlive the router.
void register_routes(server::Router& router, Options options, lifecycle::Published<const Deps> deps);

}  // namespace llmproxy::proxy
