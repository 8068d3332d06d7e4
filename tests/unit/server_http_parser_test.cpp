// server/http_parser.hpp: framing, fields and refusals of the HTTP/1.1 parser, for responses (what upstreams
// send) and requests (what clients send), with the input fed whole and in every split a connection could deliver.
#include <boost/beast/http/error.hpp>
#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmproxy/server/http_types.hpp"
#include "llmproxy/server/http_parser.hpp"

namespace http = boost::beast::http;
using namespace std::string_literals;
using llmproxy::server::Headers;
using llmproxy::server::HttpParser;

namespace {

struct Parsed {
  boost::beast::error_code ec;  // the final error, if any
  bool header_done = false;
  bool done = false;
  int status = 0;
  std::string method, target;
  unsigned version = 0;
  HttpParser::Tally tally;
  bool keep_alive = false;
  bool chunked = false;
  bool need_eof = false;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
  std::string left;  // input not used (the start of the next message)
};

/// Feeds `wire` `step` bytes at a time the way the client does (unused bytes stay buffered in front of the next
/// read), then the end of input if `eof`. `head`: the answer is to a HEAD request.
Parsed parse(std::string_view wire, std::size_t step, bool eof = false, bool head = false,
             std::uint32_t header_limit = 64 * 1024, HttpParser::Kind kind = HttpParser::Kind::response,
             std::uint64_t body_limit = UINT64_MAX) {
  Parsed out;
  Headers headers;
  HttpParser parser(kind, headers);
  parser.header_limit(header_limit);
  parser.body_limit(body_limit);
  parser.skip(head);
  parser.sink(&out.body);
  std::string buffer;
  std::size_t fed = 0;
  for (;;) {
    bool progress = true;
    while (!buffer.empty() && progress && !parser.is_done()) {
      boost::beast::error_code ec;
      const std::size_t used = parser.put(buffer, ec);
      buffer.erase(0, used);
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
  if (!out.ec && !parser.is_done() && eof) parser.put_eof(out.ec);
  out.header_done = parser.is_header_done();
  out.done = parser.is_done();
  out.status = parser.status();
  out.method = parser.method();
  out.target = parser.target();
  out.version = parser.version();
  out.tally = parser.tally();
  out.keep_alive = parser.keep_alive();
  out.chunked = parser.chunked();
  out.need_eof = parser.need_eof();
  for (const auto& f : headers) out.fields.emplace_back(std::string(f.name), std::string(f.value));
  out.left = buffer + std::string(wire.substr(fed));
  return out;
}

/// The message parsed by `parse_in(step)` must give the same answer in every split from 1 byte to whole.
template <class ParseInPieces>
Parsed same_every_way(std::string_view wire, ParseInPieces parse_in) {
  const Parsed whole = parse_in(wire.size());
  for (std::size_t step = 1; step < wire.size(); ++step) {
    const Parsed split = parse_in(step);
    INFO("split into pieces of " << step << " bytes");
    REQUIRE(split.ec == whole.ec);
    REQUIRE(split.done == whole.done);
    REQUIRE(split.status == whole.status);
    REQUIRE(split.method == whole.method);
    REQUIRE(split.target == whole.target);
    REQUIRE(split.fields == whole.fields);
    REQUIRE(split.body == whole.body);
    REQUIRE(split.left == whole.left);
  }
  return whole;
}

/// A response in every split.
Parsed parse_every_way(std::string_view wire, bool eof = false, bool head = false) {
  return same_every_way(wire, [&](std::size_t step) { return parse(wire, step, eof, head); });
}


/// A request, fed `step` bytes at a time, with a body limit.
Parsed request(std::string_view wire, std::size_t step, std::uint64_t body_limit = UINT64_MAX) {
  return parse(wire, step, false, false, 64 * 1024, HttpParser::Kind::request, body_limit);
}

/// A request in every split.
Parsed request_every_way(std::string_view wire, std::uint64_t body_limit = UINT64_MAX) {
  return same_every_way(wire, [&](std::size_t step) { return request(wire, step, body_limit); });
}

boost::beast::error_code request_refusal(std::string_view wire) {
  const Parsed p = request(wire, wire.size());
  CHECK_FALSE(p.done);
  return p.ec;
}

boost::beast::error_code refusal(std::string_view wire) {
  const Parsed p = parse(wire, wire.size(), true);
  CHECK_FALSE(p.done);
  return p.ec;
}

}  // namespace

TEST_CASE("response parser reads a Content-Length answer and leaves the next one's bytes", "[upstream][parser]") {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Empty:\r\nX-Spaced: \t a b \t\r\n"
      "Content-Length: 11\r\n\r\n{\"ok\":true}HTTP/1.1 204";
  const Parsed p = parse_every_way(wire);
  CHECK_FALSE(p.ec);
  CHECK(p.done);
  CHECK(p.status == 200);
  CHECK(p.keep_alive);
  CHECK_FALSE(p.chunked);
  CHECK_FALSE(p.need_eof);
  const std::vector<std::pair<std::string, std::string>> fields{
      {"Content-Type", "application/json"}, {"X-Empty", ""}, {"X-Spaced", "a b"}, {"Content-Length", "11"}};
  CHECK(p.fields == fields);
  CHECK(p.body == "{\"ok\":true}");
  CHECK(p.left == "HTTP/1.1 204");
}

TEST_CASE("response parser de-chunks a body with extensions and drops its trailers", "[upstream][parser]") {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;name=value\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nnext";
  const Parsed p = parse_every_way(wire);
  CHECK_FALSE(p.ec);
  CHECK(p.done);
  CHECK(p.chunked);
  CHECK(p.keep_alive);
  CHECK(p.body == "hello 0123456789");
  CHECK(p.fields.size() == 1);  // the trailer is not a header field
  CHECK(p.left == "next");
}

TEST_CASE("response parser reads to the end of input when nothing frames the body", "[upstream][parser]") {
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it\r\n\r\nstill body";
  const Parsed open = parse(wire, 7, false);
  CHECK_FALSE(open.done);
  CHECK(open.need_eof);
  CHECK_FALSE(open.keep_alive);
  const Parsed p = parse_every_way(wire, true);
  CHECK_FALSE(p.ec);
  CHECK(p.done);
  CHECK(p.body == "all of it\r\n\r\nstill body");
  // A transfer coding other than chunked last: also until the close.
  const Parsed gz = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 100, true);
  CHECK(gz.done);
  CHECK(gz.need_eof);
  CHECK(gz.body == "xyz");
}

TEST_CASE("response parser gives no body to HEAD answers and to 1xx, 204 and 304", "[upstream][parser]") {
  const Parsed head = parse_every_way("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1", false, true);
  CHECK(head.done);
  CHECK(head.keep_alive);
  CHECK(head.body.empty());
  CHECK(head.left == "HTTP/1.1");
  for (const char* status : {"100 Continue", "103 Early Hints", "204 No Content", "304 Not Modified"}) {
    INFO(status);
    const Parsed p = parse_every_way(std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 5\r\n\r\nnext");
    CHECK(p.done);
    CHECK(p.body.empty());
    CHECK(p.left == "next");
  }
  const Parsed upgrade = parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 100);
  CHECK(upgrade.done);
  CHECK_FALSE(upgrade.keep_alive);  // no more HTTP on that connection
}

TEST_CASE("response parser decides keep-alive from the version and Connection", "[upstream][parser]") {
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 100).keep_alive);
  CHECK_FALSE(parse("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", 100).keep_alive);
  CHECK_FALSE(parse("HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n", 100).keep_alive);
  CHECK_FALSE(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 100).keep_alive);
  CHECK(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 100).keep_alive);
  const Parsed no_reason = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 100);
  CHECK(no_reason.done);
  CHECK(no_reason.status == 200);
  CHECK(parse("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 100).status == 404);
  // obs-text (bytes from 0x80) in a reason or a value is taken as it is.
  const Parsed latin = parse("HTTP/1.1 200 D\xe9j\xe0 vu\r\nX-Name: Ren\xe9" "e\r\nContent-Length: 0\r\n\r\n", 100);
  CHECK(latin.done);
  CHECK(latin.fields.front().second == "Ren\xe9" "e");
}

TEST_CASE("response parser accepts a repeated Content-Length only with the same value", "[upstream][parser]") {
  const Parsed same = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab", 100);
  CHECK(same.done);
  CHECK(same.body == "ab");
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc") ==
        http::error::bad_content_length);
}

