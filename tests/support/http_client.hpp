#pragma once
/// A small blocking HTTP/1.1 client for integration tests (Beast inside, kept out of this header).
/// Every call blocks the calling thread, bounded by a timeout; errors (refused, reset, timeout, bad response)
/// throw HttpError. An object is used from one thread at a time.
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmproxy::test {

/// Orders header names ignoring ASCII case, so `headers.at("content-type")` finds `Content-Type`.
struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept;
};

/// Response headers by name; repeated fields are joined with ", " (as RFC 9110 allows for lists).
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

/// Request headers in the order given; a name may repeat. `Host` and `Content-Length` are filled in unless
/// given here (a given value replaces the computed one, so tests can send deliberately wrong ones).
using RequestHeaders = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::chrono::milliseconds kDefaultHttpTimeout = std::chrono::seconds(30);

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;

  /// The header's value, or "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const { return headers.find(name) != headers.end(); }
};

/// One persistent HTTP/1.1 connection: requests are sent one after another on the same socket.
class HttpConnection {
 public:
  /// Connects to host:port. Throws HttpError if that fails within `timeout`, which also bounds each request.
  HttpConnection(std::string host, int port, std::chrono::milliseconds timeout = kDefaultHttpTimeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  /// Sends one request and reads the whole response. Throws HttpError on any failure (including the server
  /// having closed the connection), after which the connection is closed. A response that does not keep the
  /// connection alive closes it after being read.
  HttpResponse request(std::string_view method, std::string_view target, std::string_view body = "",
                       const RequestHeaders& headers = {});

  /// True while the socket is open and the server has not closed its side (checked without blocking).
  bool is_open() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One request on a fresh connection to 127.0.0.1:port.
HttpResponse http_request(int port, std::string_view method, std::string_view target, std::string_view body = "",
                          const RequestHeaders& headers = {}, std::chrono::milliseconds timeout = kDefaultHttpTimeout);

/// A response read incrementally, for SSE and other streamed bodies.
/// The constructor sends the request and returns once the response headers are in; `next_chunk` then yields
/// each HTTP chunk of a chunked body as it completes (each piece as read, for a body that is not chunked).
class StreamingResponse {
 public:
  using Clock = std::chrono::steady_clock;

  /// Connects to 127.0.0.1:port, sends the request, reads the headers. Throws HttpError on failure or when the
  /// headers take longer than `header_timeout`.
  StreamingResponse(int port, std::string_view method, std::string_view target, std::string_view body = "",
                    const RequestHeaders& headers = {},
                    std::chrono::milliseconds header_timeout = kDefaultHttpTimeout);
  ~StreamingResponse();
  StreamingResponse(const StreamingResponse&) = delete;
  StreamingResponse& operator=(const StreamingResponse&) = delete;

  int status() const;
  const Headers& headers() const;
  std::string header(std::string_view name) const;

  /// The next body chunk, waiting at most `timeout` for it. nullopt when the body is complete (`finished()`),
  /// the connection failed or was closed (`error()` says why), or on timeout (`timed_out()`; the stream stays
  /// usable and a later call continues where this one stopped).
  std::optional<std::string> next_chunk(std::chrono::milliseconds timeout);

  /// When the chunk last returned by next_chunk had fully arrived (steady clock).
  Clock::time_point last_chunk_time() const;

  /// Reads all remaining chunks until the body completes or `timeout` passes in total; returns them joined.
  std::string read_rest(std::chrono::milliseconds timeout);

  /// The body ended normally (final chunk, full Content-Length, or EOF for a body delimited by close).
  bool finished() const;
  /// The last next_chunk call gave up waiting.
  bool timed_out() const;
  /// Why the stream stopped early ("" if it did not).
  std::string error() const;

  /// Drops the connection (e.g. a client going away mid-stream).
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes `bytes` as-is to 127.0.0.1:port and returns everything read back until the server closes the
/// connection or `timeout` passes. Write failures (server closed early) are ignored; what was read is returned.
/// If `peer_closed` is given it is set to whether the server closed the connection (vs. the timeout).
std::string raw_exchange(int port, std::string_view bytes, std::chrono::milliseconds timeout,
                         bool* peer_closed = nullptr);

}  // namespace llmproxy::test
