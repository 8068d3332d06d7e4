// The HTTP rules of the response cache (SPEC §13, lib/llmproxy/cache/policy.hpp): eligibility, storability and
// lifetime, the key and its purge patterns, Vary, conditional requests, the headers kept.
#include <catch2/catch.hpp>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "llmproxy/cache/detail/glob.hpp"
#include "llmproxy/cache/policy.hpp"
#include "unit/headers_support.hpp"

using namespace std::chrono_literals;
using llmproxy::cache::Entry;
using llmproxy::server::Headers;
namespace cache = llmproxy::cache;

namespace {

Headers make(std::initializer_list<std::pair<const char*, const char*>> fields) {
  return llmproxy::test::make_headers(fields);
}
std::vector<std::string> names(const Headers& h) { return llmproxy::test::header_names(h); }

const Headers kNone;

}  // namespace

TEST_CASE("cache policy: Cache-Control directives from every field, case-insensitive, malformed ones ignored",
          "[cache][policy]") {
  auto cc = cache::cache_control(make({{"Cache-Control", "Public, MAX-AGE=60"}, {"cache-control", "no-cache,s-maxage=\"30\""}}));
  CHECK(cc.is_public);
  CHECK(cc.no_cache);
  CHECK_FALSE(cc.no_store);
  CHECK_FALSE(cc.is_private);
  CHECK(cc.max_age == 60);
  CHECK(cc.s_maxage == 30);

  cc = cache::cache_control(make({{"Cache-Control", "max-age=-1, s-maxage=abc, no-store, private, foo=bar"}}));
  CHECK_FALSE(cc.max_age.has_value());
  CHECK_FALSE(cc.s_maxage.has_value());
  CHECK(cc.no_store);
  CHECK(cc.is_private);

  cc = cache::cache_control(make({{"Cache-Control", "max-age=99999999999999999999999"}}));
  CHECK(cc.max_age == 2147483647);
  CHECK_FALSE(cache::cache_control(kNone).max_age.has_value());
  CHECK(cache::cache_control(make({{"Cache-Control", "max-age=0"}})).max_age == 0);
  CHECK_FALSE(cache::cache_control(make({{"Cache-Control", "max-age="}})).max_age.has_value());
}

TEST_CASE("cache policy: GET and HEAD may use the cache, POST only when the client opts in within the size limit",
          "[cache][policy]") {
  CHECK(cache::request_may_use_cache("GET", kNone, 0, 1024));
  CHECK(cache::request_may_use_cache("HEAD", kNone, 0, 1024));
  CHECK_FALSE(cache::request_may_use_cache("GET", make({{"Cache-Control", "no-store"}}), 0, 1024));
  CHECK_FALSE(cache::request_may_use_cache("PUT", make({{"Cache-Control", "public, max-age=60"}}), 0, 1024));
  CHECK_FALSE(cache::request_may_use_cache("DELETE", kNone, 0, 1024));
  CHECK_FALSE(cache::request_may_use_cache("get", kNone, 0, 1024));  // methods are case-sensitive

  CHECK_FALSE(cache::request_may_use_cache("POST", kNone, 10, 1024));
  CHECK_FALSE(cache::request_may_use_cache("POST", make({{"Cache-Control", "public"}}), 10, 1024));
  CHECK_FALSE(cache::request_may_use_cache("POST", make({{"Cache-Control", "max-age=60"}}), 10, 1024));
  CHECK_FALSE(cache::request_may_use_cache("POST", make({{"Cache-Control", "public, max-age=0"}}), 10, 1024));
  CHECK(cache::request_may_use_cache("POST", make({{"Cache-Control", "public, max-age=60"}}), 10, 1024));
  CHECK(cache::request_may_use_cache("POST", make({{"Cache-Control", "public, s-maxage=60"}}), 1024, 1024));
  CHECK_FALSE(cache::request_may_use_cache("POST", make({{"Cache-Control", "public, s-maxage=60"}}), 1025, 1024));
  CHECK_FALSE(cache::request_may_use_cache("POST", make({{"Cache-Control", "public, max-age=60, no-store"}}), 1, 1024));
}

