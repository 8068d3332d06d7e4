#pragma once
/// The SQLite driver. WAL, synchronous=NORMAL, foreign_keys=ON, busy timeout = statement_timeout; one writer
/// connection (writes serialized by a mutex), up to pool_size reader connections; ":memory:" uses one shared
/// connection. SQLiteCpp is included only in the .cpp files of this folder.
#include <memory>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/driver.hpp"

namespace llmproxy::db::sqlite {

/// Opens the database file (creating its parent directory). Throws db::Unavailable if it cannot be opened.
/// Creates no table: schema comes from migrations.
std::unique_ptr<Driver> open(const config::DatabaseConfig& config);

}  // namespace llmproxy::db::sqlite