TEST_CASE("response parser refuses what could desynchronise the connection", "[upstream][parser]") {
  const std::string ok = "HTTP/1.1 200 OK\r\n";
  CHECK(refusal("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n") == http::error::bad_reason);
  CHECK(refusal(ok + "A: b\rc\r\nContent-Length: 0\r\n\r\n") == http::error::bad_line_ending);
  CHECK(refusal(ok + "A: b\r\n folded\r\nContent-Length: 0\r\n\r\n") == http::error::bad_field);
  CHECK(refusal(ok + "A : b\r\nContent-Length: 0\r\n\r\n") == http::error::bad_field);
  CHECK(refusal(ok + ": b\r\nContent-Length: 0\r\n\r\n") == http::error::bad_field);
  CHECK(refusal(ok + "no colon\r\nContent-Length: 0\r\n\r\n") == http::error::bad_field);
  CHECK(refusal(ok + "A: b\x01" "c\r\nContent-Length: 0\r\n\r\n") == http::error::bad_value);
  CHECK(refusal(ok + "A: b\0c\r\nContent-Length: 0\r\n\r\n"s) == http::error::bad_value);
  CHECK(refusal(ok + "A: b\x7f" "c\r\nContent-Length: 0\r\n\r\n") == http::error::bad_value);
  CHECK(refusal(ok + "A: b\nc\r\nContent-Length: 0\r\n\r\n") == http::error::bad_value);
  CHECK(refusal(ok + "Content-Length: 12abc\r\n\r\n") == http::error::bad_content_length);
  CHECK(refusal(ok + "Content-Length: +1\r\n\r\nx") == http::error::bad_content_length);
  CHECK(refusal(ok + "Content-Length: 1, 1\r\n\r\nx") == http::error::bad_content_length);
  CHECK(refusal(ok + "Content-Length: 99999999999999999999\r\n\r\n") == http::error::bad_content_length);
  CHECK(refusal(ok + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") ==
        http::error::bad_transfer_encoding);
  CHECK(refusal(ok + "Transfer-Encoding: chunked, gzip\r\n\r\n") == http::error::bad_transfer_encoding);
  CHECK(refusal(ok + "Transfer-Encoding: g;zip, chunked\r\n\r\n0\r\n\r\n") == http::error::bad_transfer_encoding);
  CHECK(refusal(ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        http::error::bad_transfer_encoding);
  CHECK(refusal("HTTP/2.0 200 OK\r\n\r\n") == http::error::bad_version);
  CHECK(refusal("HTTP/1.1  200 OK\r\n\r\n") == http::error::bad_status);
  CHECK(refusal("HTTP/1.1 2x0 OK\r\n\r\n") == http::error::bad_status);
  CHECK(refusal("HTTP/1.1 099 Low\r\n\r\n") == http::error::bad_status);
  CHECK(refusal("HTTP/1.1 2000 OK\r\n\r\n") == http::error::bad_status);
  const std::string chunked = ok + "Transfer-Encoding: chunked\r\n\r\n";
  CHECK(refusal(chunked + "g\r\nx\r\n0\r\n\r\n") == http::error::bad_chunk);
  CHECK(refusal(chunked + "00000000000000001\r\nx\r\n0\r\n\r\n") == http::error::bad_chunk);
  CHECK(refusal(chunked + "1 x\r\nx\r\n0\r\n\r\n") == http::error::bad_chunk);
  CHECK(refusal(chunked + "1\r\nxy\r\n0\r\n\r\n") == http::error::bad_chunk);
  CHECK(refusal(chunked + "1\r\nxAB0\r\n\r\n") == http::error::bad_chunk);  // no CRLF after the data
  CHECK(refusal(chunked + "1\r\nx\r\n0\r\nbad trailer\r\n\r\n") == http::error::bad_field);
}

TEST_CASE("response parser bounds the header and the chunk lines it waits for", "[upstream][parser]") {
  const std::string big_field = "X-Big: " + std::string(200, 'a') + "\r\n";
  const Parsed over = parse("HTTP/1.1 200 OK\r\n" + big_field + "Content-Length: 0\r\n\r\n", 16, false, false, 128);
  CHECK(over.ec == http::error::header_limit);
  // Still incomplete but already past the limit: refused before the end arrives.
  const Parsed endless = parse("HTTP/1.1 200 OK\r\n" + big_field, 16, false, false, 128);
  CHECK(endless.ec == http::error::header_limit);
  const Parsed fits = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5, false, false, 128);
  CHECK(fits.done);
  const Parsed long_ext =
      parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(5000, 'e'), 64, false);
  CHECK(long_ext.ec == http::error::bad_chunk);
}

