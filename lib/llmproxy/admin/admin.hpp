#pragma once
/// The management API `/manage/*` (SPEC §7): projects, tokens, audit. Bearer MANAGEMENT_TOKEN (constant time).
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/lifecycle/readiness.hpp"
#include "llmproxy/server/router.hpp"

namespace llmproxy::db {
class Database;
class Executor;
}  // namespace llmproxy::db
namespace llmproxy::auth {
class TokenService;
}
namespace llmproxy::audit {
class Auditor;
}
namespace llmproxy::util {
class Cipher;
class TrustedProxies;
}  // namespace llmproxy::util
namespace llmproxy::metrics {
class Registry;
}
namespace llmproxy::cache {
class Backend;
}

namespace llmproxy::admin {

/// Everything the handlers use; published once boot completed, all pointers non-null then and outliving the
/// server.
struct Deps {
  db::Database* db = nullptr;
  db::Executor* executor = nullptr;
  auth::TokenService* tokens = nullptr;  // cache invalidation after revoke/update
  audit::Auditor* auditor = nullptr;
  const util::Cipher* cipher = nullptr;  // encrypts project api_key before storing
  std::string management_token;
  /// TRUSTED_PROXIES: picks the audit client_ip from X-Forwarded-For when the peer is trusted; null = the peer.
  const util::TrustedProxies* trusted_proxies = nullptr;
  /// The response cache, for POST /manage/cache/purge; null when disabled (the purge then answers 400).
  cache::Backend* cache = nullptr;
  /// The proxy's request-target normalisation (a purge names a URL as the proxy keys it): the normalised
  /// path + query, or nullopt when the proxy would refuse the target.
  std::function<std::optional<std::string>(std::string_view)> normalise_target;
};

/// Registers `/manage` and the `/manage/` prefix. Until `deps` is published every request answers 503
/// service_unavailable, before the management token is checked (there is nothing to check it against yet).
/// A request with a missing, malformed or wrong management token answers 401, is counted in
/// llm_proxy_management_auth_failures_total (registered in `registry`) and audited as `management.auth_failed`,
/// coalesced per client address (Auditor::record_coalesced); the presented token is never logged or stored.
/// What `deps` refers to and `registry` must outlive the router.
void register_routes(server::Router& router, lifecycle::Published<const Deps> deps, metrics::Registry& registry);

}  // namespace llmproxy::admin
