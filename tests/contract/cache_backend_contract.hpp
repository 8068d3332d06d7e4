#pragma once
// The cache backend contract (SPEC §13, cache::Backend), written once and run against every backend.
#include <cstdint>
#include <memory>
#include <string>

#include "contract/cache_backends.hpp"

namespace llmproxy::contract {

/// Checks every behaviour the proxy depends on from a cache backend, as Catch2 SECTIONs whose names are
/// sentences. Catch runs the enclosing test case once per leaf section; each run makes a new backend with
/// `under_test.make` on its own two-thread io_context and purges "*" first.
void check_cache_backend_contract(const CacheBackendUnderTest& under_test);

/// Unix epoch milliseconds now.
std::int64_t now_ms();
/// A 200 JSON answer with an ETag and Vary values, stored now, expiring `ttl_ms` later (negative: already expired).
std::shared_ptr<const cache::Entry> make_entry(std::string body, std::int64_t ttl_ms = 60'000);

}  // namespace llmproxy::contract