TEST_CASE("cache policy: no-cache or max-age=0 from the client asks for revalidation", "[cache][policy]") {
  CHECK(cache::wants_revalidation(make({{"Cache-Control", "no-cache"}})));
  CHECK(cache::wants_revalidation(make({{"Cache-Control", "max-age=0"}})));
  CHECK_FALSE(cache::wants_revalidation(make({{"Cache-Control", "max-age=10"}})));
  CHECK_FALSE(cache::wants_revalidation(kNone));
}

TEST_CASE("cache policy: only 200 203 301 308 404 410 are stored", "[cache][policy]") {
  const auto response = make({{"Cache-Control", "max-age=60"}});
  for (int status : {200, 203, 301, 308, 404, 410}) {
    INFO(status);
    CHECK(cache::storable(status, response, kNone, 0s).has_value());
  }
  for (int status : {100, 201, 204, 206, 302, 304, 400, 401, 403, 429, 500, 502, 503}) {
    INFO(status);
    CHECK_FALSE(cache::storable(status, response, kNone, 0s).has_value());
  }
}

TEST_CASE("cache policy: no-store, private and Vary * in the response are never stored",
          "[cache][policy]") {
  const auto forcing = make({{"Cache-Control", "public, max-age=60"}});
  for (const char* cc : {"no-store, max-age=60", "private, max-age=60", "No-Store"}) {
    INFO(cc);
    CHECK_FALSE(cache::storable(200, make({{"Cache-Control", cc}}), forcing, 60s).has_value());
  }
  CHECK_FALSE(cache::storable(200, make({{"Cache-Control", "max-age=60"}, {"Vary", "Accept, *"}}), kNone, 0s));
  CHECK_FALSE(cache::storable(200, make({{"Vary", "Accept"}, {"Vary", "*"}}), forcing, 60s));
  CHECK(cache::storable(200, make({{"Cache-Control", "max-age=60"}, {"Vary", "Accept, X-Star"}}), kNone, 0s));
}

TEST_CASE("cache policy: a response's no-cache is stored only for the client's opt-in", "[cache][policy]") {
  const auto no_cache = make({{"Cache-Control", "max-age=60, no-cache"}});
  CHECK_FALSE(cache::storable(200, no_cache, kNone, 0s).has_value());
  CHECK_FALSE(cache::storable(200, no_cache, kNone, 30s).has_value());  // not the default either
  auto forced = cache::storable(200, no_cache, make({{"Cache-Control", "public, max-age=20"}}), 30s);
  REQUIRE(forced);
  CHECK(forced->ttl == 20s);  // the client's, not the response's 60
  CHECK(forced->forced);
}

TEST_CASE("cache policy: the lifetime is the response's s-maxage, then max-age, then the client's, then the default",
          "[cache][policy]") {
  const auto client = make({{"Cache-Control", "public, s-maxage=30, max-age=20"}});
  const auto client_max_age = make({{"Cache-Control", "public, max-age=20"}});

  auto life = cache::storable(200, make({{"Cache-Control", "max-age=60, s-maxage=120"}}), client, 5s);
  REQUIRE(life);
  CHECK(life->ttl == 120s);
  CHECK_FALSE(life->forced);

  life = cache::storable(200, make({{"Cache-Control", "public, max-age=60"}}), client, 5s);
  REQUIRE(life);
  CHECK(life->ttl == 60s);
  CHECK_FALSE(life->forced);

  life = cache::storable(200, kNone, client, 5s);
  REQUIRE(life);
  CHECK(life->ttl == 30s);  // the client's s-maxage before its max-age
  CHECK(life->forced);

  life = cache::storable(200, kNone, client_max_age, 5s);
  REQUIRE(life);
  CHECK(life->ttl == 20s);
  CHECK(life->forced);

  // The client's value forces only with `public`.
  life = cache::storable(200, kNone, make({{"Cache-Control", "max-age=20"}}), 5s);
  REQUIRE(life);
  CHECK(life->ttl == 5s);
  CHECK_FALSE(life->forced);

  CHECK_FALSE(cache::storable(200, kNone, make({{"Cache-Control", "max-age=20"}}), 0s));  // default 0: not stored
  CHECK_FALSE(cache::storable(200, kNone, kNone, 0s));
  // A lifetime of 0 named by the response is not stored, even when the client or the default would store.
  CHECK_FALSE(cache::storable(200, make({{"Cache-Control", "max-age=0"}}), client, 5s));
  CHECK_FALSE(cache::storable(200, make({{"Cache-Control", "s-maxage=0, max-age=60"}}), client, 5s));
}