TEST_CASE("response parser tells an answer cut short from one that never began", "[upstream][parser]") {
  CHECK(parse("", 1, true).ec == http::error::end_of_stream);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Le", 4, true).ec == http::error::partial_message);
  const Parsed cut = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 4, true);
  CHECK(cut.ec == http::error::partial_message);
  CHECK(cut.body == "abc");
  CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", 4, true).ec ==
        http::error::partial_message);
  const Parsed waiting = parse("HTTP/1.1 200 OK\r\nContent-Le", 4, false);
  CHECK_FALSE(waiting.ec);
  CHECK_FALSE(waiting.header_done);
  CHECK(waiting.left == "HTTP/1.1 200 OK\r\nContent-Le");
}

TEST_CASE("request parser reads the start line, fields and a Content-Length body", "[server][parser]") {
  const std::string wire =
      "POST /v1/chat/completions?x=%20y HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"model\":\"x\"}GET /next";
  const Parsed p = request_every_way(wire);
  CHECK_FALSE(p.ec);
  CHECK(p.done);
  CHECK(p.method == "POST");
  CHECK(p.target == "/v1/chat/completions?x=%20y");
  CHECK(p.version == 11);
  CHECK(p.keep_alive);
  CHECK(p.body == "{\"model\":\"x\"}");
  CHECK(p.left == "GET /next");
  CHECK(p.tally.fields == 3);
  CHECK(p.tally.hosts == 1);
  CHECK(p.tally.lengths == 1);
  CHECK(p.tally.length_at == 2);
  CHECK(p.tally.encodings == 0);
}

