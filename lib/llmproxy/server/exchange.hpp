#pragma once
/// One request/response exchange as a handler sees it. Created by the session on the connection's strand;
/// every method must be called from the handler's coroutine (which runs on that strand).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <string_view>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::server {

class Exchange {
 public:
  virtual ~Exchange() = default;

  Request request;
  AccessInfo access;

  /// Sends a complete response (Content-Length framing). At most one response per exchange. For a HEAD
  /// request only the header goes out (Content-Length states the body's length).
  virtual boost::asio::awaitable<void> respond(Response response) = 0;
  /// Starts a response whose body follows in pieces (write_chunk): chunked for HTTP/1.1 clients, delimited by
  /// closing the connection for HTTP/1.0 clients. Returns false if no body is wanted (client gone, or HEAD).
  virtual boost::asio::awaitable<bool> begin_stream(int status, Headers headers) = 0;
  /// Starts a response of `content_length` body bytes that follow in pieces (write_chunk), so a large body is
  /// relayed without being held whole. If fewer bytes are written before end_stream the connection is closed.
  /// Returns false if no body is wanted (client gone, or HEAD).
  virtual boost::asio::awaitable<bool> begin_sized(int status, Headers headers, std::uint64_t content_length) = 0;
  /// Sends one piece of body immediately (no coalescing). Returns false if no more body is wanted.
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  /// Ends the body (the last chunk, when chunked). Returns false if the client is gone.
  virtual boost::asio::awaitable<bool> end_stream() = 0;
  /// Runs `work` while watching the client: if the client closes its side of the connection or it fails first,
  /// the operation `work` is awaiting is cancelled (terminal cancellation: `work` should then end soon, e.g. with
  /// operation_aborted) and the answer is false; else `work`'s own outcome (true, or its exception). Bytes the
  /// client sends meanwhile (a pipelined request) are kept for the next exchange; once more than the header
  /// limit is buffered the watch stops reading. Only while no response has been started.
  virtual boost::asio::awaitable<bool> unless_client_leaves(boost::asio::awaitable<void> work) = 0;
  /// True once respond(), begin_stream() or begin_sized() was called.
  virtual bool responded() const = 0;
  /// The status sent (0 before any); 499, nginx's "client closed request", when the client left before any.
  virtual int status() const = 0;
  /// The connection's strand.
  virtual boost::asio::any_io_executor executor() const = 0;
};

/// A request handler. It must produce a response (respond or a complete stream); if it returns without one,
/// the session answers 500. An exception it throws becomes a 500 if nothing was sent yet, and ends only
/// that connection.
using Handler = std::function<boost::asio::awaitable<void>(Exchange&)>;

}  // namespace llmproxy::server
