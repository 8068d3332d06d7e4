#include "llmproxy/db/postgres/detail/migration_session.hpp"

#include <algorithm>
#include <exception>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/connection.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"
#include "llmproxy/db/postgres/detail/queries.hpp"
#include "llmproxy/db/postgres/detail/rows.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::db::postgres::detail {

namespace {

const std::string kLockKey = std::to_string(kMigrationLockKey);

std::string text_of(const sql::Statement& statement) { return std::string(statement.text); }

/// One file's transaction on the session connection; pqxx::work rolls back unless committed.
class Transaction final : public migrate::Transaction {
 public:
  explicit Transaction(pqxx::connection& conn) : tx_(conn) {}

  bool recorded(std::int64_t version) override {
    return !tx_.exec_params(text_of(sql::kMigrationRecorded), version).empty();
  }
  void execute(const std::string& statement) override { tx_.exec(statement); }
  void record(const migrate::AppliedMigration& row) override {
    tx_.exec_params(text_of(sql::kInsertMigration), row.version, row.name, row.checksum,
                    util::format_time(row.applied_at), row.execution_ms);
  }
  void forget(std::int64_t version) override { tx_.exec_params(text_of(sql::kDeleteMigration), version); }
  void commit() override { tx_.commit(); }

 private:
  pqxx::work tx_;
};

}  // namespace

MigrationSession::MigrationSession(const std::string& conninfo, const std::string& target,
                                   std::chrono::milliseconds lock_timeout)
    : conn_(connect(conninfo, target)) {
  // lock_timeout = 0 would mean "wait forever" to PostgreSQL.
  const auto timeout_ms = std::max<std::chrono::milliseconds::rep>(lock_timeout.count(), 1);
  try {
    pqxx::nontransaction tx(*conn_);
    // NOTICEs such as "relation already exists, skipping" are noise here; statement_timeout is left at the
    // server's default because a migration may legitimately run long.
    tx.exec("SET client_min_messages = warning; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'; SET lock_timeout = " +
            std::to_string(timeout_ms));
    try {
      tx.exec("SELECT pg_advisory_lock(" + kLockKey + ")");
    } catch (const pqxx::sql_error& e) {
      if (classify_sqlstate(e.sqlstate()) != ErrorKind::timeout) throw;
      throw migrate::MigrationError(
          "another llm-proxy process has held the migration lock for longer than MIGRATION_LOCK_TIMEOUT (" +
          util::format_duration(lock_timeout) +
          "); wait for it to finish (or stop it) and retry, or raise MIGRATION_LOCK_TIMEOUT");
    }
    // Statements of the migrations themselves wait for table locks as long as the server's default allows.
    tx.exec("RESET lock_timeout");
    tx.exec(text_of(kCreateSchemaMigrations));
  } catch (const migrate::MigrationError&) {
    throw;
  } catch (...) {
    rethrow_as_db_error("starting a migration session on " + target);
  }
}

MigrationSession::~MigrationSession() {
  try {
    if (conn_ && conn_->is_open()) {
      pqxx::nontransaction tx(*conn_);
      tx.exec("SELECT pg_advisory_unlock(" + kLockKey + ")");
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): closing the connection right after releases the lock anyway
  }
}

std::vector<migrate::AppliedMigration> MigrationSession::applied() {
  try {
    pqxx::nontransaction tx(*conn_);
    std::vector<migrate::AppliedMigration> out;
    for (const auto& row : tx.exec(text_of(sql::kSelectApplied))) out.push_back(applied_of(row));
    return out;
  } catch (...) {
    rethrow_as_db_error("reading schema_migrations");
  }
}

std::unique_ptr<migrate::Transaction> MigrationSession::begin() { return std::make_unique<Transaction>(*conn_); }

}  // namespace llmproxy::db::postgres::detail
