#pragma once
/// HTTP/1.1 client for one upstream provider: a keep-alive connection pool, HTTPS through OpenSSL with
/// certificate and host-name verification against the system CA store and SNI, streaming response bodies.
/// Beast stays inside the .cpp files.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "llmproxy/server/http_types.hpp"

namespace boost::asio {
class io_context;
}

namespace llmproxy::upstream {

struct Endpoint {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::uint16_t port = 0;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds idle_timeout{90000};  // pooled connections idle longer than this are closed
  int max_idle_connections = 20;                   // pooled idle connections kept
  bool verify_tls = true;                          // false only for tests against self-signed servers
  std::string ca_file;                             // extra CA bundle (PEM); empty = system store only
  /// Threads running each io_context the client is used from (1 in the server, which runs one io_context per
  /// I/O thread). A connection is created on its user's io_context and pooled for users on that one only. With
  /// one thread, a pooled connection keeps its deadline's timer wait for the next request (no timer operation
  /// per request); with more, the next user may be on another thread, so the wait is cancelled when pooled.
  int io_threads = 1;
};

/// Why an upstream request failed. connect/tls/protocol/closed -> 502 upstream_error; timeout -> 504 upstream_timeout.
enum class ErrorKind { connect, tls, timeout, protocol, closed };

struct Error : std::runtime_error {
  Error(ErrorKind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  ErrorKind kind;
};

struct Request {
  std::string method;
  std::string target;  // origin-form: path + query
  server::Headers headers;  // sent as given (the caller sets Host, Authorization, removes hop-by-hop)
  std::string body;
};

/// A response whose headers have arrived; the body is read through it. Owns the connection: when destroyed
/// after the body was read completely on a keep-alive connection, the connection goes back to the pool;
/// otherwise it is closed (which is how a client disconnect cancels the upstream request).
/// Use from one coroutine at a time.
class Response {
 public:
  virtual ~Response() = default;
  int status = 0;
  server::Headers headers;  // as received (hop-by-hop included; the caller filters)
  /// True for chunked, close-delimited or text/event-stream bodies: relay piece by piece.
  bool streaming = false;

  /// The next piece of body as soon as it arrives (whatever has been received, no coalescing), or nullopt at
  /// the end of the body. Throws Error (timeout if nothing arrives within `idle_timeout`).
  virtual boost::asio::awaitable<std::optional<std::string>> read_some(std::chrono::milliseconds idle_timeout) = 0;
  /// The whole remaining body, bounded by `timeout` in total. Throws Error.
  virtual boost::asio::awaitable<std::string> read_all(std::chrono::milliseconds timeout) = 0;
  /// Closes the connection now (it will not be reused).
  virtual void abort() = 0;
  /// True when the rest of the body has already arrived, so read_all() completes without waiting for the
  /// upstream (a small answer usually comes in the same read as its headers).
  virtual bool body_received() const = 0;
  /// When body_received(): the rest of the body, read without suspending (what read_all() would return, with the
  /// same errors thrown). Otherwise nullopt, and nothing is read.
  virtual std::optional<std::string> read_received() = 0;
};

class Client {
 public:
  /// `io` runs every connection; the client may be used from any coroutine on it, concurrently.
  Client(boost::asio::io_context& io, Endpoint endpoint, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `request` and waits at most `header_timeout` for the response headers. A pooled connection that
  /// fails before any byte of the response arrives is retried once on a fresh connection (only then).
  /// Throws Error.
  boost::asio::awaitable<std::unique_ptr<Response>> send(const Request& request,
                                                         std::chrono::milliseconds header_timeout);

  /// Idle pooled connections now (for metrics/tests).
  std::size_t idle_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace llmproxy::upstream
