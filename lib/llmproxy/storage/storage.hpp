#pragma once
/// Opens the configured database and prepares its schema (SPEC §4.3 boot, §4.4). The only place that picks a
/// driver. Blocking; called from the main thread at boot or by the `migrate` CLI.
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "llmproxy/config/config.hpp"
#include "llmproxy/db/driver.hpp"
#include "llmproxy/migrate/runner.hpp"

namespace llmproxy::storage {

/// One attempt to open the driver selected by `config.driver`. Throws db::Unavailable when the database cannot
/// be reached (worth retrying) and db::Error for anything else, e.g. DB_DRIVER=postgres in a binary built
/// without PostgreSQL. Messages never contain the password.
std::unique_ptr<db::Driver> open(const config::DatabaseConfig& config);

/// open() retried on db::Unavailable with exponential backoff (200 ms doubling, at most 5 s apart) until
/// DATABASE_STARTUP_TIMEOUT has elapsed; each failed attempt is logged (warn) with its number and the error.
/// Other db::Error are thrown at once. Throws db::Unavailable naming the (redacted) location, the timeout and the
/// last error when time runs out, or when `stop_requested` (polled while waiting) returns true.
std::unique_ptr<db::Driver> open_with_retry(const config::DatabaseConfig& config,
                                            const std::function<bool()>& stop_requested = {});

/// runner.up(to); when the first migration fails because its tables exist (a database of the Go llm-proxy), the
/// MigrationError also names `llm-proxy migrate import-reference`.
int apply_pending(migrate::Runner& runner, std::optional<std::int64_t> to = std::nullopt);

/// Refuses an unsafe schema (checksum mismatch, database newer than the binary) and then either applies the
/// pending migrations (DB_AUTO_MIGRATE=true) or refuses to go on while any are pending. Throws
/// migrate::MigrationError (message says what to do) and db::Error.
void prepare_schema(db::Driver& driver, const config::DatabaseConfig& config);

/// Where the database is, for messages: the SQLite path or the PostgreSQL URL without its password.
std::string describe_location(const config::DatabaseConfig& config);

}  // namespace llmproxy::storage
