#include "llmproxy/db/sqlite/detail/errors.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <exception>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::sqlite::detail {

void throw_translated(int extended_code, std::string_view operation, std::string_view message) {
  std::string text = "sqlite: ";
  text.append(operation).append(": ").append(message);
  switch (extended_code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      throw Conflict(text);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      throw Invalid(text);
    default:
      break;
  }
  // Negative codes come from SQLiteCpp itself (misuse such as reading a column without a row).
  const int primary = extended_code < 0 ? extended_code : (extended_code & 0xff);
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw Timeout(text);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      throw Unavailable(text);
    default:
      throw Error(text);
  }
}

void rethrow_as_db_error(std::string_view operation) {
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const SQLite::Exception& e) {
    const int code = e.getExtendedErrorCode() > 0 ? e.getExtendedErrorCode() : e.getErrorCode();
    throw_translated(code, operation, e.what());
  } catch (const std::exception& e) {
    throw Error("sqlite: " + std::string(operation) + ": " + e.what());
  } catch (...) {
    throw Error("sqlite: " + std::string(operation) + ": unknown error");
  }
}

bool current_exception_breaks_connection() {
  try {
    throw;
  } catch (const SQLite::Exception& e) {
    const int primary = e.getErrorCode() & 0xff;
    return primary == SQLITE_IOERR || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
           primary == SQLITE_CANTOPEN;
  } catch (...) {
    return false;
  }
}

}  // namespace llmproxy::db::sqlite::detail
