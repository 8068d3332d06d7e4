#pragma once
/// The PostgreSQL driver, found when first needed: in this program's own image when it links the driver (the
/// test programs), else loaded from the module llm-proxy-postgres.so (the server), looked for next to the
/// executable, then in ../lib/llm-proxy/ (an installed layout: bin/llm-proxy, lib/llm-proxy/llm-proxy-postgres.so).
/// A server on SQLite never loads it, nor libpq.
#include "llmproxy/db/postgres/entry.hpp"

namespace llmproxy::storage {

/// The driver's table. Loads the module on the first call (thread-safe). Throws db::Error naming the paths
/// tried and the loader's reason when no usable module is found.
const db::postgres::Entry& postgres_driver();

}  // namespace llmproxy::storage
