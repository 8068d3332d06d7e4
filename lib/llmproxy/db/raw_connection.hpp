#pragma once
/// One plain database connection that runs SQL it is given, for tools that read tables the repositories do not
/// know (the import of the Go reference's database, storage/import_reference). Everything is text: parameters
/// are bound as text ($1..$n, never spliced into SQL) and every column comes back as its text form. Blocking; not
/// thread-safe (one thread at a time). The server itself never uses it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmproxy::db {

/// A column value or a parameter; nullopt is SQL NULL.
using Cell = std::optional<std::string>;
using Row = std::vector<Cell>;

enum class Dialect { sqlite, postgres };

/// Whether a connection may write.
enum class Access { read_only, read_write };

class RawConnection {
 public:
  virtual ~RawConnection() = default;
  virtual Dialect dialect() const = 0;
  /// Runs one statement and returns all its rows. Throws db::Error (message without secrets or row values).
  virtual std::vector<Row> query(const std::string& sql, const std::vector<Cell>& params = {}) = 0;
  /// Runs one statement and returns the number of rows it changed. Throws db::Error.
  virtual std::int64_t execute(const std::string& sql, const std::vector<Cell>& params = {}) = 0;
  /// Opens a transaction (SQLite: BEGIN IMMEDIATE, so the write lock is taken at once).
  virtual void begin() = 0;
  virtual void commit() = 0;
  /// Rolls back the open transaction; never throws.
  virtual void rollback() noexcept = 0;
  /// The column names of `table` in this database (empty if there is no such table).
  virtual std::vector<std::string> columns(const std::string& table) = 0;
};

}  // namespace llmproxy::db
