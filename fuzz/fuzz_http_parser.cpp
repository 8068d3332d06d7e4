// fuzz_http_parser: lib/llmproxy/server/http_parser.hpp, against Beast's parser.
//
// Input: byte 0 picks the size of the pieces the message arrives in (1-64 bytes); byte 1: bit 0, a response
// answers a HEAD request; bit 1, the message is a request (what a client sends) rather than a response (what an
// upstream sends); bit 2, a request body limit of 16 bytes instead of none. The rest is the message, followed by
// the end of input.
// Properties:
//  - the outcome (error, fields, body, status or method and target, the bytes used) is the same whether the
//    input comes in pieces or whole;
//  - used bytes never exceed the input; a finished message has its header done;
//  - when both this parser and Beast's (basic_parser, same limits, eager) accept a message, they agree on the
//    status (method and target), the header fields, the body and where the message ends: the two cannot
//    disagree on the framing of a message both take (request smuggling, response splitting). For requests this
//    holds for the framing the session accepts (check_head: one Host at most, one Content-Length of digits only
//    or a single `chunked`, never both); the parser leaves refusing the rest to the session. Which side refuses more is not
//    a property (ours refuses some things Beast takes, see the header).
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "llmproxy/server/http_types.hpp"
#include "llmproxy/server/http_parser.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint32_t kHeaderLimit = 4096;
constexpr std::uint64_t kBodyLimit = 16;

using llmproxy::server::HttpParser;
using llmproxy::server::iequals;

struct Outcome {
  beast::error_code ec;
  bool done = false;
  int status = 0;
  std::string method, target;
  bool clean_framing = true;  // requests: what the session's check_head accepts
  bool chunked = false;
  bool need_eof = false;
  Fields fields;
  std::string body;
  std::size_t used = 0;  // bytes of the input the answer took
};

Outcome ours(std::string_view wire, std::size_t step, bool head, bool request, bool limited) {
  Outcome out;
  llmproxy::server::Headers headers;
  HttpParser parser(request ? HttpParser::Kind::request : HttpParser::Kind::response, headers);
  parser.header_limit(kHeaderLimit);
  if (limited) parser.body_limit(kBodyLimit);
  parser.skip(head && !request);
  parser.sink(&out.body);
  std::string buffer;
  std::size_t fed = 0;
  for (;;) {
    bool progress = true;
    while (!buffer.empty() && progress && !parser.is_done()) {
      beast::error_code ec;
      const std::size_t used = parser.put(buffer, ec);
      FUZZ_CHECK(used <= buffer.size());
      buffer.erase(0, used);
      out.used += used;
      if (ec && ec != http::error::need_more) {
        out.ec = ec;
        break;
      }
      progress = !ec && used > 0;
    }
    if (out.ec || parser.is_done() || fed == wire.size()) break;
    const std::size_t n = std::min(step, wire.size() - fed);
    buffer.append(wire.substr(fed, n));
    fed += n;
  }
  if (!out.ec && !parser.is_done()) {
    parser.put_eof(out.ec);
    FUZZ_CHECK(out.ec || parser.is_done());
  }
  out.done = parser.is_done() && !out.ec;
  if (out.done) FUZZ_CHECK(parser.is_header_done());
  out.status = parser.status();
  out.method = parser.method();
  out.target = parser.target();
  if (request) {
    const HttpParser::Tally& t = parser.tally();
    const bool chunked_only =
        t.encodings == 0 || (t.encodings == 1 && iequals(headers[t.encoding_at].value, "chunked"));
    const std::string_view length = t.lengths == 1 ? headers[t.length_at].value : std::string_view("0");
    const bool plain_length = !length.empty() && length.find_first_not_of("0123456789") == std::string_view::npos;
    out.clean_framing =
        t.hosts <= 1 && t.lengths <= 1 && plain_length && chunked_only && !(t.lengths > 0 && t.encodings > 0);
  }
  out.chunked = parser.chunked();
  out.need_eof = parser.need_eof();
  for (const auto& f : headers) out.fields.emplace_back(std::string(f.name), std::string(f.value));
  return out;
}

/// Beast's parser, collecting the start line, the header fields (not trailers) and the body.
template <bool IsRequest>
class BeastParser final : public http::basic_parser<IsRequest> {
 public:
  Fields fields;
  std::string body;
  int status = 0;
  std::string method, target;

 private:
  bool header_done_ = false;
  void on_request_impl(http::verb, beast::string_view m, beast::string_view t, int, beast::error_code&) override {
    method.assign(m.data(), m.size());
    target.assign(t.data(), t.size());
  }
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override { status = code; }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value, beast::error_code&) override {
    if (!header_done_) fields.emplace_back(std::string(name), std::string(value));
  }
  void on_header_impl(beast::error_code&) override { header_done_ = true; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view b, beast::error_code&) override {
    body.append(b.data(), b.size());
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view b, beast::error_code&) override {
    body.append(b.data(), b.size());
    return b.size();
  }
  void on_finish_impl(beast::error_code&) override {}
};

template <bool IsRequest>
Outcome beasts(std::string_view wire, bool head, bool limited) {
  Outcome out;
  BeastParser<IsRequest> parser;
  parser.header_limit(kHeaderLimit);
  if (limited) {
    parser.body_limit(kBodyLimit);
  } else {
    parser.body_limit(boost::none);
  }
  parser.eager(true);
  if (head && !IsRequest) parser.skip(true);
  std::size_t at = 0;
  while (at < wire.size() && !parser.is_done()) {
    beast::error_code ec;
    const std::size_t used = parser.put(boost::asio::const_buffer(wire.data() + at, wire.size() - at), ec);
    at += used;
    if (ec == http::error::need_more) break;
    if (ec) {
      out.ec = ec;
      return out;
    }
    if (used == 0) break;
  }
  if (!parser.is_done()) {
    beast::error_code ec;
    parser.put_eof(ec);
    out.ec = ec;
  }
  out.done = parser.is_done() && !out.ec;
  out.status = parser.status;
  out.method = std::move(parser.method);
  out.target = std::move(parser.target);
  out.fields = std::move(parser.fields);
  out.body = std::move(parser.body);
  out.used = at;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t step = 1 + data[0] % 64;
  const bool head = (data[1] & 1) != 0;
  const bool request = (data[1] & 2) != 0;
  const bool limited = (data[1] & 4) != 0;
  const std::string_view wire(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = ours(wire, wire.size() == 0 ? 1 : wire.size(), head, request, limited);
  const Outcome split = ours(wire, step, head, request, limited);
  FUZZ_CHECK(split.ec == whole.ec);
  FUZZ_CHECK(split.done == whole.done);
  FUZZ_CHECK(split.status == whole.status);
  FUZZ_CHECK(split.fields == whole.fields);
  FUZZ_CHECK(split.body == whole.body);
  FUZZ_CHECK(split.used == whole.used);
  FUZZ_CHECK(split.method == whole.method && split.target == whole.target);

  const Outcome reference = request ? beasts<true>(wire, head, limited) : beasts<false>(wire, head, limited);
  if (whole.done && reference.done && whole.clean_framing) {
    FUZZ_CHECK(whole.status == reference.status);
    FUZZ_CHECK(whole.method == reference.method && whole.target == reference.target);
    FUZZ_CHECK(whole.fields == reference.fields);
    FUZZ_CHECK(whole.body == reference.body);
    FUZZ_CHECK(whole.used == reference.used);
  }
  return 0;
}
