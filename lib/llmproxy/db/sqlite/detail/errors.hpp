#pragma once
/// Translation of SQLite errors into the db:: error tree, by result code. The twin of
/// db/postgres/detail/errors.hpp.
#include <string>
#include <string_view>

namespace llmproxy::db::sqlite::detail {

/// Throws the db:: error for an SQLite (extended) result code: UNIQUE/PRIMARYKEY constraint -> Conflict;
/// FOREIGNKEY/CHECK/NOTNULL constraint -> Invalid; BUSY/LOCKED -> Timeout; CANTOPEN/IOERR/FULL/CORRUPT/NOTADB
/// -> Unavailable; anything else (including a negative code from a wrapper-level failure) -> Error.
/// The message is "sqlite: <operation>: <message>"; SQLite messages name tables and columns, never values.
/// Takes plain ints so it needs no SQLite header and is testable alone.
[[noreturn]] void throw_translated(int extended_code, std::string_view operation, std::string_view message);

/// Rethrows the exception currently being handled as a db::Error subclass (SQLite::Exception by its code,
/// anything else as db::Error naming `operation`). db::Error passes unchanged. Call only inside a catch block.
[[noreturn]] void rethrow_as_db_error(std::string_view operation);

/// True if the exception currently being handled means the connection's file handle is unusable (IOERR,
/// CORRUPT, NOTADB, CANTOPEN), so a pooled reader is closed rather than reused. Call only inside a catch block.
bool current_exception_breaks_connection();

}  // namespace llmproxy::db::sqlite::detail
