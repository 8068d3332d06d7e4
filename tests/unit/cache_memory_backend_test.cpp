// The in-process cache backend (lib/llmproxy/cache/backends.hpp make_memory_backend): bounded by bytes with
// least-recently-used eviction, TTL on an injected clock, exact byte accounting, sharding. The behaviour every
// backend shares is in tests/contract/cache_backend_contract.cpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/cache/backends.hpp"
#include "llmproxy/cache/detail/entry_format.hpp"

namespace cache = llmproxy::cache;
namespace net = boost::asio;

namespace {

constexpr std::int64_t kNow = 1'764'762'000'000;

/// Runs one backend operation to completion (the memory backend never suspends, so one run() finishes it).
template <class T>
T run(net::awaitable<T> op) {
  net::io_context io;
  auto result = net::co_spawn(io, std::move(op), net::use_future);
  io.run();
  return result.get();
}

std::shared_ptr<const cache::Entry> entry(std::size_t body_bytes, std::int64_t expires_at_ms = kNow + 60'000) {
  auto e = std::make_shared<cache::Entry>();
  e->body.assign(body_bytes, 'b');
  e->stored_at_ms = kNow;
  e->expires_at_ms = expires_at_ms;
  return e;
}

std::string key(int i) {
  std::string k = std::to_string(i);
  return std::string(32 - k.size(), '0') + k + ":" + std::string(32, 'a') + ":" + std::string(32, 'b');
}

/// What one entry of `body_bytes` under key(i) counts against max_bytes.
std::uint64_t footprint(std::size_t body_bytes) { return cache::detail::memory_footprint(key(0), *entry(body_bytes)); }

bool has(cache::Backend& b, const std::string& k) { return run(b.get(k)).status == cache::LookupStatus::hit; }

}  // namespace

TEST_CASE("cache memory backend: the least recently used entry goes first, counted as an eviction",
          "[cache][memory]") {
  // Room for exactly three entries (one shard: max_bytes is below two max-size objects).
  cache::MemoryOptions options{3 * footprint(100), 1 << 20};
  auto backend = cache::make_memory_backend(options, [] { return kNow; });
  REQUIRE(run(backend->put(key(1), entry(100))));
  REQUIRE(run(backend->put(key(2), entry(100))));
  REQUIRE(run(backend->put(key(3), entry(100))));
  CHECK(backend->stats().entries == 3);
  CHECK(backend->stats().evictions == 0);

  CHECK(has(*backend, key(1)));  // 1 is now the most recently used; 2 the least
  REQUIRE(run(backend->put(key(4), entry(100))));
  CHECK(backend->stats().evictions == 1);
  CHECK_FALSE(has(*backend, key(2)));
  CHECK(has(*backend, key(1)));
  CHECK(has(*backend, key(3)));
  CHECK(has(*backend, key(4)));

  // A larger entry makes room for itself by evicting as many as it needs, oldest first (1 was read before 3, 4).
  REQUIRE(run(backend->put(key(5), entry(100 + footprint(100)))));
  CHECK(backend->stats().evictions == 3);
  CHECK_FALSE(has(*backend, key(1)));
  CHECK_FALSE(has(*backend, key(3)));
  CHECK(has(*backend, key(4)));
  CHECK(has(*backend, key(5)));
  CHECK(backend->stats().bytes <= options.max_bytes);
}

TEST_CASE("cache memory backend: an entry counts its key, its encoded size and the bookkeeping overheads",
          "[cache][memory]") {
  auto e = std::make_shared<cache::Entry>(*entry(1000));
  e->headers.add("Content-Type", "application/json");
  e->vary = {{"accept", "*/*"}};
  const std::string k = key(7);
  const std::uint64_t expected = k.size() + cache::encode(*e).size() + cache::detail::kEntryOverhead +
                                 2 * cache::detail::kFieldOverhead;
  CHECK(cache::detail::memory_footprint(k, *e) == expected);
  auto backend = cache::make_memory_backend({}, [] { return kNow; });
  REQUIRE(run(backend->put(k, e)));
  CHECK(backend->stats().bytes == expected);

  // A body's unused capacity is memory held too.
  auto roomy = std::make_shared<cache::Entry>(*e);
  roomy->body.reserve(64 * 1024);
  REQUIRE(roomy->body.capacity() >= 64 * 1024);
  CHECK(cache::detail::memory_footprint(k, *roomy) == expected + (roomy->body.capacity() - roomy->body.size()));
}

