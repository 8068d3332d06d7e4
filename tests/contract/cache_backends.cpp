#include "contract/cache_backends.hpp"

#include "llmproxy/cache/backends.hpp"

namespace llmproxy::contract {

std::vector<CacheBackendUnderTest> cache_backends_under_test() {
  std::vector<CacheBackendUnderTest> out;
  out.push_back({"memory", [](boost::asio::io_context&) {
                   cache::MemoryOptions options;
                   options.max_object_bytes = kCacheMaxObjectBytes;
                   return cache::make_memory_backend(options);
                 }});
  return out;
}

}  // namespace llmproxy::contract
