#pragma once
/// `llm-proxy migrate ...` (SPEC §4.4): up [--to N], down [--steps N | --to N], status, version.
#include <ostream>
#include <string>
#include <vector>

#include "llmproxy/config/config.hpp"

namespace llmproxy::storage {

/// Runs the migrate sub-command `args` (the words after `migrate`) against the database of `config` (opened with
/// the boot retry, so it works while PostgreSQL is starting). `status` and `version` only read: they create no
/// table and take no lock. Results go to `out`, errors to `err`. Returns the exit code: 0 success, 1 runtime
/// failure (database or migration error), 2 usage error (message plus usage on `err`). Never throws.
int migrate_command(const std::vector<std::string>& args, const config::Config& config, std::ostream& out,
                    std::ostream& err);

/// The usage text of `llm-proxy migrate`.
std::string migrate_usage();

}  // namespace llmproxy::storage
