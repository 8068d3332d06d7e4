#include "llmproxy/db/sqlite/raw_connection.hpp"

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/detail/errors.hpp"
#include "llmproxy/db/sqlite/detail/placeholders.hpp"

namespace llmproxy::db::sqlite {
namespace {

class SqliteRawConnection final : public RawConnection {
 public:
  SqliteRawConnection(const std::string& path, Access access, std::chrono::milliseconds busy_timeout)
      : db_(path, access == Access::read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE,
            static_cast<int>(std::clamp<std::int64_t>(busy_timeout.count(), 0, INT_MAX))) {
    // Read-only leaves the file exactly as it is (a reader's `PRAGMA journal_mode = WAL` would try to switch a
    // rollback-journal file). A writer gets the server's settings.
    if (access == Access::read_write) {
      db_.exec("PRAGMA journal_mode = WAL");
      db_.exec("PRAGMA foreign_keys = ON");
    }
    // SQLite opens lazily: this read fails here, not later, for a file that is not a database.
    db_.exec("SELECT count(*) FROM sqlite_master");
  }

  Dialect dialect() const override { return Dialect::sqlite; }

  std::vector<Row> query(const std::string& sql, const std::vector<Cell>& params) override {
    try {
      SQLite::Statement st(db_, detail::rewrite_placeholders(sql));
      bind(st, params);
      std::vector<Row> rows;
      while (st.executeStep()) {
        Row row;
        const int n = st.getColumnCount();
        row.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
          if (st.isColumnNull(i)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(st.getColumn(i).getString());
          }
        }
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (...) {
      detail::rethrow_as_db_error("query");
    }
  }

  std::int64_t execute(const std::string& sql, const std::vector<Cell>& params) override {
    try {
      SQLite::Statement st(db_, detail::rewrite_placeholders(sql));
      bind(st, params);
      while (st.executeStep()) {
      }
      return st.getChanges();
    } catch (...) {
      detail::rethrow_as_db_error("execute");
    }
  }

  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing open, or the connection is gone; either way done
    }
  }

  std::vector<std::string> columns(const std::string& table) override {
    std::vector<std::string> out;
    for (const auto& row : query("SELECT name FROM pragma_table_info($1)", {table})) {
      if (row.at(0)) out.push_back(*row.at(0));
    }
    return out;
  }

 private:
  static void bind(SQLite::Statement& st, const std::vector<Cell>& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      if (params[i]) {
        st.bind(index, *params[i]);
      } else {
        st.bind(index);
      }
    }
  }

  void exec(const std::string& sql) {
    try {
      db_.exec(sql);
    } catch (...) {
      detail::rethrow_as_db_error(sql);
    }
  }

  SQLite::Database db_;
};

}  // namespace

std::unique_ptr<RawConnection> open_raw(const std::string& path, Access access,
                                        std::chrono::milliseconds busy_timeout) {
  try {
    return std::make_unique<SqliteRawConnection>(path, access, busy_timeout);
  } catch (const db::Error&) {
    throw;
  } catch (const std::exception& e) {
    // SQLite's open messages name the file problem ("unable to open database file", "file is not a database").
    throw db::Unavailable("sqlite: cannot open " + path + ": " + e.what());
  }
}

}  // namespace llmproxy::db::sqlite
