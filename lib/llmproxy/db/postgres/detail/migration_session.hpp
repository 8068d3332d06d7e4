#pragma once
/// The PostgreSQL migration session: a dedicated connection (never one of the pool's) holding the migration
/// advisory lock for the session's lifetime. The twin of db/sqlite/detail/migration_session.hpp.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "llmproxy/migrate/backend.hpp"

namespace llmproxy::db::postgres::detail {

/// The advisory lock key every llm-proxy process uses for migrations ("llm-prxy" in ASCII).
inline constexpr std::int64_t kMigrationLockKey = 0x6c6c6d2d70727879;

class MigrationSession final : public migrate::Session {
 public:
  /// Connects (db::Unavailable on failure), waits at most `lock_timeout` for pg_advisory_lock (MigrationError
  /// naming MIGRATION_LOCK_TIMEOUT on timeout), then creates schema_migrations if missing: under the lock, so
  /// concurrent first boots do not race on CREATE TABLE.
  MigrationSession(const std::string& conninfo, const std::string& target, std::chrono::milliseconds lock_timeout);
  /// Releases the lock (closing the connection would release it as well).
  ~MigrationSession() override;
  MigrationSession(const MigrationSession&) = delete;
  MigrationSession& operator=(const MigrationSession&) = delete;

  std::vector<migrate::AppliedMigration> applied() override;
  /// A pqxx::work on the session's connection (the lock is held already).
  std::unique_ptr<migrate::Transaction> begin() override;

 private:
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace llmproxy::db::postgres::detail
