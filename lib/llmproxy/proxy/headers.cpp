#include "llmproxy/proxy/headers.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace llmproxy::proxy {

using server::iequals;
using server::trim_ows;

namespace {

// Where a known field name stops. Proxy-* fields are matched by prefix (see drop_of()).
enum Drop : std::uint8_t {
  kKeep = 0,
  kBothWays = 1,    // never forwarded in either direction
  kToUpstream = 2,  // not forwarded to the provider
};

struct Known {
  std::string_view name;
  Drop drop;
};

// Sorted by length, so drop_of() compares a name only with the known names of its length.
constexpr std::array<Known, 22> kKnown = {{
    // Hop-by-hop (RFC 9110 §7.6.1 plus the legacy ones proxies strip).
    {"TE", kBothWays},
    // Host, Authorization and Expect are the proxy's own. Accept-Encoding is dropped so the provider answers
    // uncompressed: the proxy reads the LLM-token usage out of every answer (SPEC §14), and a compressed body
    // would hide it (budgets and usage would count 0). Clients get the same bytes without the compression.
    {"Host", kToUpstream},
    {"Expect", kToUpstream},
    {"Trailer", kBothWays},
    {"Upgrade", kBothWays},
    {"X-Real-IP", kToUpstream},  // the client's network identity stays with the proxy, as do the ones below
    {"Forwarded", kToUpstream},
    {"Connection", kBothWays},
    {"Keep-Alive", kBothWays},
    {"X-Client-IP", kToUpstream},
    {"X-Request-ID", kBothWays},  // set by the proxy, as is Content-Length
    {"CF-IPCountry", kToUpstream},
    {"Authorization", kToUpstream},
    {"Content-Length", kBothWays},
    {"True-Client-IP", kToUpstream},
    {"Accept-Encoding", kToUpstream},
    {"X-Forwarded-For", kToUpstream},
    {"CF-Connecting-IP", kToUpstream},
    {"X-Forwarded-Host", kToUpstream},
    {"Transfer-Encoding", kBothWays},
    {"X-Forwarded-Proto", kToUpstream},
    {"X-Original-Forwarded-For", kToUpstream},
}};

constexpr std::size_t kLongestKnown = 24;

// kKnown[kFirstOfLength[n] .. kFirstOfLength[n + 1]) are the known names of length n.
constexpr std::array<std::uint8_t, kLongestKnown + 2> kFirstOfLength = [] {
  std::array<std::uint8_t, kLongestKnown + 2> first{};
  std::size_t k = 0;
  for (std::size_t n = 0; n <= kLongestKnown + 1; ++n) {
    while (k < kKnown.size() && kKnown[k].name.size() < n) ++k;
    first[n] = static_cast<std::uint8_t>(k);
  }
  return first;
}();
static_assert(kKnown.back().name.size() == kLongestKnown);
static_assert([] {
  for (std::size_t i = 1; i < kKnown.size(); ++i)
    if (kKnown[i - 1].name.size() > kKnown[i].name.size()) return false;
  return true;
}());

Drop drop_of(std::string_view name) {
  if (name.size() >= 6 && iequals(name.substr(0, 6), "Proxy-")) return kBothWays;
  if (name.size() > kLongestKnown) return kKeep;
  for (std::size_t k = kFirstOfLength[name.size()]; k < kFirstOfLength[name.size() + 1]; ++k) {
    if (iequals(kKnown[k].name, name)) return kKnown[k].drop;
  }
  return kKeep;
}

bool one_of(std::string_view name, const std::vector<std::string_view>& list) {
  return std::any_of(list.begin(), list.end(), [&](std::string_view n) { return iequals(n, name); });
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

/// Whether a field named `name` stops in `direction`, given the names the Connection fields list.
bool stops(std::string_view name, Direction direction, const std::vector<std::string_view>& named) {
  const std::uint8_t dropped = direction == Direction::to_upstream ? (kBothWays | kToUpstream) : kBothWays;
  return (drop_of(name) & dropped) != 0 || one_of(name, named);
}

}  // namespace

server::Headers filter_headers(const server::Headers& in, Direction direction, std::size_t extra_bytes,
                               std::size_t extra_fields) {
  // One copy of the whole list (two allocations, two memcpy), then the stopped fields dropped from its index:
  // cheaper than adding the kept fields one by one.
  server::Headers out(in, extra_bytes, extra_fields);
  filter_headers_in_place(out, direction);
  return out;
}

void filter_headers_in_place(server::Headers& headers, Direction direction) {
  // The Connection options view the list's bytes, which removing fields leaves in place.
  const std::vector<std::string_view> named = connection_options(headers);
  headers.remove_if([&](const server::Headers::Field& f) { return stops(f.name, direction, named); });
}

}  // namespace llmproxy::proxy
