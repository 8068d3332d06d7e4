#include "llmproxy/upstream/detail/connection.hpp"

#include <boost/beast/core/read_size.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace llmproxy::upstream::detail {

namespace {

/// Initial read buffer capacity: large enough that a typical JSON answer or a burst of SSE events arrives in
/// one read, small enough to keep per pooled connection.
constexpr std::size_t kReadBufferBytes = 16 * 1024;
/// Upper bound for one read; beast::read_size grows reads up to this as the buffer grows.
constexpr std::size_t kMaxReadBytes = 64 * 1024;

}  // namespace

Connection::Connection(const net::any_io_executor& ex)
    : stream_(std::in_place_type<net::ip::tcp::socket>, ex),
      deadline_(ex, tcp()),
      context_(&net::query(ex, net::execution::context)) {
  buffer_.reserve(kReadBufferBytes);
}

Connection::Connection(const net::any_io_executor& ex, ssl::context& ctx)
    : stream_(std::in_place_type<TlsStream>, ex, ctx),
      deadline_(ex, tcp()),
      context_(&net::query(ex, net::execution::context)) {
  buffer_.reserve(kReadBufferBytes);
}

net::ip::tcp::socket& Connection::tcp() noexcept {
  return std::visit([](auto& s) -> net::ip::tcp::socket& { return beast::get_lowest_layer(s); }, stream_);
}

net::mutable_buffer Connection::read_space() { return buffer_.prepare(beast::read_size(buffer_, kMaxReadBytes)); }

void Connection::close() noexcept {
  beast::error_code ignored;
  tcp().close(ignored);
}

bool Connection::usable() noexcept {
  auto& socket = tcp();
  if (!socket.is_open()) return false;
  char byte = 0;
  const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0 = orderly close, > 0 = bytes nobody asked for (a late error page, a TLS alert): either way unusable.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace llmproxy::upstream::detail
