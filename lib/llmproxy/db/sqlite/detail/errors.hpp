#pragma once
/// SQLite result codes -> the db:: error tree. Takes plain ints so it needs no SQLite header and is testable alone.
#include <string>
#include <string_view>

namespace llmproxy::db::sqlite::detail {

/// Throws the db:: error for an SQLite (extended) result code: UNIQUE/PRIMARYKEY constraint -> Conflict;
/// FOREIGNKEY/CHECK/NOTNULL constraint -> Invalid; BUSY/LOCKED -> Timeout; CANTOPEN/IOERR/FULL/CORRUPT/NOTADB
/// -> Unavailable; anything else (including a negative code from a wrapper-level failure) -> Error.
/// The message is "sqlite: <operation>: <message>"; SQLite messages name tables and columns, never values.
[[noreturn]] void throw_translated(int extended_code, std::string_view operation, std::string_view message);

}  // namespace llmproxy::db::sqlite::detail
