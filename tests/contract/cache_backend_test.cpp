// The cache backend contract (cache_backend_contract.cpp) on every backend of cache_backends_under_test().
#include <catch2/catch.hpp>

#include "contract/cache_backend_contract.hpp"

namespace llmproxy::contract {
namespace {

TEST_CASE("cache backend contract: every backend under test", "[cache][contract]") {
  for (const auto& under_test : cache_backends_under_test()) {
    DYNAMIC_SECTION(under_test.name) { check_cache_backend_contract(under_test); }
  }
}

}  // namespace
}  // namespace llmproxy::contract
