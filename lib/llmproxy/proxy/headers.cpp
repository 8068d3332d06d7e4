#include "llmproxy/proxy/headers.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

namespace llmproxy::proxy {

using server::iequals;
using server::trim_ows;

namespace {

// Never forwarded in either direction (RFC 9110 §7.6.1 plus the legacy ones proxies strip).
// Proxy-* headers are matched by prefix (see hop_by_hop()).
constexpr std::array<std::string_view, 6> kHopByHop = {"Connection", "Keep-Alive", "TE",
                                                       "Trailer", "Transfer-Encoding", "Upgrade"};
// The client's network identity stays with the proxy.
constexpr std::array<std::string_view, 10> kClientIp = {
    "X-Forwarded-For", "X-Real-IP",  "CF-Connecting-IP",  "X-Client-IP",       "X-Original-Forwarded-For",
    "CF-IPCountry",    "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto", "True-Client-IP"};
// Set (or answered) by the proxy itself.
constexpr std::array<std::string_view, 2> kOwnedBothWays = {"Content-Length", "X-Request-ID"};
// Host, Authorization and Expect are the proxy's own. Accept-Encoding is dropped so the provider answers
// uncompressed: the proxy reads the LLM-token usage out of every answer (SPEC §14), and a compressed body would
// hide it (budgets and usage would count 0). Clients get the same bytes without the compression.
constexpr std::array<std::string_view, 4> kOwnedUpstream = {"Host", "Authorization", "Expect", "Accept-Encoding"};

bool one_of(std::string_view name, const auto& list) {
  return std::any_of(list.begin(), list.end(), [&](std::string_view n) { return iequals(n, name); });
}

bool hop_by_hop(std::string_view name) {
  return one_of(name, kHopByHop) || (name.size() >= 6 && iequals(name.substr(0, 6), "Proxy-"));
}

/// The field names listed by every Connection field of `in` (views into `in`).
std::vector<std::string_view> connection_options(const server::Headers& in) {
  std::vector<std::string_view> names;
  for (const auto& f : in) {
    if (!iequals(f.name, "Connection")) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view token = trim_ows(rest.substr(0, comma));
      if (!token.empty()) names.push_back(token);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return names;
}

}  // namespace

server::Headers filter_headers(const server::Headers& in, Direction direction) {
  const std::vector<std::string_view> named = connection_options(in);
  server::Headers out;
  for (const auto& f : in) {
    if (hop_by_hop(f.name) || one_of(f.name, kOwnedBothWays) || one_of(f.name, named)) continue;
    if (direction == Direction::to_upstream && (one_of(f.name, kClientIp) || one_of(f.name, kOwnedUpstream))) {
      continue;
    }
    out.add(f.name, f.value);
  }
  return out;
}

}  // namespace llmproxy::proxy
