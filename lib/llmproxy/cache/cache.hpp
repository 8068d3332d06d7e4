#pragma once
/// The response cache (SPEC §13): what a stored answer is, and the backend contract both stores meet (memory for
/// one instance, Redis for many). The HTTP rules (what may be stored, for how long, under which key) are in
/// policy.hpp; the proxy pipeline decides, a backend only keeps bytes under keys.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::cache {

/// One stored answer. Times are Unix epoch milliseconds (wall clock: entries are shared across instances).
struct Entry {
  int status = 200;
  server::Headers headers;  // as sent to the client, minus hop-by-hop, Date, Set-Cookie, Age and CORS fields
  std::string body;
  std::int64_t stored_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  /// The request's values of the headers the response's Vary names (names lower-cased, in Vary order; value ""
  /// when the request had none). A lookup whose values differ is a miss (vary-miss).
  std::vector<std::pair<std::string, std::string>> vary;
  bool forced = false;  // the lifetime came from the client's Cache-Control, not the response's
  bool stream = false;  // captured from a text/event-stream: replayed as one
};

/// A compact binary form for a backend that keeps bytes (Redis). decode() of anything but encode()'s output
/// (truncated, corrupt, another version) is nullopt, never a crash or a partial entry.
std::string encode(const Entry& entry);
std::optional<Entry> decode(std::string_view bytes);

enum class LookupStatus { hit, miss, error };

struct Lookup {
  LookupStatus status = LookupStatus::miss;
  std::shared_ptr<const Entry> entry;  // set on hit (never an expired one)
  std::string error;                   // on error: why (no secrets: never the Redis password)
};

struct BackendStats {
  std::uint64_t evictions = 0;      // entries dropped to make room (memory backend; Redis evicts on its own)
  std::uint64_t failures = 0;       // operations that failed (connection down, timeout, refused)
  std::uint64_t bytes = 0;          // bytes held (memory backend; 0 for Redis)
  std::uint64_t entries = 0;        // entries held (memory backend; 0 for Redis)
};

/// A store of entries under keys. Keys and purge patterns use only [0-9a-f:*] (the pipeline builds them, see
/// policy.hpp), plus the backend's own prefix (Redis). Every operation may be awaited from any I/O thread's
/// coroutine, concurrently, never blocks an I/O thread, never throws, and completes within the backend's
/// timeout (a failure is reported, and the caller serves without the cache).
class Backend {
 public:
  virtual ~Backend() = default;

  /// "memory" or "redis".
  virtual std::string_view name() const = 0;
  /// The entry under `key` if one is there and not expired.
  virtual boost::asio::awaitable<Lookup> get(std::string key) = 0;
  /// Stores `entry` under `key` until entry->expires_at_ms (replacing what was there). False if it could not be
  /// stored (failure, or larger than the backend takes).
  virtual boost::asio::awaitable<bool> put(std::string key, std::shared_ptr<const Entry> entry) = 0;
  /// Deletes every key matching `pattern`: '*' matches any run of characters, everything else is literal.
  /// The number deleted, or nullopt on failure.
  virtual boost::asio::awaitable<std::optional<std::uint64_t>> purge(std::string pattern) = 0;
  /// False while the backend is failing (Redis unreachable); it recovers by itself. For /health.
  virtual bool healthy() const = 0;
  virtual BackendStats stats() const = 0;
};

}  // namespace llmproxy::cache
