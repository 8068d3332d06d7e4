#pragma once
/// The management API `/manage/*` (SPEC §7): projects, tokens, audit. Bearer MANAGEMENT_TOKEN (constant time).
#include <functional>
#include <string>

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
}

namespace llmproxy::admin {

/// Everything the handlers use; all pointers non-null and outliving the server.
struct Deps {
  db::Database* db = nullptr;
  db::Executor* executor = nullptr;
  auth::TokenService* tokens = nullptr;  // cache invalidation after revoke/update
  audit::Auditor* auditor = nullptr;
  const util::Cipher* cipher = nullptr;  // encrypts project api_key before storing
  std::string management_token;
};

/// Registers the `/manage/` prefix. `deps()` returns null until boot has completed; the routes then answer
/// 503 service_unavailable (after checking the management token).
void register_routes(server::Router& router, std::function<const Deps*()> deps);

}  // namespace llmproxy::admin
