#pragma once
/// Which header fields cross the proxy (SPEC §5.3, §5.5). Pure functions: no I/O, total on arbitrary input
/// (a libFuzzer target), any thread.
#include "llmproxy/server/http_types.hpp"

namespace llmproxy::proxy {

enum class Direction {
  to_upstream,  // a client request on its way to the provider
  to_client,    // a provider response on its way to the client
};

/// The fields of `in` that may be forwarded in `direction`, in their original order. Removed both ways:
/// the hop-by-hop fields (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), every field
/// named by a `Connection` header (RFC 9110 §7.6.1; all Connection fields, comma-separated, case-insensitive),
/// Content-Length and X-Request-ID (the proxy sets them). Removed towards the upstream only: the client-IP
/// fields (X-Forwarded-For, X-Real-IP, CF-Connecting-IP, X-Client-IP, X-Original-Forwarded-For, CF-IPCountry,
/// Forwarded, X-Forwarded-Host, X-Forwarded-Proto, True-Client-IP), Host, Authorization and Expect, which the
/// proxy replaces or answers itself. The copy has room for `extra_bytes` more bytes and `extra_fields` more
/// fields (what the caller adds next). Never throws except std::bad_alloc.
server::Headers filter_headers(const server::Headers& in, Direction direction, std::size_t extra_bytes = 0,
                               std::size_t extra_fields = 0);
/// filter_headers() on `headers` itself: the same fields removed, none copied (for a list not needed whole
/// afterwards, such as an upstream response's).
void filter_headers_in_place(server::Headers& headers, Direction direction);

}  // namespace llmproxy::proxy
