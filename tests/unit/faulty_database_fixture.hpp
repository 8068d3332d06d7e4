#pragma once
/// Test support for the auth and audit unit tests: a migrated SQLite database (put it in a test::TempDir), and a
/// fault-injecting decorator. The decorator is not a mock: every call goes to the real SQLite driver unless the
/// test switched the database "down", in which case it throws what a driver throws during an outage
/// (db::Unavailable). It also counts round trips, so tests can assert that a path made none.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/db/driver.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/sqlite_database.hpp"
#include "llmproxy/migrate/runner.hpp"

namespace llmproxy::testing {

/// The real SQLite driver on `file`, with every migration applied.
inline std::unique_ptr<db::Driver> open_migrated_sqlite(const std::filesystem::path& file) {
  config::DatabaseConfig c;
  c.driver = config::DbDriver::sqlite;
  c.path = file.string();
  c.pool_size = 4;
  c.statement_timeout = std::chrono::seconds(10);
  c.startup_timeout = std::chrono::seconds(2);
  c.migration_lock_timeout = std::chrono::seconds(20);
  auto driver = db::sqlite::open(c);
  migrate::Runner(*driver, driver->files(), std::chrono::seconds(20)).up();
  return driver;
}

/// Forwards to a real database; throws db::Unavailable from every repository call while `down` is set.
class FaultyDatabase final : public db::Database {
 public:
  explicit FaultyDatabase(db::Database& real) : real_(real) {}

  std::atomic<bool> down{false};      // atomic: flipped by the test thread, read by pool threads
  std::atomic<int> token_lookups{0};  // atomic counters of round trips that reached `real_`
  std::atomic<int> project_lookups{0};
  std::atomic<int> quota_calls{0};
  std::atomic<int> usage_writes{0};
  std::atomic<int> audit_writes{0};
  mutable std::atomic<int> refused{0};  // atomic counter: calls refused while `down`

  int round_trips() const { return token_lookups + project_lookups + quota_calls + usage_writes + audit_writes; }

  /// While held, find_token_by_hash blocks its pool thread until release_token_lookups() (a slow database).
  void hold_token_lookups() {
    std::lock_guard lock(hold_mutex_);
    held_ = true;
  }
  void release_token_lookups() {
    {
      std::lock_guard lock(hold_mutex_);
      held_ = false;
    }
    hold_released_.notify_all();
  }
  /// Token lookups blocked in hold_token_lookups() now.
  int token_lookups_held() const {
    std::lock_guard lock(hold_mutex_);
    return blocked_;
  }
  /// While held, consume_quota blocks its pool thread (before the outage switch is looked at) until
  /// release_quota(): a grant statement in flight.
  void hold_quota() {
    std::lock_guard lock(hold_mutex_);
    quota_held_ = true;
  }
  void release_quota() {
    {
      std::lock_guard lock(hold_mutex_);
      quota_held_ = false;
    }
    hold_released_.notify_all();
  }
  /// consume_quota calls blocked in hold_quota() now.
  int quota_calls_held() const {
    std::lock_guard lock(hold_mutex_);
    return quota_blocked_;
  }
  std::atomic<std::int64_t> max_quota_units{0};  // atomic: the most units one consume_quota call asked for

  void create_project(const db::Project& p) override { gate(), real_.create_project(p); }
  db::Project get_project(const std::string& id) override {
    gate();
    ++project_lookups;
    return real_.get_project(id);
  }
  db::Page<db::Project> list_projects(db::PageRequest page) override { return gate(), real_.list_projects(page); }
  db::Project update_project(const std::string& id, const db::ProjectUpdate& u, db::TimePoint now) override {
    return gate(), real_.update_project(id, u, now);
  }

  void create_token(const db::Token& t) override { gate(), real_.create_token(t); }
  db::Token get_token(const std::string& id) override { return gate(), real_.get_token(id); }
  std::optional<db::Token> find_token_by_hash(const std::string& hash) override {
    gate();
    ++token_lookups;
    {
      std::unique_lock lock(hold_mutex_);
      ++blocked_;
      hold_released_.wait(lock, [this] { return !held_; });
      --blocked_;
    }
    return real_.find_token_by_hash(hash);
  }
  db::Page<db::Token> list_tokens(const std::optional<std::string>& project_id, db::PageRequest page,
                                  std::optional<db::TokenStateFilter> state) override {
    return gate(), real_.list_tokens(project_id, page, state);
  }
  db::Token update_token(const std::string& id, const db::TokenUpdate& u, db::TimePoint now) override {
    return gate(), real_.update_token(id, u, now);
  }
  bool revoke_token(const std::string& id, db::TimePoint now) override { return gate(), real_.revoke_token(id, now); }
  db::RevokeResult revoke_project_tokens(const std::string& project_id, db::TimePoint now) override {
    return gate(), real_.revoke_project_tokens(project_id, now);
  }
  db::QuotaResult consume_quota(const std::string& token_id, std::int64_t units, db::TimePoint now) override {
    {
      std::unique_lock lock(hold_mutex_);
      ++quota_blocked_;
      hold_released_.wait(lock, [this] { return !quota_held_; });
      --quota_blocked_;
    }
    gate();
    ++quota_calls;
    std::int64_t seen = max_quota_units.load();
    while (units > seen && !max_quota_units.compare_exchange_weak(seen, units)) {
    }
    return real_.consume_quota(token_id, units, now);
  }
  void add_usage(const db::UsageBatch& batch) override {
    gate();
    ++usage_writes;
    real_.add_usage(batch);
  }

  std::vector<db::UsageRow> query_usage(const db::UsageQuery& q) override { return gate(), real_.query_usage(q); }
  db::UsageTotals project_usage_totals(const std::string& project_id) override {
    return gate(), real_.project_usage_totals(project_id);
  }

  void insert_audit_events(const std::vector<db::AuditEvent>& events) override {
    gate();
    ++audit_writes;
    real_.insert_audit_events(events);
  }
  db::Page<db::AuditEvent> list_audit_events(const db::AuditFilter& f) override {
    return gate(), real_.list_audit_events(f);
  }
  db::AuditEvent get_audit_event(const std::string& id) override { return gate(), real_.get_audit_event(id); }

  std::string driver_name() const override { return real_.driver_name(); }
  db::HealthReport health() override { return real_.health(); }
  db::PoolStats pool_stats() const override { return real_.pool_stats(); }

 private:
  void gate() const {
    if (down.load()) {
      ++refused;
      throw db::Unavailable("database unavailable (injected by the test)");
    }
  }

  db::Database& real_;
  mutable std::mutex hold_mutex_;  // guards held_, blocked_, quota_held_ and quota_blocked_
  std::condition_variable hold_released_;
  bool held_ = false;
  int blocked_ = 0;
  bool quota_held_ = false;
  int quota_blocked_ = 0;
};

}  // namespace llmproxy::testing
