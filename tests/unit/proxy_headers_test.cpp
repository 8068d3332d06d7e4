// Which header fields cross the proxy, both ways (SPEC §5.3, §5.5 "Headers").
#include <catch2/catch.hpp>

#include <cctype>
#include <string>
#include <vector>

#include "llmproxy/proxy/headers.hpp"
#include "unit/headers_support.hpp"

using llmproxy::proxy::Direction;
using llmproxy::proxy::filter_headers;
using llmproxy::server::Headers;

TEST_CASE("headers: to the upstream, hop-by-hop, client identity and proxy-owned fields are removed",
          "[proxy][headers]") {
  auto in = llmproxy::test::make_headers({{"Content-Type", "application/json"}, {"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"},
                  {"TE", "trailers"}, {"Trailer", "X"}, {"Transfer-Encoding", "chunked"}, {"Upgrade", "h2c"},
                  {"Proxy-Authorization", "Basic x"}, {"proxy-connection", "keep-alive"},
                  {"X-Forwarded-For", "1.2.3.4"}, {"X-Real-IP", "1.2.3.4"}, {"CF-Connecting-IP", "1.2.3.4"},
                  {"X-Client-IP", "1.2.3.4"}, {"X-Original-Forwarded-For", "1.2.3.4"}, {"CF-IPCountry", "DE"},
                  {"Forwarded", "for=1.2.3.4"}, {"x-forwarded-host", "evil"}, {"X-Forwarded-Proto", "http"},
                  {"True-Client-IP", "1.2.3.4"}, {"Host", "proxy"}, {"Authorization", "Bearer sk-client"},
                  {"Content-Length", "3"}, {"X-Request-ID", "r"}, {"Expect", "100-continue"}, {"accept-encoding", "gzip"},
                  {"OpenAI-Organization", "org"}, {"Accept", "*/*"}});
  CHECK(llmproxy::test::header_names(filter_headers(in, Direction::to_upstream)) ==
        std::vector<std::string>{"Content-Type", "OpenAI-Organization", "Accept"});
}

TEST_CASE("headers: fields named by Connection are removed in both directions", "[proxy][headers]") {
  auto in = llmproxy::test::make_headers({{"Connection", "close, X-Secret-Hop"}, {"X-Secret-Hop", "1"}, {"connection", " x-other ,,  "},
                  {"X-OTHER", "2"}, {"X-Kept", "3"}, {"X-Secret-Hop-Not", "4"}});
  const std::vector<std::string> expected{"X-Kept", "X-Secret-Hop-Not"};
  CHECK(llmproxy::test::header_names(filter_headers(in, Direction::to_upstream)) == expected);
  CHECK(llmproxy::test::header_names(filter_headers(in, Direction::to_client)) == expected);
}

TEST_CASE("headers: towards the client, upstream headers other than hop-by-hop pass unchanged", "[proxy][headers]") {
  auto in = llmproxy::test::make_headers({{"Content-Type", "text/event-stream"}, {"Connection", "X-Upstream-Hop"}, {"X-Upstream-Hop", "1"},
                  {"Transfer-Encoding", "chunked"}, {"Content-Length", "10"}, {"X-Request-ID", "up"},
                  {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-Forwarded-For", "kept"},
                  {"openai-processing-ms", "12"}});
  auto out = filter_headers(in, Direction::to_client);
  CHECK(llmproxy::test::header_names(out) ==
        std::vector<std::string>{"Content-Type", "Set-Cookie", "Set-Cookie", "X-Forwarded-For", "openai-processing-ms"});
  CHECK(out[2].value == "b=2");
}

TEST_CASE("headers: arbitrary Connection values never throw", "[proxy][headers]") {
  for (const char* v : {"", ",", " , ,", "\t", "a,", ",a", "Connection", "Content-Type, Host"}) {
    auto out = filter_headers(llmproxy::test::make_headers({{"Connection", v}, {"Content-Type", "x"}, {"a", "1"}}), Direction::to_client);
    INFO(v);
    for (const auto& f : out) CHECK(f.name != "Connection");
  }
}

TEST_CASE("headers: filtering in place removes the same fields and keeps the others' values", "[proxy][headers]") {
  const auto in = llmproxy::test::make_headers({{"Content-Type", "application/json"}, {"Connection", "close, X-Hop"},
                                                {"X-Hop", "1"}, {"Transfer-Encoding", "chunked"}, {"Set-Cookie", "a=1"},
                                                {"X-Forwarded-For", "1.2.3.4"}, {"Host", "h"}, {"X-Kept", "k"}});
  for (const auto direction : {Direction::to_upstream, Direction::to_client}) {
    Headers h = in;
    llmproxy::proxy::filter_headers_in_place(h, direction);
    const Headers copied = filter_headers(in, direction);
    CHECK(llmproxy::test::header_names(h) == llmproxy::test::header_names(copied));
    CHECK(h.get("X-Kept") == "k");
    CHECK(h.get("Content-Type") == "application/json");
    CHECK_FALSE(h.contains("X-Hop"));
  }
  Headers to_client = in;
  llmproxy::proxy::filter_headers_in_place(to_client, Direction::to_client);
  CHECK(llmproxy::test::header_names(to_client) ==
        std::vector<std::string>{"Content-Type", "Set-Cookie", "X-Forwarded-For", "Host", "X-Kept"});
}

TEST_CASE("headers: the named fields are recognised in any letter case and only so, at every byte", "[proxy][headers]") {
  // The names removed towards the upstream (besides Proxy-*). A copy with one letter's case flipped is the same
  // name; a copy with any other byte changed (a non-letter's 0x20 bit, say '-' to CR, or a letter to its
  // neighbour) is another name, and passes.
  const std::vector<std::string> names{"TE",           "Host",           "Expect",          "Trailer",
                                       "Upgrade",      "X-Real-IP",      "Forwarded",       "Connection",
                                       "Keep-Alive",   "X-Client-IP",    "X-Request-ID",    "CF-IPCountry",
                                       "Authorization", "Content-Length", "True-Client-IP",  "Accept-Encoding",
                                       "X-Forwarded-For", "CF-Connecting-IP", "X-Forwarded-Host", "Transfer-Encoding",
                                       "X-Forwarded-Proto", "X-Original-Forwarded-For"};
  const auto passes = [](const std::string& name) {
    Headers h;
    h.add(name, "v");
    return filter_headers(h, Direction::to_upstream).size() == 1;
  };
  std::size_t wrong = 0, variants = 0;
  for (const auto& name : names) {
    std::string upper = name, lower = name;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (passes(name) || passes(upper) || passes(lower)) ++wrong;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(name[i]);
      const bool letter = std::isalpha(c) != 0;
      std::string twin = name;
      twin[i] = static_cast<char>(c ^ 0x20);
      if (passes(twin) != !letter) ++wrong;
      std::string other = name;
      other[i] = static_cast<char>(c + 1);
      if (!passes(other)) ++wrong;
      variants += 2;
    }
  }
  CHECK(variants == 2 * 260);
  CHECK(wrong == 0);
}
