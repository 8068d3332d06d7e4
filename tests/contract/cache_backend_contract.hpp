#pragma once
// The cache backend contract (SPEC §13, cache::Backend), written once and run against every backend.
#include "contract/cache_backends.hpp"

namespace llmproxy::contract {

/// Checks every behaviour the proxy depends on from a cache backend, as Catch2 SECTIONs whose names are
/// sentences. Catch runs the enclosing test case once per leaf section; each run makes a new backend with
/// `under_test.make` on its own two-thread io_context and purges "*" first.
void check_cache_backend_contract(const CacheBackendUnderTest& under_test);

}  // namespace llmproxy::contract
