#pragma once
/// The HTTP/1.1 front end: listener, sessions (one strand + one coroutine per connection), keep-alive,
/// header-read timeout and body deadline, request size and framing rules, a connection cap, graceful shutdown.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/server/exchange.hpp"

namespace boost::asio {
class io_context;
}

namespace llmproxy::server {

struct ServerOptions {
  std::string host;  // empty = all interfaces
  std::uint16_t port = 8080;  // 0 = ephemeral
  int io_threads = 1;
  std::chrono::milliseconds header_read_timeout{30000};
  std::chrono::milliseconds body_read_timeout{60000};  // the whole body, from the end of the header (408)
  std::chrono::milliseconds write_timeout{300000};     // each response write (a complete body, or one piece)
  std::uint64_t max_request_size = 10485760;
  std::size_t max_header_size = 16 * 1024;  // larger header sections get 431
  std::size_t max_header_count = 100;       // more header fields get 431
  int max_connections = 10000;              // open client connections; a connection over the cap is closed at once
  std::chrono::milliseconds shutdown_timeout{30000};
};

/// Observers for metrics (called on I/O threads; must be cheap and thread-safe).
struct ServerHooks {
  std::function<void(int delta)> connection_opened_closed;
  /// A connection was closed at once because MAX_CONNECTIONS were open (called on the acceptor's strand).
  std::function<void()> connection_rejected;
  std::function<void(int delta)> request_in_flight;
  std::function<void(const Request&, const AccessInfo&, int status, double duration_ms, std::uint64_t bytes)>
      request_done;
  /// Shapes an error the session answers itself once a request head is known (413 for a declared body over
  /// MAX_REQUEST_SIZE, 408, refused framing, 500 after a handler failure): given the request target, its Origin
  /// and the error, returns the response to send instead of the default `{"error","code"}` one, or nothing.
  /// The proxy uses it for OpenAI's error envelope and CORS on `/v1`; the admin UI to add its security headers
  /// on `/admin`.
  std::function<std::optional<Response>(std::string_view target, std::string_view origin, int status,
                                        std::string_view code, std::string_view message)>
      shape_error;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler, ServerHooks hooks = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The io_context of the first I/O thread (for timers and other work of the application). Client connections
  /// are dealt out to it and to one io_context per further I/O thread, each run by its thread alone.
  boost::asio::io_context& io();

  /// Raises the open-files soft limit to the hard limit (warning when it cannot hold max_connections), binds
  /// and listens. Returns the bound port. Throws std::runtime_error naming the address on failure.
  std::uint16_t listen();

  /// Runs the io_contexts, one per I/O thread (the caller's thread runs io()), until stop completes.
  void run();

  /// Graceful stop, callable from any thread: stops accepting, closes idle keep-alive connections, lets
  /// in-flight exchanges finish (streams included) up to shutdown_timeout, then closes everything and makes
  /// run() return. `on_drained` (optional) runs on an I/O thread once connections are gone, before run() returns.
  void stop(std::function<void()> on_drained = {});

  /// Stops the io_context at once (second signal).
  void abort();

  /// Once run() has returned: destroys every handler still pending, among them the coroutine frames of
  /// exchanges the shutdown grace cut off (e.g. waiting on an upstream), so their destructors (which record
  /// usage) run now, while the services they use still exist, rather than when the server is destroyed. The
  /// server cannot run again; its objects may still be destroyed.
  void discard_pending();

 private:
  void stop_all();  // stops every io_context
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmproxy::server
