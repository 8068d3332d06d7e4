#pragma once
/// Internal to db/sqlite: one SQLite connection with its prepared-statement cache, and one execution of a
/// statement. Included only by the .cpp files of this folder (it names SQLiteCpp types, declared forward here so
/// the SQLiteCpp headers themselves stay in .cpp files).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "llmproxy/db/sql.hpp"
#include "llmproxy/util/time.hpp"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace llmproxy::db::sqlite::detail {

enum class Role {
  writer,  // read-write, creates the file, switches it to WAL
  reader,  // read-only
};

/// One open connection with the project's PRAGMAs applied (WAL, synchronous=NORMAL, foreign_keys=ON, busy
/// timeout). Not thread-safe: used by one thread at a time, whoever holds it (writer mutex or reader lease).
class Connection {
 public:
  /// Throws SQLite::Exception if the file cannot be opened or a PRAGMA fails.
  Connection(const std::string& path, Role role, std::chrono::milliseconds busy_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  SQLite::Database& db() { return *db_; }

  /// The prepared statement for `sql` (written with $n), prepared on first use and kept for the life of the
  /// connection. Returned reset, with its bindings cleared.
  SQLite::Statement& cached(std::string_view sql);

  /// Runs one or more statements without results (DDL, BEGIN, COMMIT).
  void exec(const std::string& sql);

  std::chrono::milliseconds busy_timeout() const { return busy_timeout_; }
  void set_busy_timeout(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<SQLite::Database> db_;
  std::chrono::milliseconds busy_timeout_;
  // Keyed by the $n text, so the rewrite runs once per statement and connection. Declared after db_ so the
  // statements are finalized before the connection closes.
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

/// A bound value of a statement built at run time (the audit filter).
using Value = std::variant<std::nullptr_t, std::int64_t, std::string>;

/// One execution of a statement: binds the arguments as $1..$n, steps through the rows, and resets the
/// statement when it goes out of scope so a pooled connection never keeps a read transaction open.
class Query {
 public:
  /// Uses the connection's cached statement for `sql`.
  Query(Connection& conn, std::string_view sql);
  Query(Connection& conn, const sql::Statement& statement) : Query(conn, statement.text) {}
  /// Prepares `sql` for this execution only (text that varies, such as the audit filter).
  static Query uncached(Connection& conn, std::string_view sql);
  ~Query();
  Query(Query&& other) noexcept;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& operator=(Query&&) = delete;

  // Binders: parameter `index` is the n of $n.
  Query& bind(int index, std::nullptr_t);
  Query& bind(int index, std::int64_t value);
  Query& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Query& bind(int index, bool value) { return bind(index, static_cast<std::int64_t>(value ? 1 : 0)); }
  Query& bind(int index, const std::string& value);
  Query& bind(int index, const char* value) { return bind(index, std::string(value)); }
  Query& bind(int index, util::TimePoint value) { return bind(index, util::format_time(value)); }
  Query& bind(int index, const Value& value);
  template <class T>
  Query& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }
  /// Binds args to $1, $2, ... in order.
  template <class... Args>
  Query& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  /// Steps to the next row; false when there is none.
  bool next();
  /// Steps to the end (so a RETURNING statement or an autocommit write has finished, errors included);
  /// returns the number of rows the statement changed.
  std::int64_t run();

  // Columns of the current row, 0-based. Timestamps are parsed from the fixed-width text form; an unparsable
  // stored value throws db::Error naming the column.
  bool is_null(int column) const;
  std::string text(int column) const;
  std::optional<std::string> opt_text(int column) const;
  std::int64_t int64(int column) const;
  std::optional<std::int64_t> opt_int64(int column) const;
  bool boolean(int column) const { return int64(column) != 0; }
  util::TimePoint time(int column) const;
  std::optional<util::TimePoint> opt_time(int column) const;

 private:
  explicit Query(std::unique_ptr<SQLite::Statement> owned);

  std::unique_ptr<SQLite::Statement> owned_;  // set when uncached
  SQLite::Statement* statement_ = nullptr;
};

}  // namespace llmproxy::db::sqlite::detail
