#pragma once
// The repository contract (SPEC §4.2), written once and run against every driver. One file per part:
//   db_database_contract.cpp            driver name, health, values every table stores verbatim
//   db_project_repository_contract.cpp  projects
//   db_token_repository_contract.cpp    tokens, quota (consume_quota), usage (add_usage)
//   db_usage_repository_contract.cpp    LLM token usage, usage_daily, the usage series, budget/rate-limit columns
//   db_audit_repository_contract.cpp    audit events
// Each part is a list of Catch2 SECTIONs whose names are sentences; helpers are in db_repository_contract_helpers.
#include <functional>
#include <memory>
#include <string>

#include "llmproxy/db/driver.hpp"

namespace llmproxy::contract {

/// Returns an open driver on a fresh, fully migrated, empty database.
using MakeFresh = std::function<std::unique_ptr<db::Driver>()>;

/// Checks every repository behaviour as Catch2 SECTIONs: call it from one TEST_CASE per driver. Catch runs the
/// test case once per leaf section, and each run calls `make_fresh` once, so sections never see each other's rows.
/// `driver_name` is what Database::driver_name() must report.
void check_repository_contract(const std::string& driver_name, const MakeFresh& make_fresh);

/// The parts check_repository_contract runs, one SECTION each; same rules (call `make_fresh` once per run).
void check_database_contract(const std::string& driver_name, const MakeFresh& make_fresh);
void check_project_repository_contract(const MakeFresh& make_fresh);
void check_token_repository_contract(const MakeFresh& make_fresh);
void check_usage_repository_contract(const MakeFresh& make_fresh);
void check_audit_repository_contract(const MakeFresh& make_fresh);

}  // namespace llmproxy::contract
