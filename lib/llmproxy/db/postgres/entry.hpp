#pragma once
/// The PostgreSQL driver's entry points as one table, for a program that does not link the driver: the server
/// loads it as a module (llm-proxy-postgres.so, see storage/postgres_module.hpp) only when DB_DRIVER=postgres, so a
/// SQLite deployment never maps libpq and the libraries it brings (Kerberos, LDAP, GnuTLS: about 3 MB resident).
/// The test programs link the driver itself, and then find the same table in their own image.
#include <chrono>
#include <memory>
#include <string>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/driver.hpp"
#include "llmproxy/db/raw_connection.hpp"

namespace llmproxy::db::postgres {

/// Raised when this table changes shape, so a module from another build is refused rather than misused.
inline constexpr int kEntryVersion = 1;

struct Entry {
  int version;
  std::unique_ptr<Driver> (*open)(const config::DatabaseConfig& config);
  std::unique_ptr<RawConnection> (*open_raw)(const std::string& url, Access access,
                                             std::chrono::milliseconds connect_timeout);
};

}  // namespace llmproxy::db::postgres

/// The driver's table (defined in entry.cpp). Unmangled, so the loader can find it by name.
extern "C" const llmproxy::db::postgres::Entry* llmproxy_postgres_entry();
