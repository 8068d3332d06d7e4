#pragma once
/// The two cache backends (SPEC §13), behind cache::Backend. Chosen at boot by HTTP_CACHE_BACKEND.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "llmproxy/cache/cache.hpp"

namespace boost::asio {
class io_context;
}

namespace llmproxy::cache {

struct MemoryOptions {
  std::uint64_t max_bytes = 64ull << 20;         // HTTP_CACHE_MAX_BYTES: all entries (key + encoded size +
                                                 // bookkeeping, detail::memory_footprint), LRU
  std::uint64_t max_object_bytes = 1ull << 20;   // HTTP_CACHE_MAX_OBJECT_BYTES: one entry's body
};

/// In-process: bounded by bytes (least recently used dropped first, counted as evictions), expired entries never
/// answered (and dropped when met). Sharded mutexes (up to 16 shards, each max_bytes / shards, so that a shard
/// holds at least two max_object_bytes entries); put() refuses a body above max_object_bytes or an entry larger
/// than its shard. Operations complete without suspending. `now_ms` (Unix epoch ms) is injectable for tests.
std::unique_ptr<Backend> make_memory_backend(MemoryOptions options,
                                             std::function<std::int64_t()> now_ms = {});

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // ACL user; empty: the default user
  std::string password;  // AUTH; never logged
  int db = 0;            // SELECT
  std::string key_prefix = "llmproxy:cache:";      // REDIS_CACHE_KEY_PREFIX, prepended to every key
  std::chrono::milliseconds timeout{1000};         // REDIS_CACHE_TIMEOUT: connect and each command
  std::uint64_t max_object_bytes = 1ull << 20;
};

/// A real Redis server through hiredis, driven asynchronously on `io` (one connection, pipelined; no call ever
/// blocks an I/O thread; the host name is resolved asynchronously). Starts connecting at once (healthy() is
/// true until a failure) and reconnects by itself one second after a failure, answering errors meanwhile. Entries are stored with
/// `SET key value PX ttl` in encode() form; purge uses SCAN MATCH + UNLINK. `io` must outlive the backend;
/// destroy the backend before `io` stops running handlers (or after, once `io` is stopped).
std::unique_ptr<Backend> make_redis_backend(boost::asio::io_context& io, RedisOptions options);

}  // namespace llmproxy::cache
