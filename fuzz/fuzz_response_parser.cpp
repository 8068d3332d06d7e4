// fuzz_response_parser: lib/llmproxy/upstream/detail/response_parser.hpp, against Beast's parser.
//
// Input: byte 0 picks the size of the pieces the answer arrives in (1-64 bytes), byte 1 bit 0 says the answer
// is to a HEAD request; the rest is what the upstream sent, followed by the end of input.
// Properties:
//  - the outcome (error, fields, body, status, framing, the bytes left for the next answer) is the same whether
//    the input comes in pieces or whole;
//  - used bytes never exceed the input; a finished answer has its header done; errors are final;
//  - when both this parser and Beast's (basic_parser<false>, same header limit, eager) accept the answer, they
//    agree on the status, the header fields, the body and where the answer ends: the two cannot disagree on the
//    framing of a message both take (the desynchronisation that matters between a proxy and its upstream).
//    Which side refuses more is not a property (ours refuses some things Beast takes, see the header).
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
#include "llmproxy/upstream/detail/response_parser.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint32_t kHeaderLimit = 4096;

struct Outcome {
  beast::error_code ec;
  bool done = false;
  int status = 0;
  bool chunked = false;
  bool need_eof = false;
  Fields fields;
  std::string body;
  std::size_t used = 0;  // bytes of the input the answer took
};

Outcome ours(std::string_view wire, std::size_t step, bool head) {
  Outcome out;
  llmproxy::server::Headers headers;
  llmproxy::upstream::detail::ResponseParser parser(headers);
  parser.header_limit(kHeaderLimit);
  parser.skip(head);
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
  out.done = parser.is_done();
  if (out.done) FUZZ_CHECK(parser.is_header_done() && !out.ec);
  out.status = parser.status();
  out.chunked = parser.chunked();
  out.need_eof = parser.need_eof();
  for (const auto& f : headers) out.fields.emplace_back(std::string(f.name), std::string(f.value));
  return out;
}

/// Beast's parser, collecting the header fields (not trailers) and the body.
class BeastParser final : public http::basic_parser<false> {
 public:
  Fields fields;
  std::string body;
  int status = 0;

 private:
  bool header_done_ = false;
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int, beast::error_code&) override {}
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

Outcome beasts(std::string_view wire, bool head) {
  Outcome out;
  BeastParser parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(boost::none);
  parser.eager(true);
  if (head) parser.skip(true);
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
  const std::string_view wire(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = ours(wire, wire.size() == 0 ? 1 : wire.size(), head);
  const Outcome split = ours(wire, step, head);
  FUZZ_CHECK(split.ec == whole.ec);
  FUZZ_CHECK(split.done == whole.done);
  FUZZ_CHECK(split.status == whole.status);
  FUZZ_CHECK(split.fields == whole.fields);
  FUZZ_CHECK(split.body == whole.body);
  FUZZ_CHECK(split.used == whole.used);

  const Outcome reference = beasts(wire, head);
  if (whole.done && reference.done) {
    FUZZ_CHECK(whole.status == reference.status);
    FUZZ_CHECK(whole.fields == reference.fields);
    FUZZ_CHECK(whole.body == reference.body);
    FUZZ_CHECK(whole.used == reference.used);
  }
  return 0;
}
