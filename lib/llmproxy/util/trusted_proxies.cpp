#include "llmproxy/util/trusted_proxies.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace llmproxy::util {

namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

/// An X-Forwarded-For entry without an optional port: `1.2.3.4:80` -> `1.2.3.4`, `[::1]:80` / `[::1]` -> `::1`.
std::optional<IpAddress> parse_forwarded_entry(std::string_view entry) {
  if (entry.starts_with('[')) {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto rest = entry.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    auto ip = parse_ip(entry.substr(1, close - 1));
    if (!ip || !ip->v6) return std::nullopt;
    return ip;
  }
  // One colon: IPv4 with a port. More than one: IPv6 without brackets (no port possible).
  const auto colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    auto ip = parse_ip(entry.substr(0, colon));
    if (!ip || ip->v6) return std::nullopt;
    return ip;
  }
  return parse_ip(entry);
}

/// `ip` with every bit past `prefix` cleared.
IpAddress masked(IpAddress ip, int prefix) {
  const int bytes = ip.v6 ? 16 : 4;
  for (int i = 0; i < bytes; ++i) {
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    ip.bytes[static_cast<std::size_t>(i)] &= static_cast<std::uint8_t>(0xFF00u >> keep);
  }
  return ip;
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  if (std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), ip.bytes.begin())) {
    std::array<std::uint8_t, 16> v4{};
    std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.begin());
    ip.bytes = v4;
    return ip;
  }
  ip.v6 = true;
  return ip;
}

std::string format_ip(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof buf) == nullptr) return {};
  return buf;
}

TrustedProxies TrustedProxies::parse(std::string_view list) {
  TrustedProxies out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (item.empty()) continue;

    const auto slash = item.find('/');
    const auto address = item.substr(0, slash);
    const auto ip = parse_ip(address);
    if (!ip) {
      throw TrustedProxiesError("\"" + std::string(item) + "\" is not an IPv4 or IPv6 address or CIDR range");
    }
    const int max_prefix = ip->v6 ? 128 : 32;
    int prefix = max_prefix;
    if (slash != std::string_view::npos) {
      const auto digits = item.substr(slash + 1);
      const auto* end = digits.data() + digits.size();
      auto [ptr, ec] = std::from_chars(digits.data(), end, prefix);
      if (digits.empty() || digits.size() > 3 || ec != std::errc{} || ptr != end || prefix < 0 ||
          prefix > max_prefix) {
        throw TrustedProxiesError("\"" + std::string(item) + "\" has an invalid prefix length (expected /0 to /" +
                                  std::to_string(max_prefix) + ")");
      }
    }
    out.ranges_.push_back({masked(*ip, prefix), prefix});
  }
  return out;
}

bool TrustedProxies::contains(const IpAddress& ip) const {
  return std::any_of(ranges_.begin(), ranges_.end(),
                     [&](const Range& r) { return r.network.v6 == ip.v6 && masked(ip, r.prefix) == r.network; });
}

std::string TrustedProxies::client_ip(std::string_view peer, std::string_view forwarded_for) const {
  if (ranges_.empty() || trim(forwarded_for).empty()) return std::string(peer);
  const auto peer_ip = parse_ip(peer);
  if (!peer_ip || !contains(*peer_ip)) return std::string(peer);

  std::optional<IpAddress> reached;  // the left-most trusted hop so far (nullopt: still the peer)
  std::string_view rest = forwarded_for;
  while (true) {
    const auto comma = rest.rfind(',');
    const auto entry = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    // Empty list elements ("a,,b") are allowed by the list syntax and carry nothing.
    if (!entry.empty()) {
      const auto ip = parse_forwarded_entry(entry);
      if (!ip) break;
      if (!contains(*ip)) return format_ip(*ip);
      reached = ip;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
  }
  return reached ? format_ip(*reached) : std::string(peer);
}

std::string TrustedProxies::to_string() const {
  std::string out;
  for (const auto& r : ranges_) {
    if (!out.empty()) out += ',';
    out += format_ip(r.network) + "/" + std::to_string(r.prefix);
  }
  return out;
}

}  // namespace llmproxy::util
