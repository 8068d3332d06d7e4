// fuzz_proxy_rules: the proxy's pure request rules (lib/llmproxy/proxy/target.hpp, headers.hpp, params.hpp).
//
// The input is used three ways:
//  - as a request target for normalise_target(): an accepted target starts with '/', holds no '..' segment, no
//    encoded '/' or '\', no control byte, no '//', and normalising it again changes nothing (idempotent); a
//    refused one carries a reason. endpoint_matches() of the result against a few prefixes agrees with a
//    segment-wise comparison.
//  - as `name:value` lines for filter_headers(): in neither direction does a hop-by-hop field, or a field named
//    by a Connection field, survive; towards the upstream no client-IP field survives; every other field keeps
//    its order; filter_headers_in_place() leaves exactly the same fields.
//  - as a request body for check_params() (JSON, and multipart when the input starts with 'M'): it never throws
//    and an empty whitelist always passes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "llmproxy/proxy/headers.hpp"
#include "llmproxy/proxy/params.hpp"
#include "llmproxy/proxy/target.hpp"
#include "llmproxy/server/http_types.hpp"

namespace {

using llmproxy::server::Headers;
using llmproxy::server::iequals;
namespace proxy = llmproxy::proxy;

bool has_segment(std::string_view path, std::string_view segment) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (path.substr(start, end - start) == segment) return true;
    start = end + 1;
  }
  return false;
}

bool contains_ci(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
    if (iequals(text.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

void check_target(std::string_view raw) {
  const proxy::NormalisedTarget t = proxy::normalise_target(raw);
  if (!t.ok()) return;
  FUZZ_CHECK(!t.path.empty() && t.path.front() == '/');
  FUZZ_CHECK(!has_segment(t.path, ".."));
  FUZZ_CHECK(!has_segment(t.path, "."));
  FUZZ_CHECK(t.path.find("//") == std::string::npos);
  FUZZ_CHECK(t.path.find('\\') == std::string::npos);
  FUZZ_CHECK(!contains_ci(t.path, "%2f") && !contains_ci(t.path, "%5c") && !contains_ci(t.path, "%2e"));
  for (unsigned char c : t.path) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  for (unsigned char c : t.query) FUZZ_CHECK(c >= 0x20 && c != 0x7f);

  const proxy::NormalisedTarget again = proxy::normalise_target(t.target());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.path == t.path);
  FUZZ_CHECK(again.query == t.query);

  for (std::string_view prefix : {"/v1/models", "/v1/chat/completions", "/v1"}) {
    const bool matches = proxy::endpoint_matches(prefix, t.path);
    const bool expected = t.path == prefix || (t.path.size() > prefix.size() && t.path.rfind(prefix, 0) == 0 &&
                                               t.path[prefix.size()] == '/');
    FUZZ_CHECK(matches == expected);
  }
}

Headers headers_from_lines(std::string_view text) {
  Headers h;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) h.add(line.substr(0, colon), line.substr(colon + 1));
    start = end + 1;
  }
  return h;
}

/// The names listed in every Connection field, trimmed, as filter_headers() reads them.
std::vector<std::string> connection_names(const Headers& h) {
  std::vector<std::string> names;
  for (const auto& f : h) {
    if (!iequals(f.name, "connection")) continue;
    std::size_t start = 0;
    const std::string_view v = f.value;
    while (start <= v.size()) {
      std::size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      std::string_view item(v.data() + start, end - start);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) names.emplace_back(item);
      start = end + 1;
    }
  }
  return names;
}

void check_headers(std::string_view text) {
  const Headers in = headers_from_lines(text);
  const std::vector<std::string> named = connection_names(in);
  for (const auto direction : {proxy::Direction::to_upstream, proxy::Direction::to_client}) {
    const Headers out = proxy::filter_headers(in, direction);
    FUZZ_CHECK(out.size() <= in.size());
    Headers in_place = in;  // the in-place filter leaves exactly the same fields
    proxy::filter_headers_in_place(in_place, direction);
    FUZZ_CHECK(in_place.size() == out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      FUZZ_CHECK(in_place[i].name == out[i].name && in_place[i].value == out[i].value);
    }
    std::size_t next = 0;  // every surviving field appears in `in`, in order
    for (const auto& f : out) {
      for (const std::string_view hop : {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}) {
        FUZZ_CHECK(!iequals(f.name, hop));
      }
      FUZZ_CHECK(!(f.name.size() >= 6 && iequals(std::string_view(f.name).substr(0, 6), "proxy-")));
      for (const auto& n : named) FUZZ_CHECK(!iequals(f.name, n));
      if (direction == proxy::Direction::to_upstream) {
        for (const std::string_view ip : {"x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host",
                                          "x-forwarded-proto", "true-client-ip", "cf-connecting-ip"}) {
          FUZZ_CHECK(!iequals(f.name, ip));
        }
      }
      while (next < in.size() && !(in[next].name == f.name && in[next].value == f.value)) ++next;
      FUZZ_CHECK(next < in.size());
      ++next;
    }
  }
}

void check_body(std::string_view text) {
  static const proxy::ParamWhitelist kWhitelist = {{"model", {"gpt-4o*", "o1"}}, {"voice", {"alloy"}}};
  FUZZ_CHECK(proxy::check_params({}, "application/json", text).empty());
  if (!text.empty() && text.front() == 'M') {
    (void)proxy::check_params(kWhitelist, "multipart/form-data; boundary=XyZ", text.substr(1));
  } else {
    (void)proxy::check_params(kWhitelist, "application/json", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_target(text);
  check_headers(text);
  check_body(text);
  return 0;
}
