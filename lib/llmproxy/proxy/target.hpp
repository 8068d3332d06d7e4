#pragma once
/// Request-target normalisation for `/v1/*` (SPEC §5.5): the normalised path is what the endpoint allow-list
/// judges and what is forwarded upstream, so the proxy and the provider can never disagree on which resource a
/// request names. Pure functions: no I/O, total on arbitrary bytes (a libFuzzer target), any thread.
#include <string>
#include <string_view>

namespace llmproxy::proxy {

/// The outcome of normalise_target(): either `path` (+ `query`) or an `error` reason for the client.
struct NormalisedTarget {
  std::string path;        // starts with '/'; unreserved escapes decoded, other escapes as %XX (uppercase hex)
  std::string query;       // after the first '?', byte for byte as received
  bool has_query = false;  // the target had a '?' (even with nothing after it)
  std::string error;       // non-empty: the target is refused (400 invalid_path), path/query are meaningless

  bool ok() const noexcept { return error.empty(); }
  /// path, then '?' + query if the target had a query: what goes upstream, as is (base_url's path is not prepended).
  std::string target() const;
};

/// Normalises an origin-form request target (`/path?query`):
///  - the path must start with '/';
///  - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, every other escape is kept
///    with uppercase hex digits; a '%' not followed by two hex digits is refused;
///  - refused: an encoded '/' (%2F) or '\' (%5C), a raw '\', and control bytes (0x00-0x1F, 0x7F) raw or encoded;
///  - runs of '/' collapse into one (empty segments are dropped, as nginx's merge_slashes does);
///  - '.' segments are removed; ANY '..' segment (raw, or after decoding %2E) is refused — legitimate API clients
///    never send one, and refusing beats guessing which resource the upstream would resolve it to;
///  - the query is kept verbatim; raw control bytes in it are refused.
/// Never throws except std::bad_alloc.
NormalisedTarget normalise_target(std::string_view raw);

/// Whether the allowed endpoint `prefix` admits the normalised `path`, matching whole segments: `/v1/models`
/// admits `/v1/models` and `/v1/models/x`, never `/v1/modelsX`. A prefix ending in '/' admits what starts with it.
bool endpoint_matches(std::string_view prefix, std::string_view path) noexcept;

}  // namespace llmproxy::proxy
