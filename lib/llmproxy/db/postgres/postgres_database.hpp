#pragma once
/// The PostgreSQL driver: a bounded connection pool (pool_size max, idle trimmed to max_idle_conns, connections
/// older than conn_max_lifetime replaced when returned, broken connections discarded and replaced on the next
/// checkout, checkout wait bounded by connect_timeout -> db::Unavailable), statement_timeout set per connection,
/// session TimeZone UTC, every query prepared once per connection. libpqxx is included only in this folder.
#include <memory>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/driver.hpp"

namespace llmproxy::db::postgres {

/// Connects one connection to validate the URL and reachability. Throws db::Unavailable (message without the
/// password) if the server cannot be reached, or db::Error for an invalid URL.
std::unique_ptr<Driver> open(const config::DatabaseConfig& config);

}  // namespace llmproxy::db::postgres
