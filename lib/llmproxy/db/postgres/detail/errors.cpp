#include "llmproxy/db/postgres/detail/errors.hpp"

#include <exception>
#include <pqxx/except>
#include <string>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::postgres::detail {

ErrorKind classify_sqlstate(std::string_view s) {
  if (s == "23505") return ErrorKind::conflict;
  if (s == "23503" || s == "23514" || s == "23502" || s == "22P02") return ErrorKind::invalid;
  if (s == "57014" || s == "55P03") return ErrorKind::timeout;
  // 08: connection exception; 57P01-57P03: the server is shutting down or starting up; 53300: too many
  // connections. All of them pass once the server is back, which is what Unavailable (503) says.
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300") {
    return ErrorKind::unavailable;
  }
  return ErrorKind::other;
}

std::string first_line(std::string_view message) {
  const auto end = message.find('\n');
  if (end != std::string_view::npos) message = message.substr(0, end);
  for (std::string_view prefix : {"ERROR:", "FATAL:", "PANIC:"}) {
    if (message.starts_with(prefix)) {
      message.remove_prefix(prefix.size());
      break;
    }
  }
  while (!message.empty() && (message.front() == ' ' || message.front() == '\t')) message.remove_prefix(1);
  while (!message.empty() && (message.back() == ' ' || message.back() == '\r')) message.remove_suffix(1);
  return std::string{message};
}

namespace {

std::string with_context(std::string_view context, std::string_view detail) {
  std::string out{context};
  out += ": ";
  out += detail.empty() ? std::string_view{"database error"} : detail;
  return out;
}

}  // namespace

[[noreturn]] void rethrow_as_db_error(std::string_view context) {
  try {
    throw;
  } catch (const db::Error&) {
    throw;
  } catch (const pqxx::broken_connection& e) {
    throw db::Unavailable(with_context(context, "connection to PostgreSQL lost: " + first_line(e.what())));
  } catch (const pqxx::in_doubt_error&) {
    // The connection broke during COMMIT: whether the transaction committed is unknown.
    throw db::Unavailable(with_context(context, "connection lost during commit; outcome unknown"));
  } catch (const pqxx::sql_error& e) {
    const std::string message = with_context(context, first_line(e.what()));
    switch (classify_sqlstate(e.sqlstate())) {
      case ErrorKind::conflict:
        throw db::Conflict(message);
      case ErrorKind::invalid:
        throw db::Invalid(message);
      case ErrorKind::timeout:
        throw db::Timeout(message);
      case ErrorKind::unavailable:
        throw db::Unavailable(message);
      case ErrorKind::other:
        break;
    }
    throw db::Error(message);
  } catch (const std::exception& e) {
    throw db::Error(with_context(context, first_line(e.what())));
  } catch (...) {
    throw db::Error(with_context(context, "unknown error"));
  }
}

bool current_exception_breaks_connection() {
  try {
    throw;
  } catch (const pqxx::broken_connection&) {
    return true;
  } catch (const pqxx::in_doubt_error&) {
    return true;
  } catch (const pqxx::sql_error& e) {
    const auto& s = e.sqlstate();
    return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03";
  } catch (...) {
    return false;
  }
}

}  // namespace llmproxy::db::postgres::detail
