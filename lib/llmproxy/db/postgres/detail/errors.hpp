#pragma once
/// Translation of libpqxx exceptions into the db:: error tree, by SQLSTATE.
#include <string>
#include <string_view>

namespace llmproxy::db::postgres::detail {

enum class ErrorKind { conflict, invalid, timeout, unavailable, other };

/// What a SQLSTATE means to the repository layer: 23505 conflict; 23503/23514/23502/22P02 invalid;
/// 57014/55P03 timeout; 08xxx, 57P01-57P03, 53300 unavailable; anything else other.
ErrorKind classify_sqlstate(std::string_view sqlstate);

/// The first line of a server message without libpq's `ERROR:  ` / `FATAL:  ` prefix. The DETAIL lines that
/// follow can quote row values, so they are never copied into a db::Error.
std::string first_line(std::string_view message);

/// Rethrows the exception currently being handled as a db::Error subclass, its message prefixed by `context`
/// (the repository method). db::Error passes unchanged. Call only inside a catch block.
[[noreturn]] void rethrow_as_db_error(std::string_view context);

/// True if the exception currently being handled means the connection is unusable
/// (pqxx::broken_connection, SQLSTATE class 08, administrator shutdown). Call only inside a catch block.
bool current_exception_breaks_connection();

}  // namespace llmproxy::db::postgres::detail
