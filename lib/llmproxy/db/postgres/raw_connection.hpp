#pragma once
/// db::RawConnection on one PostgreSQL connection (libpqxx stays in the .cpp files of this folder).
#include <chrono>
#include <memory>
#include <string>

#include "llmproxy/db/raw_connection.hpp"

namespace llmproxy::db::postgres {

/// Connects to `url` (URI or key=value; libpq's connect_timeout set from `connect_timeout`), session TimeZone
/// UTC. read_only also sets default_transaction_read_only, so the server itself refuses any write. Throws
/// db::Error for an invalid URL and db::Unavailable if the server cannot be reached; messages never contain the
/// password.
std::unique_ptr<RawConnection> open_raw(const std::string& url, Access access,
                                        std::chrono::milliseconds connect_timeout);

}  // namespace llmproxy::db::postgres
