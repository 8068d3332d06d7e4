#pragma once
/// Test support for the auth unit tests: a TokenService over the real SQLite driver behind the fault injector,
/// with a manual clock (AuthEnv), driven step by step on an io_context.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/token.hpp"
#include "support/temp_dir.hpp"
#include "unit/faulty_database_fixture.hpp"

namespace llmproxy::testing {

namespace net = boost::asio;
namespace auth = llmproxy::auth;
namespace db = llmproxy::db;
namespace util = llmproxy::util;
using namespace std::chrono_literals;

inline constexpr const char* kUpstreamKey = "sk-upstream-secret";

/// A migrated SQLite database behind the fault injector, an executor, a cipher, an auditor writing to the same
/// database, and a manual clock. Members are destroyed in reverse order: service, auditor, executor, io_context,
/// database.
struct AuthEnv {
  explicit AuthEnv(auth::Options o = {}) : options(o) { auditor.start(); }

  llmproxy::test::TempDir dir;
  std::unique_ptr<db::Driver> driver = llmproxy::testing::open_migrated_sqlite(dir.path() / "auth.sqlite");
  FaultyDatabase db{*driver};
  // Before the executor: a pool thread still holds an executor of `io` for a moment after handing a result
  // back, so the pool is joined (destroyed) before the io_context.
  net::io_context io;
  db::Executor executor{2};
  util::Cipher cipher{std::string(32, 'k')};
  llmproxy::audit::Auditor auditor{[this] {
    llmproxy::audit::Options a;
    a.repository = driver.get();
    return a;
  }()};
  util::TimePoint clock = util::now();
  auth::Options options;
  std::unique_ptr<auth::TokenService> service;

  auth::TokenService& svc() {
    if (!service) {
      service = std::make_unique<auth::TokenService>(db, executor, cipher, &auditor, options, [this] { return clock; });
    }
    return *service;
  }

  db::Project add_project(bool active = true) {
    db::Project p;
    p.id = util::uuid_v4();
    p.name = "project-" + p.id;
    p.api_key = cipher.encrypt(kUpstreamKey);
    p.is_active = active;
    p.created_at = p.updated_at = clock;
    driver->create_project(p);
    return p;
  }

  /// Creates a token and returns its secret; `row` receives the stored row.
  std::string add_token(const db::Project& p, std::optional<std::int64_t> max_requests = std::nullopt,
                        std::optional<util::TimePoint> expires_at = std::nullopt, db::Token* row = nullptr) {
    const std::string secret = util::generate_token();
    db::Token t;
    t.id = util::uuid_v4();
    t.token_hash = util::sha256_hex(secret);
    t.token_hint = util::token_hint(secret);
    t.project_id = p.id;
    t.expires_at = expires_at ? expires_at : clock + 1h;
    t.max_requests = max_requests;
    t.created_at = clock;
    driver->create_token(t);
    if (row != nullptr) *row = t;
    return secret;
  }

  /// Drives one authorize() to completion on `io` (step by step: the flush loop, once started, never ends).
  auth::Authorization authorize(const std::string& header) {
    std::optional<auth::Authorization> result;
    std::exception_ptr error;
    bool done = false;
    net::co_spawn(
        io, [&]() -> net::awaitable<void> { result = co_await svc().authorize(header); },
        [&](std::exception_ptr e) {
          error = e;
          done = true;
        });
    io.restart();
    while (!done && io.run_one() > 0) {
    }
    if (error) std::rethrow_exception(error);
    REQUIRE(result.has_value());
    return *result;
  }

  std::vector<db::AuditEvent> denied_events() {
    REQUIRE(auditor.wait_idle(5s));
    db::AuditFilter f;
    f.action = "proxy.denied";
    f.page.page_size = 100;
    return driver->list_audit_events(f).items;
  }
};

inline std::string bearer(const std::string& token) { return "Bearer " + token; }


}  // namespace llmproxy::testing
