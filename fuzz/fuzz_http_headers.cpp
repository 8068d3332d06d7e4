// fuzz_http_headers: the header handling of lib/llmproxy/server/http_types.hpp.
//
// The input is parsed twice:
//  - as an HTTP/1.1 request by Beast's parser with the server's header limit (what the session does before it
//    copies the fields into server::Request), then the copied request is checked;
//  - as raw `name:value` lines added straight to a server::Headers, so names and values Beast would reject
//    (non-token bytes, bytes >= 0x80, empty names) reach Headers too.
// Properties: get/contains agree with a linear scan using iequals; iequals is symmetric, reflexive and agrees
// with Beast's ASCII case folding; set leaves exactly one field with the new value and keeps the order of the
// others; remove leaves none; a field added from the list's own views arrives intact; path() and query() split
// the target at the first '?' and rebuild it.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "llmproxy/server/http_types.hpp"

namespace {

namespace http = boost::beast::http;
using llmproxy::server::Headers;
using llmproxy::server::iequals;
using llmproxy::server::Request;

constexpr std::size_t kHeaderLimit = 16 * 1024;  // ServerOptions::max_header_size's default

std::string_view first_value(const std::vector<Headers::Field>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return f.value;
  }
  return {};
}

void check_iequals(std::string_view a, std::string_view b) {
  const bool eq = iequals(a, b);
  FUZZ_CHECK(eq == iequals(b, a));
  FUZZ_CHECK(eq == boost::beast::iequals(a, b));
  FUZZ_CHECK(iequals(a, a));
  if (eq) FUZZ_CHECK(a.size() == b.size());
}

void check_headers(const Headers& h) {
  // Views into `h`, which stays unchanged below.
  const std::vector<Headers::Field> fields(h.begin(), h.end());
  FUZZ_CHECK(fields.size() == h.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = fields[i].name;
    FUZZ_CHECK(h[i].name == name && h[i].value == fields[i].value);
    FUZZ_CHECK(h.contains(name));
    FUZZ_CHECK(h.get(name) == first_value(fields, name));
    if (i + 1 < fields.size()) check_iequals(name, fields[i + 1].name);
  }
  if (fields.empty()) return;

  // set/remove on a copy, for the first and the last field name.
  // A field added from the list's own views (the buffer may grow under them) arrives intact.
  {
    Headers copy = h;
    const std::string name(fields.front().name);
    const std::string value(fields.back().value);
    copy.add(copy[0].name, copy[copy.size() - 1].value);
    FUZZ_CHECK(copy.size() == fields.size() + 1);
    FUZZ_CHECK(copy[copy.size() - 1].name == name && copy[copy.size() - 1].value == value);
  }

  for (const std::string_view name : {fields.front().name, fields.back().name}) {
    Headers copy = h;
    copy.set(name, "fuzz-value");
    FUZZ_CHECK(copy.get(name) == "fuzz-value");
    std::size_t same = 0;
    std::vector<Headers::Field> others;
    for (const auto& f : copy) {
      if (iequals(f.name, name)) {
        ++same;
      } else {
        others.push_back(f);
      }
    }
    FUZZ_CHECK(same == 1);
    std::vector<Headers::Field> expected_others;
    for (const auto& f : fields) {
      if (!iequals(f.name, name)) expected_others.push_back(f);
    }
    FUZZ_CHECK(others.size() == expected_others.size());
    for (std::size_t i = 0; i < others.size(); ++i) {
      FUZZ_CHECK(others[i].name == expected_others[i].name && others[i].value == expected_others[i].value);
    }
    copy.remove(name);
    FUZZ_CHECK(!copy.contains(name) && copy.get(name).empty());
    FUZZ_CHECK(copy.size() == expected_others.size());
  }
}

void check_target(const Request& r) {
  const std::string_view target = r.target;
  const std::string_view path = r.path();
  const std::string_view query = r.query();
  FUZZ_CHECK(path.find('?') == std::string_view::npos);
  FUZZ_CHECK(target.starts_with(path));
  if (target.find('?') == std::string_view::npos) {
    FUZZ_CHECK(path == target && query.empty());
  } else {
    FUZZ_CHECK(std::string(path) + "?" + std::string(query) == target);
  }
  // Every parameter name of the query is found again (decoded names; the first occurrence wins).
  std::string_view q = query;
  for (int i = 0; i < 8 && !q.empty(); ++i) {
    const auto amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    const std::string_view raw_name = pair.substr(0, pair.find('='));
    if (raw_name.find_first_of("%+") != std::string_view::npos) continue;  // decoded, maybe to another name
    std::string value;
    FUZZ_CHECK(r.query_param(raw_name, value));
  }
}

void parse_with_beast(std::string_view text) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t offset = 0;
  while (offset < text.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::const_buffer(text.data() + offset, text.size() - offset), ec);
    if (ec || n == 0) break;
    offset += n;
  }
  if (!parser.is_header_done()) return;

  // As the server session builds its Request (lib/llmproxy/server/server.cpp).
  auto& hreq = parser.get();
  Request request;
  request.method = std::string(hreq.method_string());
  request.target = std::string(hreq.target());
  for (const auto& field : hreq) request.headers.add(field.name_string(), field.value());
  FUZZ_CHECK(request.headers.size() == static_cast<std::size_t>(std::distance(hreq.begin(), hreq.end())));
  // What the session reads through Beast is what a handler reads through Headers.
  for (const auto& field : hreq) {
    FUZZ_CHECK(request.headers.get(field.name_string()) == hreq[field.name_string()]);
  }
  check_headers(request.headers);
  check_target(request);
}

void parse_raw_lines(std::string_view text) {
  Headers h;
  Request request;
  bool first = true;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (first) {
      request.target = std::string(line);  // the first line doubles as a request target
      first = false;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    h.add(line.substr(0, colon), line.substr(colon + 1));
  }
  check_headers(h);
  check_target(request);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_with_beast(text);
  parse_raw_lines(text);
  return 0;
}
