#pragma once
// The cache backends the contract suite (cache_backend_contract.cpp) runs against, one entry each.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/cache/cache.hpp"

namespace boost::asio {
class io_context;
}

namespace llmproxy::contract {

/// The object limit every backend under test is made with (the suite checks that a larger body is refused).
inline constexpr std::uint64_t kCacheMaxObjectBytes = 64 * 1024;

struct CacheBackendUnderTest {
  std::string name;  // the section name, e.g. "memory"
  /// A new, empty backend driven on `io` (which runs on two threads and outlives it), with
  /// max_object_bytes = kCacheMaxObjectBytes.
  std::function<std::unique_ptr<cache::Backend>(boost::asio::io_context&)> make;
};

std::vector<CacheBackendUnderTest> cache_backends_under_test();

}  // namespace llmproxy::contract