TEST_CASE("cache policy: the key is three 32-digit hex parts and the same inputs give the same key",
          "[cache][policy]") {
  const auto h = make({{"Accept", "application/json"}});
  const std::string k = cache::key("p1", "GET", "/v1/models?b=2&a=1", h, "");
  CHECK(std::regex_match(k, std::regex("[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]{32}")));
  CHECK(k == cache::key("p1", "GET", "/v1/models?b=2&a=1", h, ""));
  // Every key of the binary's alphabet: [0-9a-f:] only, whatever the inputs.
  const std::string odd = cache::key("pröject\n*", "POST", "/v1/a b?x=*&y=\r\n", make({{"Accept", "*/*\x01"}}), "\0");
  CHECK(std::regex_match(odd, std::regex("[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]{32}")));
}

TEST_CASE("cache policy: what changes the key and what does not", "[cache][policy]") {
  const auto h = make({{"Accept", "application/json"}});
  const std::string base = cache::key("p1", "GET", "/v1/models?a=1&b=2", h, "");

  // Changes it.
  CHECK(cache::key("p2", "GET", "/v1/models?a=1&b=2", h, "") != base);
  CHECK(cache::key("p1", "HEAD", "/v1/models?a=1&b=2", h, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models/x?a=1&b=2", h, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=3", h, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1", h, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models", h, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", "text/plain"}}), "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", kNone, "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", "application/json"}, {"Accept-Encoding", "gzip"}}), "") != base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", "application/json"}, {"Accept-Language", "de"}}), "") != base);
  // The parts do not run into each other.
  CHECK(cache::key("p1", "GET", "/a?b", kNone, "") != cache::key("p1", "GET", "/a%3Fb", kNone, ""));
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", "x"}, {"Accept-Encoding", ""}}), "") !=
        cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", ""}, {"Accept-Encoding", "x"}}), ""));

  // Does not change it.
  CHECK(cache::key("p1", "GET", "/v1/models?b=2&a=1", h, "") == base);  // parameter order
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"accept", " application/json "}}), "") == base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", make({{"Accept", "application/json"}, {"Authorization", "Bearer x"}, {"User-Agent", "y"}}), "") == base);
  CHECK(cache::key("p1", "GET", "/v1/models?a=1&b=2", h, "a body") == base);  // a GET's body is not part of it

  // POST: the body is.
  const auto post = cache::key("p1", "POST", "/v1/chat/completions", h, R"({"model":"a"})");
  CHECK(post != cache::key("p1", "POST", "/v1/chat/completions", h, R"({"model":"b"})"));
  CHECK(post == cache::key("p1", "POST", "/v1/chat/completions", h, R"({"model":"a"})"));
  // Two projects never share a key, for any request.
  CHECK(cache::key("p1", "POST", "/v1/chat/completions", h, "x").substr(0, 32) !=
        cache::key("p2", "POST", "/v1/chat/completions", h, "x").substr(0, 32));
}

TEST_CASE("cache policy: purge patterns match the keys of their resource or project and no others",
          "[cache][policy]") {
  using llmproxy::cache::detail::glob_match;
  const auto json = make({{"Accept", "application/json"}});
  const auto text = make({{"Accept", "text/plain"}});
  const std::string a1 = cache::key("p1", "GET", "/v1/models?x=1&y=2", json, "");
  const std::string a2 = cache::key("p1", "GET", "/v1/models?y=2&x=1", text, "");
  const std::string a3 = cache::key("p2", "GET", "/v1/models?x=1&y=2", json, "");
  const std::string other_path = cache::key("p1", "GET", "/v1/models/m?x=1&y=2", json, "");
  const std::string other_method = cache::key("p1", "HEAD", "/v1/models?x=1&y=2", json, "");

  const std::string mine = cache::resource_pattern("p1", "GET", "/v1/models?x=1&y=2");
  CHECK(std::regex_match(mine, std::regex("[0-9a-f]{32}:[0-9a-f]{32}:\\*")));
  CHECK(glob_match(mine, a1));
  CHECK(glob_match(mine, a2));  // every variant
  CHECK_FALSE(glob_match(mine, a3));
  CHECK_FALSE(glob_match(mine, other_path));
  CHECK_FALSE(glob_match(mine, other_method));

  const std::string everyone = cache::resource_pattern("", "GET", "/v1/models?x=1&y=2");
  CHECK(glob_match(everyone, a1));
  CHECK(glob_match(everyone, a3));
  CHECK_FALSE(glob_match(everyone, other_path));

  const std::string p1 = cache::project_pattern("p1");
  for (const auto& k : {a1, a2, other_path, other_method}) CHECK(glob_match(p1, k));
  CHECK_FALSE(glob_match(p1, a3));
  CHECK_FALSE(glob_match(cache::project_pattern("p"), a1));
}

