#pragma once
/// `llm-proxy migrate import-reference` (SPEC §7.4): copies the projects, tokens and audit events of a database of
/// the Go llm-proxy (the reference) into this server's database. See docs/migrating-from-go-llm-proxy.md.
#include <ostream>
#include <string>

#include "llmproxy/config/config.hpp"

namespace llmproxy::storage {

struct ImportOptions {
  /// The reference database: a postgres:// / postgresql:// URL or key=value conninfo, else an SQLite file path.
  std::string from;
  /// Read and check everything, write nothing (our database's transaction is rolled back; a missing SQLite file
  /// is not created and pending migrations are not applied).
  bool dry_run = false;
  /// The 32-byte key the reference encrypted project API keys with (REFERENCE_ENCRYPTION_KEY), or empty to use
  /// our own ENCRYPTION_KEY for that too.
  std::string reference_key;
};

/// Migrates our database (unless dry run), then imports the reference's rows in one transaction: rows whose id
/// already exists are skipped (never overwritten), rows that cannot be imported are counted as failed and listed
/// with the reason (never with a secret). Prints the summary to `out`. Returns 0 when the import ran (failed
/// rows included), 1 when it could not (source unreadable or not a reference database, our database failing);
/// then nothing is written. Blocking; never throws.
int import_reference(const ImportOptions& options, const config::Config& config, std::ostream& out,
                     std::ostream& err);

}  // namespace llmproxy::storage
