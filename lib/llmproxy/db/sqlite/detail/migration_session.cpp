#include "llmproxy/db/sqlite/detail/migration_session.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <thread>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/detail/errors.hpp"
#include "llmproxy/db/sqlite/detail/queries.hpp"
#include "llmproxy/db/sqlite/detail/rows.hpp"

namespace llmproxy::db::sqlite::detail {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool is_busy(const SQLite::Exception& e) {
  const int primary = e.getErrorCode() & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

std::string lock_timeout_message(milliseconds lock_timeout) {
  return "timed out after " + std::to_string(lock_timeout.count()) +
         "ms waiting for the SQLite write lock held by another process; stop it or raise MIGRATION_LOCK_TIMEOUT";
}

/// Sets a connection's busy timeout for one scope (migrations wait up to MIGRATION_LOCK_TIMEOUT).
class BusyTimeoutScope {
 public:
  BusyTimeoutScope(Connection& conn, milliseconds timeout) : conn_(conn), saved_(conn.busy_timeout()) {
    conn_.set_busy_timeout(timeout);
  }
  ~BusyTimeoutScope() {
    try {
      conn_.set_busy_timeout(saved_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): setting a busy handler cannot fail on an open connection
    }
  }
  BusyTimeoutScope(const BusyTimeoutScope&) = delete;
  BusyTimeoutScope& operator=(const BusyTimeoutScope&) = delete;

 private:
  Connection& conn_;
  milliseconds saved_;
};

/// One file's transaction on the writer, begun with BEGIN IMMEDIATE; rolled back unless committed.
class Transaction final : public migrate::Transaction {
 public:
  explicit Transaction(Pool::Lease writer) : writer_(std::move(writer)) {}
  ~Transaction() override {
    // Some errors (SQLITE_FULL, IOERR) already rolled back; then ROLLBACK fails harmlessly.
    if (open_) conn().db().tryExec("ROLLBACK");
  }

  bool recorded(std::int64_t version) override {
    Query q(conn(), sql::kMigrationRecorded);
    q.bind_all(version);
    return q.next();
  }
  void execute(const std::string& statement) override { conn().exec(statement); }
  void record(const migrate::AppliedMigration& row) override {
    Query(conn(), sql::kInsertMigration)
        .bind_all(row.version, row.name, row.checksum, row.applied_at, row.execution_ms)
        .run();
  }
  void forget(std::int64_t version) override { Query(conn(), sql::kDeleteMigration).bind_all(version).run(); }
  void commit() override {
    conn().exec("COMMIT");
    open_ = false;
  }

 private:
  Connection& conn() { return writer_.connection(); }

  Pool::Lease writer_;
  bool open_ = true;
};

}  // namespace

std::vector<migrate::AppliedMigration> read_applied(Connection& conn) {
  std::vector<migrate::AppliedMigration> rows;
  {
    Query exists(conn, kSchemaMigrationsExists);
    if (!exists.next()) return rows;
  }
  Query q(conn, sql::kSelectApplied);
  while (q.next()) rows.push_back(applied_of(q));
  return rows;
}

MigrationSession::MigrationSession(Pool& pool, milliseconds lock_timeout) : pool_(pool), lock_timeout_(lock_timeout) {
  try {
    auto writer = pool_.writer(lock_timeout_, "MIGRATION_LOCK_TIMEOUT");
    BusyTimeoutScope wait_for_lock(writer.connection(), lock_timeout_);
    writer.connection().exec(std::string(kCreateSchemaMigrations.text));
  } catch (const SQLite::Exception& e) {
    if (is_busy(e)) {
      throw migrate::MigrationError("cannot create schema_migrations: " + lock_timeout_message(lock_timeout_));
    }
    throw migrate::MigrationError(std::string("cannot create schema_migrations: ") + e.what());
  } catch (const Unavailable& e) {
    throw migrate::MigrationError(std::string("cannot create schema_migrations: ") + e.what());
  }
}

std::vector<migrate::AppliedMigration> MigrationSession::applied() {
  try {
    auto reader = pool_.reader();
    return read_applied(reader.connection());
  } catch (...) {
    rethrow_as_db_error("read applied migrations");
  }
}

std::unique_ptr<migrate::Transaction> MigrationSession::begin() {
  // One deadline for both waits: for this process's writer, then for the database write lock.
  const auto deadline = Clock::now() + lock_timeout_;
  std::optional<Pool::Lease> writer;
  try {
    writer.emplace(pool_.writer(lock_timeout_, "MIGRATION_LOCK_TIMEOUT"));
  } catch (const Unavailable& e) {
    throw migrate::MigrationError(e.what());
  }
  Connection& conn = writer->connection();
  // The busy handler waits for the lock; a BUSY it does not wait for (another process's deadlock avoidance) is
  // retried until the deadline.
  for (;;) {
    const auto remaining = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    try {
      BusyTimeoutScope wait_for_lock(conn, remaining);
      conn.exec("BEGIN IMMEDIATE");
      return std::make_unique<Transaction>(std::move(*writer));
    } catch (const SQLite::Exception& e) {
      if (!is_busy(e)) throw;
      if (Clock::now() >= deadline) throw migrate::MigrationError(lock_timeout_message(lock_timeout_));
    }
    std::this_thread::sleep_for(std::min(milliseconds(50), remaining));
  }
}

}  // namespace llmproxy::db::sqlite::detail
