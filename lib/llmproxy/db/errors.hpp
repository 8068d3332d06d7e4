#pragma once
/// The one error tree of the repository layer. Drivers translate their exceptions into these; the HTTP layer
/// maps them to statuses in one place (NotFound 404, Conflict 409, Unavailable/Timeout 503, Invalid 400).
#include <stdexcept>
#include <string>

namespace llmproxy::db {

/// Base of every repository error. Messages never contain passwords or secrets.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// The addressed row does not exist.
struct NotFound : Error {
  using Error::Error;
};
/// A unique constraint was violated (e.g. duplicate project name).
struct Conflict : Error {
  using Error::Error;
};
/// A referenced row does not exist (foreign key) or a check constraint failed.
struct Invalid : Error {
  using Error::Error;
};
/// Cannot connect, pool checkout timed out, connection broken mid-call.
struct Unavailable : Error {
  using Error::Error;
};
/// A statement exceeded its time bound (statement_timeout, busy timeout, lock timeout).
struct Timeout : Unavailable {
  using Unavailable::Unavailable;
};

}  // namespace llmproxy::db
