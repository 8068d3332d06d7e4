// Stale-if-error (SPEC §6.3): while the database is unavailable, token and project cache entries past their TTL
// still answer for up to CACHE_STALE_IF_ERROR; quota tokens still get 503; 0 turns it off.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/util/token.hpp"
#include "unit/auth_service_fixture.hpp"

namespace auth = llmproxy::auth;
namespace db = llmproxy::db;
namespace util = llmproxy::util;
using llmproxy::testing::AuthEnv;
using llmproxy::testing::bearer;
using llmproxy::testing::kUpstreamKey;
using namespace std::chrono_literals;

namespace {

auth::Options short_ttls(std::chrono::milliseconds stale_if_error) {
  auth::Options o;
  o.token_cache_ttl = 1s;
  o.project_cache_ttl = 1s;
  o.negative_cache_ttl = 1s;
  o.cache_stale_if_error = stale_if_error;
  return o;
}

}  // namespace

TEST_CASE("during an outage expired cache entries answer up to CACHE_STALE_IF_ERROR, quota tokens get 503",
          "[auth][stale]") {
  AuthEnv env(short_ttls(1h));
  const db::Project project = env.add_project();
  db::Token row;
  const std::string unlimited = env.add_token(project, std::nullopt, env.clock + 24h, &row);
  const std::string quota = env.add_token(project, 10, env.clock + 24h);
  const std::string unknown = util::generate_token();
  const std::string never_seen = env.add_token(project);
  REQUIRE(env.authorize(bearer(unlimited)).outcome == auth::Outcome::authorized);
  REQUIRE(env.authorize(bearer(quota)).outcome == auth::Outcome::authorized);
  REQUIRE(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);

  env.db.down = true;
  env.clock += 3s;  // past every TTL
  const auth::Authorization a = env.authorize(bearer(unlimited));
  CHECK(a.outcome == auth::Outcome::authorized);
  CHECK(a.token_id == row.id);
  CHECK(a.api_key == kUpstreamKey);
  CHECK(env.svc().stats().stale_served == 1);
  CHECK(env.authorize(bearer(quota)).outcome == auth::Outcome::service_unavailable);  // its grant needs the DB
  CHECK(env.authorize(bearer(never_seen)).outcome == auth::Outcome::service_unavailable);  // nothing to serve
  CHECK(env.authorize(bearer(unknown)).outcome == auth::Outcome::token_not_found);  // the confirmed denial
  CHECK(env.svc().stats().stale_served == 2);

  // Still within the bound at 1h past the TTL minus a little; beyond it, 503.
  env.clock += 1h - 3s;
  CHECK(env.authorize(bearer(unlimited)).outcome == auth::Outcome::authorized);
  env.clock += 2s;
  CHECK(env.authorize(bearer(unlimited)).outcome == auth::Outcome::service_unavailable);
  CHECK(env.svc().stats().stale_served == 3);

  // Usage counted while stale is written after recovery.
  env.db.down = false;
  REQUIRE(env.svc().flush_blocking());
  CHECK(env.driver->get_token(row.id).request_count == 3);
}

TEST_CASE("a stale entry keeps the denial it recorded", "[auth][stale]") {
  AuthEnv env(short_ttls(1h));
  db::Token row;
  const std::string token = env.add_token(env.add_project(), std::nullopt, env.clock + 24h, &row);
  REQUIRE(env.driver->revoke_token(row.id, env.clock));
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
  env.db.down = true;
  env.clock += 10s;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::token_inactive);
}

TEST_CASE("CACHE_STALE_IF_ERROR=0 keeps the old behaviour: 503 once the TTL passed", "[auth][stale]") {
  AuthEnv env(short_ttls(0s));
  const std::string token = env.add_token(env.add_project());
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  env.db.down = true;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);  // still fresh
  env.clock += 2s;
  CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::service_unavailable);
  CHECK(env.svc().stats().stale_served == 0);
}

TEST_CASE("a stale project answers when only the project lookup fails", "[auth][stale]") {
  auth::Options o = short_ttls(1h);
  o.token_cache_ttl = 1h;  // the token stays fresh, the project does not
  AuthEnv env(o);
  const std::string token = env.add_token(env.add_project());
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  env.db.down = true;
  env.clock += 5s;
  const auth::Authorization a = env.authorize(bearer(token));
  CHECK(a.outcome == auth::Outcome::authorized);
  CHECK(a.api_key == kUpstreamKey);
  CHECK(env.svc().stats().stale_served == 1);
}

TEST_CASE("once stale entries are served, they answer without a database attempt until the next probe",
          "[auth][stale]") {
  auth::Options o = short_ttls(1h);
  o.outage_probe_interval = 1h;  // no probe during the test: every attempt below would be one too many
  AuthEnv env(o);
  const db::Project project = env.add_project();
  const std::string token = env.add_token(project, std::nullopt, env.clock + 24h);
  const std::string quota = env.add_token(project, 10, env.clock + 24h);
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  REQUIRE(env.authorize(bearer(quota)).outcome == auth::Outcome::authorized);
  env.db.down = true;
  env.clock += 3s;
  REQUIRE(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);  // tried the database, then stale
  const int attempts = env.db.refused;
  CHECK(attempts >= 1);
  for (int i = 0; i < 20; ++i) CHECK(env.authorize(bearer(token)).outcome == auth::Outcome::authorized);
  CHECK(env.db.refused == attempts);
  CHECK(env.svc().stats().stale_served == 21);
  // A quota token still asks the database for its grant.
  CHECK(env.authorize(bearer(quota)).outcome == auth::Outcome::service_unavailable);
  CHECK(env.db.refused == attempts + 1);
}
