#include "contract/db_repository_contract.hpp"

#include <catch2/catch.hpp>

namespace llmproxy::contract {

void check_repository_contract(const std::string& driver_name, const MakeFresh& make_fresh) {
  // One SECTION per part. Catch enters one leaf section per run, so only that part's function runs and calls
  // make_fresh: every leaf section still starts on a fresh database.
  SECTION("database") { check_database_contract(driver_name, make_fresh); }
  SECTION("projects") { check_project_repository_contract(make_fresh); }
  SECTION("tokens, quota and usage") { check_token_repository_contract(make_fresh); }
  SECTION("usage series, budgets and rate limits") { check_usage_repository_contract(make_fresh); }
  SECTION("audit events") { check_audit_repository_contract(make_fresh); }
}

}  // namespace llmproxy::contract
