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

/// The transaction in which one migration file is applied or reverted, opened by Session::begin(). Narrow on
/// purpose: the runner decides what to run and records the outcome (one policy for every driver); the driver
/// only executes. Rolls back in its destructor unless committed. Every method may throw any std::exception
/// carrying the database's message; the runner reports it as a MigrationError naming the file and statement.
class Transaction {
 public:
  virtual ~Transaction() = default;
  /// Whether schema_migrations has a row for `version`, read inside this transaction (so under the lock).
  virtual bool recorded(std::int64_t version) = 0;
  /// Runs one statement of a migration file.
  virtual void execute(const std::string& statement) = 0;
  /// Inserts the schema_migrations row of an applied file.
  virtual void record(const AppliedMigration& row) = 0;
  /// Deletes the schema_migrations row of a reverted file.
  virtual void forget(std::int64_t version) = 0;
  virtual void commit() = 0;
};

/// A migrating session: holds the migration lock (PostgreSQL advisory lock on a dedicated connection) for its
/// lifetime, released by the destructor. `schema_migrations` exists once the session is open.
class Session {
 public:
  virtual ~Session() = default;
  /// Applied rows, sorted by version.
  virtual std::vector<AppliedMigration> applied() = 0;
  /// Opens the transaction for one file. SQLite: BEGIN IMMEDIATE, waiting for the database write lock within
  /// the session's lock timeout (MigrationError naming MIGRATION_LOCK_TIMEOUT after that).
  virtual std::unique_ptr<Transaction> begin() = 0;
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
