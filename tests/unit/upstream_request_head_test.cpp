#include <catch2/catch.hpp>

#include "llmproxy/upstream/detail/request_head.hpp"

#include <string>

using llmproxy::upstream::Error;
using llmproxy::upstream::ErrorKind;
using llmproxy::upstream::Request;
using llmproxy::upstream::detail::write_request_head;

namespace {

Request make(std::string method, std::string target, std::string body = {}) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  return r;
}

}  // namespace

TEST_CASE("request head keeps the caller's fields in order and frames the body", "[upstream]") {
  auto r = make("POST", "/v1/chat/completions?x=1", R"({"a":1})");
  r.headers.add("Host", "api.example.com");
  r.headers.add("Authorization", "Bearer sk-up");
  r.headers.add("X-Dup", "a");
  r.headers.add("x-dup", "b");
  r.headers.add("Content-Length", "999");  // the body's real length wins
  r.headers.add("Transfer-Encoding", "chunked");
  std::string out = "left over from the last request";
  write_request_head(r, "ignored:1", out);
  CHECK(out ==
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
        "Host: api.example.com\r\n"
        "Authorization: Bearer sk-up\r\n"
        "X-Dup: a\r\n"
        "x-dup: b\r\n"
        "Content-Length: 7\r\n"
        "\r\n");
}

TEST_CASE("request head adds Host when missing and Content-Length only where a body belongs", "[upstream]") {
  std::string out;
  write_request_head(make("GET", "/v1/models"), "upstream:8080", out);
  CHECK(out == "GET /v1/models HTTP/1.1\r\nHost: upstream:8080\r\n\r\n");

  write_request_head(make("POST", "/v1/x"), "h", out);
  CHECK(out == "POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");

  write_request_head(make("DELETE", "/v1/files/1", "x"), "h", out);
  CHECK(out == "DELETE /v1/files/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n");
}

TEST_CASE("request head refuses anything that could split the message, without echoing it", "[upstream]") {
  std::string out;
  auto kind_of = [&](const Request& r) {
    try {
      write_request_head(r, "h", out);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("secret") == std::string::npos);
      return e.kind;
    }
    FAIL("no error");
    return ErrorKind::connect;
  };
  auto bad_value = make("GET", "/");
  bad_value.headers.add("Authorization", "Bearer secret\r\nX-Injected: 1");
  CHECK(kind_of(bad_value) == ErrorKind::protocol);
  auto bad_name = make("GET", "/");
  bad_name.headers.add("Bad Name", "secret");
  CHECK(kind_of(bad_name) == ErrorKind::protocol);
  CHECK(kind_of(make("GET", "/a b")) == ErrorKind::protocol);
  CHECK(kind_of(make("GET\r\n", "/")) == ErrorKind::protocol);
  CHECK(kind_of(make("GET", "")) == ErrorKind::protocol);
}

TEST_CASE("request head checks every byte of a long value, wherever a line break falls", "[upstream]") {
  // Values are checked 16 bytes at a time: a forbidden byte is found at any offset, and the bytes around it
  // that are allowed (other control characters, obs-text) are not taken for one.
  const std::string plain = "placeholder value for the line-break check, 52 bytes";
  for (std::size_t at = 0; at < plain.size(); ++at) {
    for (const char bad : {'\r', '\n', '\0'}) {
      std::string value = plain;
      value[at] = bad;
      auto r = make("GET", "/");
      r.headers.add("Authorization", value);
      std::string out;
      INFO("byte " << static_cast<int>(bad) << " at " << at);
      CHECK_THROWS_AS(write_request_head(r, "h", out), Error);
    }
    for (const char fine : {'\t', '\x0b', '\x0c', '\x0e', '\x8d', '\xff'}) {
      std::string value = plain;
      value[at] = fine;
      auto r = make("GET", "/");
      r.headers.add("Authorization", value);
      std::string out;
      INFO("byte " << static_cast<int>(static_cast<unsigned char>(fine)) << " at " << at);
      REQUIRE_NOTHROW(write_request_head(r, "h", out));
      CHECK(out.find("Authorization: " + value + "\r\n") != std::string::npos);
    }
  }
}
