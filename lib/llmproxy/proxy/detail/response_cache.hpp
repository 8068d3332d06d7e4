#pragma once
/// The proxy's side of the response cache (SPEC §13): what the cache did for one request, the answer built from
/// a stored entry, the headers that report it, and the entry built from an upstream answer. The HTTP rules are in
/// cache/policy.hpp; the stores in cache/backends.hpp.
#include <cstdint>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "llmproxy/cache/cache.hpp"
#include "llmproxy/cache/policy.hpp"
#include "llmproxy/server/http_types.hpp"

namespace llmproxy::proxy::detail {

/// What the cache did for one request.
enum class CacheUse {
  off,          // HTTP_CACHE_ENABLED=false: no cache headers at all
  bypass,       // the request may not use the cache (method, no opt-in, too large, no-store)
  unavailable,  // the backend failed (Redis down): forwarded without the cache
  miss,         // nothing stored
  vary_miss,    // stored for other values of the headers the answer varies on
  revalidate,   // stored, but the client asked for revalidation (no-cache, max-age=0)
  hit,          // answered from the cache
};

struct CacheState {
  CacheUse use = CacheUse::off;
  std::string key;
  std::shared_ptr<const cache::Entry> entry;  // for hit and revalidate
  /// Whether a forwarded answer may be stored (a lookup was made and the backend answered).
  bool may_store() const { return use == CacheUse::miss || use == CacheUse::vary_miss || use == CacheUse::revalidate; }
};

/// Unix epoch milliseconds now (entries are shared across instances: wall clock).
std::int64_t now_ms();

/// The answer for a hit: the stored one with `Age`, or 304 (validators only) when the client's own conditional
/// matches. `revalidated`: the upstream just confirmed the entry (fwd=request; fwd-status=304).
server::Response answer_from_entry(const cache::Entry& entry, const server::Request& request, const std::string& key,
                                   std::int64_t now, bool revalidated);

/// Reports a forwarded answer: `Cache-Status` always (when the cache is on); `X-PROXY-CACHE` and its key when the
/// answer was stored or the backend was unavailable.
void mark_forwarded(server::Headers& headers, const CacheState& state, bool stored, bool forced);

/// How long an answer may be stored (cache::storable(), and a text/event-stream only with `stream_responses`),
/// or nullopt.
std::optional<cache::Lifetime> lifetime_for(int status, const server::Headers& headers,
                                            const server::Headers& request_headers, std::chrono::seconds default_ttl,
                                            bool stream_responses);

/// The entry for an answer (headers as relayed, before CORS).
std::shared_ptr<cache::Entry> make_entry(int status, const server::Headers& headers, std::string body,
                                         const cache::Lifetime& lifetime, const server::Headers& request_headers,
                                         std::int64_t now);

}  // namespace llmproxy::proxy::detail