TEST_CASE("request parser gives a request without framing no body and leaves the next one", "[server][parser]") {
  const Parsed get = request_every_way("GET /live HTTP/1.1\r\nHost: proxy\r\n\r\nGET /ready HTTP/1.1\r\n");
  CHECK(get.done);
  CHECK(get.body.empty());
  CHECK(get.left == "GET /ready HTTP/1.1\r\n");
  const Parsed old = request("GET / HTTP/1.0\r\n\r\n", 100);
  CHECK(old.done);
  CHECK(old.version == 10);
  CHECK_FALSE(old.keep_alive);
  CHECK(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 100).keep_alive);
  CHECK_FALSE(request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 100).keep_alive);
  // Obs-text in a target is taken (decoded and judged later), as the browser-less clients send it.
  CHECK(request("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 100).target == "/caf\xc3\xa9");
}

TEST_CASE("request parser de-chunks a request body within the body limit", "[server][parser]") {
  const std::string head = "POST /v1/embeddings HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n";
  const Parsed p = request_every_way(head + "4\r\nabcd\r\n2;x=1\r\nef\r\n0\r\n\r\nnext", 6);
  CHECK_FALSE(p.ec);
  CHECK(p.done);
  CHECK(p.body == "abcdef");
  CHECK(p.left == "next");
  CHECK(p.tally.encodings == 1);
  CHECK(p.tally.encoding_at == 1);
  const Parsed over = request(head + "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n", 5, 6);
  CHECK(over.ec == http::error::body_limit);
  CHECK(over.body == "abcd");
}

TEST_CASE("request parser refuses a declared length above the body limit once the header is in", "[server][parser]") {
  const Parsed p = request("POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc", 7, 99);
  CHECK(p.ec == http::error::body_limit);
  CHECK(p.header_done);  // the head is there to answer about
  CHECK(p.method == "POST");
  CHECK(p.body.empty());
  const Parsed at_limit = request("POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 99\r\n\r\n", 100, 99);
  CHECK_FALSE(at_limit.ec);  // waiting for its body
  CHECK(at_limit.header_done);
  CHECK_FALSE(at_limit.done);
}

TEST_CASE("request parser tallies doubtful framing and reads no body for it", "[server][parser]") {
  // The session refuses these (check_head) before reading on: the parser must not take the next bytes as body.
  const std::string next = "GET /live HTTP/1.1\r\nHost: proxy\r\n\r\n";
  const std::vector<std::string> heads = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
  };
  for (const auto& head : heads) {
    INFO(head);
    const Parsed p = request(head + next, 1000);
    CHECK_FALSE(p.ec);
    CHECK(p.done);
    CHECK(p.body.empty());
    CHECK(p.left == next);
  }
  const Parsed zeros = request_every_way("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0000000000000000000000003\r\n\r\nabc");
  CHECK(zeros.done);
  CHECK(zeros.body == "abc");  // leading zeros are still a number
  const Parsed hosts = request("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 100);
  CHECK(hosts.tally.hosts == 2);
  const Parsed both = request(heads[0], 1000);
  CHECK(both.tally.lengths == 1);
  CHECK(both.tally.encodings == 1);
  CHECK(both.tally.length_at == 1);
  CHECK(both.tally.encoding_at == 2);
}

TEST_CASE("request parser refuses malformed request lines and fields", "[server][parser]") {
  CHECK(request_refusal("THIS IS NOT HTTP\r\n\r\n") == http::error::bad_version);
  CHECK(request_refusal(" / HTTP/1.1\r\n\r\n") == http::error::bad_method);
  CHECK(request_refusal("GE(T / HTTP/1.1\r\n\r\n") == http::error::bad_method);
  CHECK(request_refusal("GET\r\n\r\n") == http::error::bad_method);
  CHECK(request_refusal("GET  / HTTP/1.1\r\n\r\n") == http::error::bad_target);
  CHECK(request_refusal("GET /a\tb HTTP/1.1\r\n\r\n") == http::error::bad_target);
  CHECK(request_refusal("GET /a\x7f HTTP/1.1\r\n\r\n") == http::error::bad_target);
  CHECK(request_refusal("GET / HTTP/2.0\r\n\r\n") == http::error::bad_version);
  CHECK(request_refusal("GET / HTTP/1.1 \r\n\r\n") == http::error::bad_version);
  CHECK(request_refusal("GET / http/1.1\r\n\r\n") == http::error::bad_version);
  CHECK(request_refusal("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n") == http::error::bad_field);
  CHECK(request_refusal("GET / HTTP/1.1\r\nX-Odd: a\rb\r\n\r\n") == http::error::bad_line_ending);
  CHECK(request_refusal("GET / HTTP/1.1\r\nX-Odd: a\nb\r\n\r\n") == http::error::bad_value);
  CHECK(request_refusal("GET / HTTP/1.1\r\nX-Odd: a\0b\r\n\r\n"s) == http::error::bad_value);
  // One Content-Length the parser cannot frame by is refused, never taken as no body.
  CHECK(request_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n") ==
        http::error::bad_content_length);
  CHECK(request_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") ==
        http::error::bad_content_length);
  CHECK(request_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n") ==
        http::error::bad_content_length);
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'b') + "\r\n\r\n";
  CHECK(parse(big, 32, false, false, 256, HttpParser::Kind::request).ec == http::error::header_limit);
}
