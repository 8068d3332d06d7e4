// util/trusted_proxies.hpp: TRUSTED_PROXIES parsing and the choice of the client address from X-Forwarded-For.
#include <catch2/catch.hpp>
#include <string>

#include "llmproxy/util/trusted_proxies.hpp"

namespace util = llmproxy::util;
using util::TrustedProxies;

namespace {

bool trusted(const TrustedProxies& t, const std::string& ip) {
  const auto parsed = util::parse_ip(ip);
  REQUIRE(parsed.has_value());
  return t.contains(*parsed);
}

}  // namespace

TEST_CASE("parse_ip reads bare IPv4 and IPv6 addresses only", "[util][trusted_proxies]") {
  CHECK(util::format_ip(*util::parse_ip("10.0.0.1")) == "10.0.0.1");
  CHECK(util::format_ip(*util::parse_ip("2001:DB8:0:0::1")) == "2001:db8::1");
  // IPv4-mapped IPv6 (a dual-stack peer) is IPv4.
  const auto mapped = util::parse_ip("::ffff:192.0.2.7");
  REQUIRE(mapped.has_value());
  CHECK_FALSE(mapped->v6);
  CHECK(util::format_ip(*mapped) == "192.0.2.7");
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "1.2.3.4:80", "[::1]", "fe80::1%eth0", "unknown", " 1.2.3.4",
                          "::g", "1.2.3.4/8"}) {
    INFO(bad);
    CHECK_FALSE(util::parse_ip(bad).has_value());
  }
}

TEST_CASE("TRUSTED_PROXIES lists parse into ranges, bad items are refused by name", "[util][trusted_proxies]") {
  CHECK(TrustedProxies::parse("").empty());
  CHECK(TrustedProxies::parse(" , ").empty());
  const auto t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,172.16.5.9/12");
  CHECK(t.to_string() == "10.0.0.0/8,192.168.1.7/32,2001:db8::/32,172.16.0.0/12");
  CHECK(trusted(t, "10.255.1.2"));
  CHECK(trusted(t, "192.168.1.7"));
  CHECK_FALSE(trusted(t, "192.168.1.8"));
  CHECK(trusted(t, "172.31.255.255"));
  CHECK_FALSE(trusted(t, "172.32.0.0"));
  CHECK(trusted(t, "2001:db8:ffff::1"));
  CHECK_FALSE(trusted(t, "2001:db9::1"));
  CHECK(trusted(t, "::ffff:10.1.1.1"));  // mapped IPv4 matches the IPv4 range
  CHECK_FALSE(trusted(TrustedProxies::parse("::/0"), "10.0.0.1"));  // IPv6 ranges never match IPv4
  CHECK(trusted(TrustedProxies::parse("0.0.0.0/0"), "203.0.113.9"));
  CHECK(trusted(TrustedProxies::parse("2001:db8::1/128"), "2001:db8::1"));

  for (const char* bad : {"10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0/8",
                          "localhost", "10.0.0.0/8,nonsense", "1.2.3.4:80", "10.0.0.0/0008"}) {
    INFO(bad);
    CHECK_THROWS_AS(TrustedProxies::parse(bad), util::TrustedProxiesError);
  }
  try {
    TrustedProxies::parse("10.0.0.0/8, 300.1.1.1/32");
    FAIL("no exception");
  } catch (const util::TrustedProxiesError& e) {
    CHECK(std::string(e.what()).find("\"300.1.1.1/32\"") != std::string::npos);
  }
}

TEST_CASE("client_ip walks X-Forwarded-For from the right past trusted hops", "[util][trusted_proxies]") {
  const auto t = TrustedProxies::parse("10.0.0.0/8,2001:db8::/32");

  // Untrusted peer, empty set or no header: the peer, unchanged (whatever the header says).
  CHECK(t.client_ip("203.0.113.5", "198.51.100.1") == "203.0.113.5");
  CHECK(TrustedProxies().client_ip("10.0.0.1", "198.51.100.1") == "10.0.0.1");
  CHECK(t.client_ip("10.0.0.1", "") == "10.0.0.1");
  CHECK(t.client_ip("10.0.0.1", "  ") == "10.0.0.1");
  CHECK(t.client_ip("not-an-ip", "198.51.100.1") == "not-an-ip");

  // A trusted peer: the right-most untrusted entry; spoofed entries further left are ignored.
  CHECK(t.client_ip("10.0.0.1", "198.51.100.1") == "198.51.100.1");
  CHECK(t.client_ip("10.0.0.1", "6.6.6.6, 198.51.100.1") == "198.51.100.1");
  CHECK(t.client_ip("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.2.3.4,10.9.9.9") == "198.51.100.1");
  CHECK(t.client_ip("::ffff:10.0.0.1", "198.51.100.1") == "198.51.100.1");
  CHECK(t.client_ip("2001:db8::5", "2001:DB8:1::9, 2001:0db9::1") == "2001:db9::1");
  // Ports and brackets are dropped; empty list elements skipped.
  CHECK(t.client_ip("10.0.0.1", "198.51.100.1:4711") == "198.51.100.1");
  CHECK(t.client_ip("10.0.0.1", "[2001:db9::1]:443") == "2001:db9::1");
  CHECK(t.client_ip("10.0.0.1", "198.51.100.1,, ") == "198.51.100.1");

  // Every entry trusted: the left-most.
  CHECK(t.client_ip("10.0.0.1", "10.1.1.1, 10.2.2.2") == "10.1.1.1");
  // A malformed entry stops the walk: the last address reached (a trusted hop, or the peer).
  CHECK(t.client_ip("10.0.0.1", "198.51.100.1, unknown") == "10.0.0.1");
  CHECK(t.client_ip("10.0.0.1", "198.51.100.1, garbage, 10.3.3.3") == "10.3.3.3");
  CHECK(t.client_ip("10.0.0.1", "[2001:db9::1") == "10.0.0.1");
  CHECK(t.client_ip("10.0.0.1", "1.2.3.4:80:90") == "10.0.0.1");
}
