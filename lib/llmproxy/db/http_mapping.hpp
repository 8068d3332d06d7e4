#pragma once
/// The one place that maps the db:: error tree to HTTP (SPEC §4.2): NotFound 404, Conflict 409, Invalid 400,
/// Unavailable/Timeout 503, anything else 500.
#include <exception>
#include <string>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db {

struct HttpMapping {
  int status = 500;
  const char* code = "internal_error";
  std::string message;
};

/// Maps the exception currently held by `error` (from std::current_exception()).
inline HttpMapping map_to_http(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const NotFound& e) {
    return {404, "not_found", e.what()};
  } catch (const Conflict& e) {
    return {409, "conflict", e.what()};
  } catch (const Invalid& e) {
    return {400, "invalid_request", e.what()};
  } catch (const Unavailable&) {
    return {503, "service_unavailable", "the database is unavailable, try again later"};
  } catch (const std::exception&) {
    return {500, "internal_error", "internal server error"};
  }
}

}  // namespace llmproxy::db
