#pragma once
/// Migration files compiled into the binary (cmake/embed_migrations.cmake generates the definitions).
#include <cstdint>
#include <string>
#include <vector>

namespace llmproxy::migrate {

struct MigrationFile {
  std::int64_t version = 0;  // NNNN of the file name
  std::string name;          // <name> of NNNN_<name>.up.sql
  std::string up_sql;
  std::string down_sql;
};

/// Sorted by version. Defined only in the driver library that embeds them.
const std::vector<MigrationFile>& embedded_sqlite();
const std::vector<MigrationFile>& embedded_postgres();

}  // namespace llmproxy::migrate