TEST_CASE("cache policy: the purge glob, '*' any run and everything else literal", "[cache][policy]") {
  using llmproxy::cache::detail::glob_match;
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*", "abc:def"));
  CHECK(glob_match("abc", "abc"));
  CHECK_FALSE(glob_match("abc", "abcd"));
  CHECK_FALSE(glob_match("abc", "ab"));
  CHECK(glob_match("a*c", "abbbc"));
  CHECK(glob_match("a*c", "ac"));
  CHECK_FALSE(glob_match("a*c", "abcd"));
  CHECK(glob_match("*:b:*", "a:b:c"));
  CHECK(glob_match("a**b*c", "axxbyyc"));
  CHECK_FALSE(glob_match("a*b*c", "axxbyy"));
  CHECK(glob_match("*aab", "aaaab"));
  CHECK_FALSE(glob_match("?", "a"));  // no other wildcard
  CHECK_FALSE(glob_match("[ab]", "a"));
  CHECK_FALSE(glob_match("", "a"));
  CHECK(glob_match("", ""));
}

TEST_CASE("cache policy: Vary names lower-cased in order without duplicates, with the request's values",
          "[cache][policy]") {
  const auto response = make({{"Vary", "Accept, X-Model"}, {"vary", "accept-language ,, x-model"}});
  const auto request = make({{"Accept", " application/json "}, {"ACCEPT-LANGUAGE", "de"}});
  const auto vary = cache::vary_values(response, request);
  const std::vector<std::pair<std::string, std::string>> expected{
      {"accept", "application/json"}, {"x-model", ""}, {"accept-language", "de"}};
  CHECK(vary == expected);
  CHECK(cache::vary_values(kNone, request).empty());

  Entry entry;
  entry.vary = vary;
  CHECK(cache::vary_matches(entry, request));
  CHECK(cache::vary_matches(entry, make({{"accept-language", "de"}, {"accept", "application/json"}})));
  CHECK_FALSE(cache::vary_matches(entry, make({{"Accept", "text/plain"}, {"Accept-Language", "de"}})));
  CHECK_FALSE(cache::vary_matches(entry, make({{"Accept", "application/json"}})));  // language now absent
  CHECK_FALSE(cache::vary_matches(entry, make({{"Accept", "application/json"}, {"Accept-Language", "de"},
                                               {"X-Model", "gpt"}})));  // was absent, now present
  CHECK(cache::vary_matches(Entry{}, request));  // no Vary: any request
}

TEST_CASE("cache policy: If-None-Match against the stored ETag (weak comparison, lists, *)", "[cache][policy]") {
  Entry strong;
  strong.headers.add("ETag", "\"v1\"");
  Entry weak;
  weak.headers.add("ETag", "W/\"v1\"");
  Entry untagged;

  CHECK(cache::not_modified(strong, make({{"If-None-Match", "\"v1\""}})));
  CHECK(cache::not_modified(strong, make({{"If-None-Match", "W/\"v1\""}})));
  CHECK(cache::not_modified(weak, make({{"If-None-Match", "\"v1\""}})));
  CHECK(cache::not_modified(strong, make({{"If-None-Match", "\"v0\", \"v1\""}})));
  CHECK(cache::not_modified(strong, make({{"If-None-Match", "\"v0\""}, {"If-None-Match", "\"v1\""}})));
  CHECK_FALSE(cache::not_modified(strong, make({{"If-None-Match", "\"v2\", W/\"v3\""}})));
  CHECK_FALSE(cache::not_modified(strong, make({{"If-None-Match", "v1"}})));  // unquoted: another tag
  CHECK(cache::not_modified(strong, make({{"If-None-Match", "*"}})));
  CHECK(cache::not_modified(untagged, make({{"If-None-Match", "*"}})));
  CHECK_FALSE(cache::not_modified(untagged, make({{"If-None-Match", "\"v1\""}})));
  CHECK_FALSE(cache::not_modified(strong, kNone));
}

