#pragma once
/// The HTTP rules of the response cache (SPEC §13), pure functions: which requests may use it, which responses
/// may be stored and for how long, the key, Vary and conditional requests. No I/O, no clock (times are passed).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/cache/cache.hpp"
#include "llmproxy/server/http_types.hpp"

namespace llmproxy::cache {

/// The directives of every `Cache-Control` field of `headers` (comma-separated, case-insensitive; unknown ones
/// ignored; a malformed or negative delta-seconds is as if absent; values above 2^31-1 are clamped).
struct CacheControl {
  bool no_store = false;
  bool no_cache = false;
  bool is_private = false;
  bool is_public = false;
  std::optional<std::int64_t> max_age;   // seconds
  std::optional<std::int64_t> s_maxage;  // seconds
};
CacheControl cache_control(const server::Headers& headers);

/// Whether a request may be answered from the cache (and its answer stored): GET and HEAD always; POST only when
/// the client opts in (`Cache-Control: public` with max-age>0 or s-maxage>0) and its body is at most
/// `max_object_bytes`. Never with a request `no-store`. Other methods never.
bool request_may_use_cache(std::string_view method, const server::Headers& request_headers, std::size_t body_size,
                           std::size_t max_object_bytes);

/// The client asks to revalidate (`no-cache`, or `max-age=0`): a stored entry is not served as is.
bool wants_revalidation(const server::Headers& request_headers);

/// How long a response may be stored, or nullopt when it may not: status in {200, 203, 301, 308, 404, 410};
/// never with `no-store` or `private` in the response, nor `Vary: *`; lifetime from the response's s-maxage,
/// then max-age; else the client's forced value (request `public` with s-maxage, then max-age; `forced` set);
/// else `default_ttl` (0 = not stored). A lifetime of 0 is not stored. A response's `no-cache` voids its own
/// lifetimes and the default: only the client's forced value stores it (providers mark every stream no-cache).
struct Lifetime {
  std::chrono::seconds ttl{0};
  bool forced = false;
};
std::optional<Lifetime> storable(int status, const server::Headers& response_headers,
                                 const server::Headers& request_headers, std::chrono::seconds default_ttl);

/// The key: three parts of 32 lower-case hex digits (128 bits of SHA-256 each) joined by ':' —
/// project (SHA-256 of the project id), resource (method, path, query with its parameters sorted) and variant
/// (the request's Accept, Accept-Encoding and Accept-Language values, and for POST the SHA-256 of the body).
/// Two projects never share a key. `target` is the normalised path + query as forwarded.
std::string key(std::string_view project_id, std::string_view method, std::string_view target,
                const server::Headers& request_headers, std::string_view body);
/// The pattern matching every key of `method` + `target` (all variants), of one project or (empty) of all.
std::string resource_pattern(std::string_view project_id, std::string_view method, std::string_view target);
/// The pattern matching every key of one project.
std::string project_pattern(std::string_view project_id);

/// The names of a response's Vary (every field, comma-separated, lower-cased, in order, duplicates dropped),
/// and the request's values for them (trimmed; "" when absent), for Entry::vary. `*` is never stored
/// (storable() refuses it).
std::vector<std::pair<std::string, std::string>> vary_values(const server::Headers& response_headers,
                                                             const server::Headers& request_headers);
/// Whether `entry` was stored for a request with the same values of its Vary headers as this one.
bool vary_matches(const Entry& entry, const server::Headers& request_headers);

/// The client's own conditional request matches the entry: If-None-Match (weak comparison, `*`, lists) against
/// its ETag; else If-Modified-Since against its Last-Modified (HTTP-date). Then 304 is the answer.
bool not_modified(const Entry& entry, const server::Headers& request_headers);

/// The headers of a response worth keeping: `headers` minus hop-by-hop fields, Date, Set-Cookie, Age and the
/// CORS fields (Access-Control-*: the pipeline adds its own per request). Called before CORS is added.
server::Headers headers_to_store(const server::Headers& headers);

}  // namespace llmproxy::cache
