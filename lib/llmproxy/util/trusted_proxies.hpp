#pragma once
/// TRUSTED_PROXIES (SPEC §7.4): which TCP peers may tell us the client address in X-Forwarded-For, and the
/// selection of that address. Server-independent and pure: any thread, no allocation beyond the result.
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmproxy::util {

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored as IPv4, so a peer
/// accepted on a dual-stack socket matches IPv4 ranges.
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

/// A bare address (`10.0.0.1`, `2001:db8::1`); nullopt for anything else (ports, brackets, zones, names).
std::optional<IpAddress> parse_ip(std::string_view text);
/// The canonical text form (inet_ntop): `10.0.0.1`, `2001:db8::1`.
std::string format_ip(const IpAddress& ip);

struct TrustedProxiesError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// A set of CIDR ranges. Empty (the default) trusts no one: the client address is always the TCP peer.
class TrustedProxies {
 public:
  TrustedProxies() = default;

  /// Parses a comma-separated list of CIDR ranges (`10.0.0.0/8, 2001:db8::/32`); a bare address counts as a
  /// single-address range (/32 or /128). Host bits past the prefix are ignored (`10.1.2.3/8` = `10.0.0.0/8`).
  /// Blank items are skipped, so "" and " " are the empty set. Throws TrustedProxiesError naming the first
  /// item that is not a range (bad address, prefix missing a number or out of 0..32 / 0..128).
  static TrustedProxies parse(std::string_view list);

  bool empty() const { return ranges_.empty(); }
  /// True if `ip` lies in one of the ranges (IPv4 ranges match IPv4 addresses only, IPv6 ranges IPv6 ones).
  bool contains(const IpAddress& ip) const;

  /// The client address of a request that reached us from `peer` (the TCP peer address as text) carrying the
  /// X-Forwarded-For value `forwarded_for` (every field of that name joined with ',', in order; empty when
  /// absent). If the set is empty, `peer` is not an address or not trusted, or `forwarded_for` is empty: `peer`
  /// unchanged. Otherwise the list is walked from the right (the entry our trusted peer appended) and the first
  /// entry that is not itself in a trusted range is the client, in canonical form. If every entry is trusted,
  /// the left-most one is. If an entry is not an address (garbage, `unknown`), the walk stops there and the last
  /// address reached is the answer (the right-most trusted hop, or `peer`): nothing left of a malformed entry is
  /// believed. Entries may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`), which is dropped.
  std::string client_ip(std::string_view peer, std::string_view forwarded_for) const;

  /// The normalized list (`10.0.0.0/8,2001:db8::/32`), empty for the empty set; for the boot log.
  std::string to_string() const;

 private:
  struct Range {
    IpAddress network;  // host bits cleared
    int prefix = 0;
  };
  std::vector<Range> ranges_;
};

}  // namespace llmproxy::util