TEST_CASE("cache memory backend: bytes and entries follow replace, expiry and purge",
          "[cache][memory]") {
  std::atomic<std::int64_t> now{kNow};
  auto backend = cache::make_memory_backend({}, [&] { return now.load(); });
  CHECK(backend->name() == "memory");
  CHECK(backend->healthy());
  CHECK(backend->stats().bytes == 0);

  REQUIRE(run(backend->put(key(1), entry(10))));
  REQUIRE(run(backend->put(key(2), entry(1000, kNow + 1'000))));
  CHECK(backend->stats().entries == 2);
  CHECK(backend->stats().bytes == footprint(10) + footprint(1000));

  REQUIRE(run(backend->put(key(1), entry(500))));  // replace
  CHECK(backend->stats().entries == 2);
  CHECK(backend->stats().bytes == footprint(500) + footprint(1000));
  CHECK(run(backend->get(key(1))).entry->body.size() == 500);

  now = kNow + 1'000;  // key(2) expires now: not answered, dropped when met
  CHECK(run(backend->get(key(2))).status == cache::LookupStatus::miss);
  CHECK(backend->stats().entries == 1);
  CHECK(backend->stats().bytes == footprint(500));
  CHECK(backend->stats().evictions == 0);  // expiry and purge are not evictions

  CHECK(run(backend->purge("*")) == 1u);
  CHECK(backend->stats().entries == 0);
  CHECK(backend->stats().bytes == 0);
  CHECK(backend->stats().evictions == 0);
}

TEST_CASE("cache memory backend: an entry is answered until the millisecond it expires", "[cache][memory]") {
  std::atomic<std::int64_t> now{kNow};
  auto backend = cache::make_memory_backend({}, [&] { return now.load(); });
  REQUIRE(run(backend->put(key(1), entry(10, kNow + 500))));
  now = kNow + 499;
  CHECK(has(*backend, key(1)));
  now = kNow + 500;
  CHECK_FALSE(has(*backend, key(1)));
  now = kNow;  // once dropped it stays gone, even if the clock steps back
  CHECK_FALSE(has(*backend, key(1)));

  // Storing an already expired entry stores nothing, and the older answer under that key goes too.
  REQUIRE(run(backend->put(key(2), entry(10))));
  CHECK_FALSE(run(backend->put(key(2), entry(10, kNow))));
  CHECK_FALSE(has(*backend, key(2)));
  CHECK(backend->stats().entries == 0);
}

TEST_CASE("cache memory backend: a body above max_object_bytes or a footprint above max_bytes is refused",
          "[cache][memory]") {
  cache::MemoryOptions options{10'000, 1'000};
  auto backend = cache::make_memory_backend(options, [] { return kNow; });
  REQUIRE(run(backend->put(key(1), entry(1'000))));  // exactly the object limit
  CHECK_FALSE(run(backend->put(key(2), entry(1'001))));

  auto big_headers = std::make_shared<cache::Entry>(*entry(10));
  big_headers->headers.add("X-Big", std::string(10'000, 'h'));  // the body is small, the footprint is not
  CHECK_FALSE(run(backend->put(key(3), big_headers)));
  // Refusals evict nothing.
  CHECK(has(*backend, key(1)));
  CHECK(backend->stats().entries == 1);
  CHECK(backend->stats().evictions == 0);
  CHECK(backend->stats().bytes == footprint(1'000));
}

TEST_CASE("cache memory backend: sharded, the total stays within max_bytes and every stored entry is found",
          "[cache][memory]") {
  // 4 MiB with 64 KiB objects: 16 shards of 256 KiB.
  cache::MemoryOptions options{4ull << 20, 64 << 10};
  auto backend = cache::make_memory_backend(options, [] { return kNow; });
  for (int i = 0; i < 100; ++i) REQUIRE(run(backend->put(key(i), entry(1'000))));
  for (int i = 0; i < 100; ++i) CHECK(has(*backend, key(i)));
  CHECK(backend->stats().entries == 100);
  CHECK(backend->stats().bytes == 100 * footprint(1'000));

  // Far more than fits: the total never exceeds max_bytes, the newest is always there.
  for (int i = 100; i < 400; ++i) {
    REQUIRE(run(backend->put(key(i), entry(60 << 10))));
    CHECK(backend->stats().bytes <= options.max_bytes);
    CHECK(has(*backend, key(i)));
  }
  const auto stats = backend->stats();
  CHECK(stats.evictions > 0);
  // Used capacity: each shard fits at least 3 of the large entries, so at least 48 are held.
  CHECK(stats.entries >= 48);
  std::uint64_t found = 0;
  for (int i = 0; i < 400; ++i) found += has(*backend, key(i)) ? 1 : 0;
  CHECK(found == stats.entries);
  CHECK(stats.entries == 400 - stats.evictions);
}