TEST_CASE("cache policy: If-Modified-Since against the stored Last-Modified, unless If-None-Match is there",
          "[cache][policy]") {
  Entry entry;
  entry.headers.add("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
  entry.headers.add("ETag", "\"v1\"");

  CHECK(cache::not_modified(entry, make({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}})));
  CHECK(cache::not_modified(entry, make({{"If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT"}})));
  CHECK_FALSE(cache::not_modified(entry, make({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}})));
  // The obsolete forms (RFC 9110 §5.6.7).
  CHECK(cache::not_modified(entry, make({{"If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT"}})));
  CHECK(cache::not_modified(entry, make({{"If-Modified-Since", "Sun Nov  6 08:49:37 1994"}})));
  CHECK_FALSE(cache::not_modified(entry, make({{"If-Modified-Since", "Sun Nov  6 08:49:36 1994"}})));
  // Not a date: no 304.
  CHECK_FALSE(cache::not_modified(entry, make({{"If-Modified-Since", "yesterday"}})));
  CHECK_FALSE(cache::not_modified(entry, make({{"If-Modified-Since", "Sun, 06 Foo 1994 08:49:37 GMT"}})));
  CHECK_FALSE(cache::not_modified(entry, make({{"If-Modified-Since", "Sun, 06 Nov 1994 25:49:37 GMT"}})));
  // If-None-Match present: it alone decides.
  CHECK_FALSE(cache::not_modified(entry, make({{"If-None-Match", "\"v2\""},
                                               {"If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT"}})));
  // No Last-Modified stored: no 304.
  Entry bare;
  CHECK_FALSE(cache::not_modified(bare, make({{"If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT"}})));
  // Dates in the 21st century order correctly too.
  Entry recent;
  recent.headers.add("Last-Modified", "Thu, 03 Dec 2026 11:00:00 GMT");
  CHECK(cache::not_modified(recent, make({{"If-Modified-Since", "Thu, 03 Dec 2026 11:00:00 GMT"}})));
  CHECK_FALSE(cache::not_modified(recent, make({{"If-Modified-Since", "Wed, 02 Dec 2026 11:00:00 GMT"}})));
  CHECK_FALSE(cache::not_modified(recent, make({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}})));
}

TEST_CASE("cache policy: stored headers drop hop-by-hop, Date, Set-Cookie, Age, CORS and per-request fields",
          "[cache][policy]") {
  const auto in = make({{"Content-Type", "application/json"}, {"Connection", "keep-alive, X-Hop"}, {"X-Hop", "1"},
                        {"Keep-Alive", "timeout=5"}, {"Transfer-Encoding", "chunked"}, {"Upgrade", "h2c"},
                        {"TE", "trailers"}, {"Trailer", "X"}, {"Proxy-Authenticate", "Basic"},
                        {"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Set-Cookie", "a=1"}, {"set-cookie", "b=2"},
                        {"Age", "3"}, {"Access-Control-Allow-Origin", "*"}, {"access-control-expose-headers", "X"},
                        {"X-Request-ID", "r1"}, {"Cache-Status", "llm-proxy; fwd=miss"}, {"X-PROXY-CACHE", "stored"},
                        {"x-proxy-cache-key", "k"}, {"X-Upstream-Request-Start", "1"}, {"X-Correlation-ID", "c"},
                        {"ETag", "\"v1\""}, {"Cache-Control", "max-age=60"}, {"Vary", "Accept"},
                        {"openai-processing-ms", "12"}, {"X-Access-Control", "kept"}});
  CHECK(names(cache::headers_to_store(in)) ==
        std::vector<std::string>{"Content-Type", "ETag", "Cache-Control", "Vary", "openai-processing-ms",
                                 "X-Access-Control"});
  CHECK(cache::headers_to_store(in).get("ETag") == "\"v1\"");
}
