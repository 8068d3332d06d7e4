#pragma once
/// A database driver: every repository plus the primitives the migration runner needs.
#include "llmproxy/db/database.hpp"
#include "llmproxy/migrate/backend.hpp"

namespace llmproxy::db {

class Driver : public Database, public migrate::Backend {};

}  // namespace llmproxy::db
