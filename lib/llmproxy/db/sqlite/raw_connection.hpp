#pragma once
/// db::RawConnection on one SQLite file (SQLiteCpp stays in the .cpp files of this folder).
#include <chrono>
#include <memory>
#include <string>

#include "llmproxy/db/raw_connection.hpp"

namespace llmproxy::db::sqlite {

/// Opens `path`. read_only: the file must exist and is never written (SQLITE_OPEN_READONLY); read_write: the
/// project's PRAGMAs (WAL, foreign_keys=ON) apply and `busy_timeout` bounds the wait for the write lock. Throws
/// db::Unavailable if the file cannot be opened or is not an SQLite database.
std::unique_ptr<RawConnection> open_raw(const std::string& path, Access access,
                                        std::chrono::milliseconds busy_timeout);

}  // namespace llmproxy::db::sqlite
