#pragma once
// The repository contract (SPEC §4.2), written once and run against every driver.
#include <functional>
#include <memory>
#include <string>

#include "llmproxy/db/driver.hpp"

namespace llmproxy::contract {

/// Returns an open driver on a fresh, fully migrated, empty database.
using MakeFresh = std::function<std::unique_ptr<db::Driver>()>;

/// Checks every repository behaviour as Catch2 SECTIONs: call it from one TEST_CASE per driver. Catch runs the
/// test case once per section, and each run calls `make_fresh` once, so sections never see each other's rows.
/// `driver_name` is what Database::driver_name() must report.
void check_repository_contract(const std::string& driver_name, const MakeFresh& make_fresh);

}  // namespace llmproxy::contract
