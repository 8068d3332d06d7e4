#pragma once
/// The SQLite migration session. SQLite has no session-long lock: each file's transaction takes the database
/// write lock with BEGIN IMMEDIATE and the runner checks the version inside it, so two processes never apply
/// the same migration. The twin of db/postgres/detail/migration_session.hpp.
#include <chrono>
#include <memory>
#include <vector>

#include "llmproxy/db/sqlite/detail/pool.hpp"
#include "llmproxy/migrate/backend.hpp"

namespace llmproxy::db::sqlite::detail {

class MigrationSession final : public migrate::Session {
 public:
  /// Creates schema_migrations if missing, waiting at most `lock_timeout` for this process's writer and for
  /// another process's write lock (MigrationError naming MIGRATION_LOCK_TIMEOUT after that).
  MigrationSession(Pool& pool, std::chrono::milliseconds lock_timeout);

  std::vector<migrate::AppliedMigration> applied() override;
  /// BEGIN IMMEDIATE on the writer, held until the transaction ends; both waits share one `lock_timeout`.
  std::unique_ptr<migrate::Transaction> begin() override;

 private:
  Pool& pool_;
  const std::chrono::milliseconds lock_timeout_;
};

/// Rows of schema_migrations by version; empty (nothing created) when the table does not exist.
std::vector<migrate::AppliedMigration> read_applied(Connection& conn);

}  // namespace llmproxy::db::sqlite::detail
