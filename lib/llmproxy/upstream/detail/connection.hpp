#pragma once
/// One upstream connection, plain TCP or TLS over TCP, with its read buffer and request scratch space.
/// Used by one coroutine at a time; while pooled, by nobody.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <tuple>
#include <variant>

#include "llmproxy/server/socket_deadline.hpp"

namespace llmproxy::upstream::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = net::ssl;

inline constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

class Connection {
 public:
  using Clock = std::chrono::steady_clock;
  using TlsStream = beast::ssl_stream<net::ip::tcp::socket>;

  /// A plain connection (not yet connected). `ex` should be the io_context's executor: completions are
  /// dispatched through the awaiting coroutine's own executor anyway.
  explicit Connection(const net::any_io_executor& ex);
  /// A TLS connection using `ctx` (which must outlive the connection).
  Connection(const net::any_io_executor& ex, ssl::context& ctx);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// The TCP layer: connect, options, close.
  net::ip::tcp::socket& tcp() noexcept;
  /// Bounds the operations on the socket, TLS ones included: closes it when the deadline passes. Reads and
  /// writes that fail because of it report beast::error::timeout.
  server::SocketDeadline& deadline() noexcept { return deadline_; }
  /// The TLS layer; only for a TLS connection.
  TlsStream& tls() noexcept { return std::get<TlsStream>(stream_); }
  bool is_tls() const noexcept { return std::holds_alternative<TlsStream>(stream_); }

  /// Writes all of `buffers` (a ConstBufferSequence).
  template <class Buffers>
  net::awaitable<std::tuple<beast::error_code, std::size_t>> write(const Buffers& buffers) {
    return std::visit([&](auto& s) { return net::async_write(s, buffers, kUseTuple); }, stream_);
  }
  /// `ec`, or beast::error::timeout when the failure came from the deadline closing the socket.
  beast::error_code timeout_or(const beast::error_code& ec) const noexcept {
    return ec && deadline_.expired() ? beast::error_code(beast::error::timeout) : ec;
  }
  /// Reads whatever is available into the read buffer's free space (at least one byte, or an error). The caller
  /// commits what was read (`buffer().commit(n)`) and maps the error with timeout_or(): the operation is returned
  /// as it is, with no coroutine frame of its own (one fewer per upstream read).
  net::awaitable<std::tuple<beast::error_code, std::size_t>> read_some() {
    const net::mutable_buffer space = read_space();
    return std::visit([space](auto& s) { return s.async_read_some(space, kUseTuple); }, stream_);
  }

  /// Closes the socket at once (no TLS close_notify: the point is to stop the upstream promptly).
  void close() noexcept;

  /// True if the socket is open and the peer has neither closed it nor sent anything unasked. One
  /// non-blocking peek; catches idle connections the upstream dropped, before a request is wasted on them.
  bool usable() noexcept;

  /// Bytes received but not parsed yet. Kept across requests so its capacity is reused.
  beast::flat_buffer& buffer() noexcept { return buffer_; }
  /// Scratch space for the serialized request head, reused across requests.
  std::string& head() noexcept { return head_; }

  Clock::time_point last_used{};

  /// The execution context whose reactor the socket is registered with (Pool hands a connection only to users
  /// on the same one).
  const net::execution_context* context() const noexcept { return context_; }

 private:
  /// Free space at the end of the read buffer for the next read.
  net::mutable_buffer read_space();

  std::variant<net::ip::tcp::socket, TlsStream> stream_;
  server::SocketDeadline deadline_;  // after stream_: refers to its socket
  beast::flat_buffer buffer_;
  std::string head_;
  const net::execution_context* context_;
};

}  // namespace llmproxy::upstream::detail
