#pragma once
/// One request/response exchange as a handler sees it. Created by the session on the connection's strand;
/// every method must be called from the handler's coroutine (which runs on that strand).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string_view>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::server {

class Exchange {
 public:
  virtual ~Exchange() = default;

  Request request;
  AccessInfo access;

  /// Sends a complete response (Content-Length framing). At most one response per exchange.
  virtual boost::asio::awaitable<void> respond(Response response) = 0;
  /// Starts a chunked response. Returns false if the client is gone.
  virtual boost::asio::awaitable<bool> begin_stream(int status, Headers headers) = 0;
  /// Sends one chunk immediately (no coalescing). Returns false if the client is gone.
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  /// Sends the last chunk. Returns false if the client is gone.
  virtual boost::asio::awaitable<bool> end_stream() = 0;
  /// True once respond() or begin_stream() was called.
  virtual bool responded() const = 0;
  /// The connection's strand.
  virtual boost::asio::any_io_executor executor() const = 0;
};

/// A request handler. It must produce a response (respond or a complete stream); if it returns without one,
/// the session answers 500. An exception it throws becomes a 500 if nothing was sent yet, and ends only
/// that connection.
using Handler = std::function<boost::asio::awaitable<void>(Exchange&)>;

}  // namespace llmproxy::server
