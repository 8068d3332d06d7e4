#pragma once
/// What the migration runner needs from a driver. Implemented by SqliteDatabase and PostgresDatabase.
/// Blocking; called from the main thread at boot or by the `migrate` CLI.
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmproxy/migrate/embedded.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::migrate {

/// A migration could not be applied/reverted, the lock was not obtained in time, or the database state is
/// unsafe (checksum mismatch, newer than the binary). The message says what to do. Fatal (exit code 1).
struct MigrationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct AppliedMigration {
  std::int64_t version = 0;
  std::string name;
  std::string checksum;  // SHA-256 hex of the up file
  util::TimePoint applied_at{};
  std::int64_t execution_ms = 0;
};

/// A migrating session: holds the migration lock (PostgreSQL advisory lock on a dedicated connection) for its
/// lifetime, released by the destructor. `schema_migrations` exists once the session is open.
class Session {
 public:
  virtual ~Session() = default;
  /// Applied rows, sorted by version.
  virtual std::vector<AppliedMigration> applied() = 0;
  /// In ONE transaction (SQLite: BEGIN IMMEDIATE): if `file.version` is already recorded, does nothing and
  /// returns false; else runs `statements` in order and inserts the schema_migrations row
  /// (version, name, checksum, applied_at = now, execution_ms), returns true.
  /// On failure rolls back and throws MigrationError naming the file, the failing statement and the DB error.
  virtual bool apply_up(const MigrationFile& file, const std::vector<std::string>& statements,
                        const std::string& checksum) = 0;
  /// In ONE transaction: if `file.version` is not recorded, returns false; else runs `statements` (of the down
  /// file) and deletes the row, returns true. Throws MigrationError like apply_up.
  virtual bool apply_down(const MigrationFile& file, const std::vector<std::string>& statements) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// Applied rows sorted by version, read without creating anything (empty if the table does not exist).
  virtual std::vector<AppliedMigration> read_applied() = 0;
  /// Creates schema_migrations if missing and takes the migration lock, waiting at most `lock_timeout`
  /// (MigrationError on timeout, naming MIGRATION_LOCK_TIMEOUT).
  virtual std::unique_ptr<Session> begin_session(std::chrono::milliseconds lock_timeout) = 0;
  /// The embedded migration files of this driver.
  virtual const std::vector<MigrationFile>& files() const = 0;
};

}  // namespace llmproxy::migrate
