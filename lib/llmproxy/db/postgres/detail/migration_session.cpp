#include "llmproxy/db/postgres/detail/migration_session.hpp"

#include <exception>
#include <pqxx/except>
#include <pqxx/result>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"
#include "llmproxy/db/postgres/detail/pool.hpp"
#include "llmproxy/db/postgres/detail/queries.hpp"
#include "llmproxy/db/postgres/detail/rows.hpp"
#include "llmproxy/migrate/runner.hpp"

namespace llmproxy::db::postgres::detail {

namespace {

const std::string kLockKey = std::to_string(kMigrationLockKey);

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// A server message (possibly several lines: ERROR, DETAIL, HINT, LINE) on one line.
std::string db_message(const std::exception& e) { return statement_preview(e.what(), 2000); }

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

[[noreturn]] void fail(const std::string& file, const std::string& statement, const std::exception& e) {
  throw migrate::MigrationError("migration " + file + " failed and was rolled back (nothing of it was applied); " +
                                "statement: " + statement_preview(statement) + "; database error: " + db_message(e));
}

}  // namespace

std::string statement_preview(const std::string& statement, std::size_t max_chars) {
  std::string out;
  bool space = false;
  for (char c : statement) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max_chars) return out;
  std::size_t cut = max_chars;
  // Do not split a UTF-8 sequence: back up to the byte that starts one.
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  return out.substr(0, cut) + "...";
}

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
          format_duration(lock_timeout) +
          "); wait for it to finish (or stop it) and retry, or raise MIGRATION_LOCK_TIMEOUT");
    }
    // Statements of the migrations themselves wait for table locks as long as the server's default allows.
    tx.exec("RESET lock_timeout");
    tx.exec(kCreateSchemaMigrations);
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
  } catch (...) {  // the connection closes right after, which releases the lock anyway
  }
}

std::vector<migrate::AppliedMigration> MigrationSession::applied() {
  try {
    pqxx::nontransaction tx(*conn_);
    std::vector<migrate::AppliedMigration> out;
    for (const auto& row : tx.exec(kSelectApplied)) out.push_back(applied_of(row));
    return out;
  } catch (...) {
    rethrow_as_db_error("reading schema_migrations");
  }
}

bool MigrationSession::apply_up(const migrate::MigrationFile& file, const std::vector<std::string>& statements,
                                const std::string& checksum) {
  const std::string name = migrate::label(file.version, file.name) + ".up.sql";
  std::string current;
  try {
    pqxx::work tx(*conn_);
    if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", file.version).empty()) return false;
    const auto started = std::chrono::steady_clock::now();
    for (const auto& statement : statements) {
      if (blank(statement)) continue;
      current = statement;
      tx.exec(statement);
    }
    current.clear();
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
    tx.exec_params(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at, execution_ms) "
        "VALUES ($1, $2, $3, $4::timestamptz, $5)",
        file.version, file.name, checksum, util::format_time(util::now()), static_cast<std::int64_t>(elapsed));
    tx.commit();
    return true;
  } catch (const migrate::MigrationError&) {
    throw;
  } catch (const std::exception& e) {
    fail(name, current.empty() ? std::string{"(recording the version / commit)"} : current, e);
  }
}

bool MigrationSession::apply_down(const migrate::MigrationFile& file, const std::vector<std::string>& statements) {
  const std::string name = migrate::label(file.version, file.name) + ".down.sql";
  std::string current;
  try {
    pqxx::work tx(*conn_);
    if (tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", file.version).empty()) return false;
    for (const auto& statement : statements) {
      if (blank(statement)) continue;
      current = statement;
      tx.exec(statement);
    }
    current.clear();
    tx.exec_params("DELETE FROM schema_migrations WHERE version = $1", file.version);
    tx.commit();
    return true;
  } catch (const migrate::MigrationError&) {
    throw;
  } catch (const std::exception& e) {
    fail(name, current.empty() ? std::string{"(removing the version / commit)"} : current, e);
  }
}

}  // namespace llmproxy::db::postgres::detail
