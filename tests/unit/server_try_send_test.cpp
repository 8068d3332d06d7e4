// server::try_send: one non-blocking sendmsg before any asynchronous write, over a real loopback TCP pair. What
// the callers depend on: everything is sent when the socket takes it, a partial count (and no error) when it
// does not, never a block, and a real error once the peer is gone or the socket is closed.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <string>

#include "llmproxy/server/try_send.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using llmproxy::server::try_send;

/// A connected loopback pair: `near` sends, `far` receives.
struct Pair {
  net::io_context io;
  tcp::socket near{io};
  tcp::socket far{io};

  explicit Pair(int buffer_bytes = 0) {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    if (buffer_bytes > 0) {
      // Small buffers on both sides (set before connecting, so the window is small from the start): a few
      // hundred kilobytes cannot all be taken at once.
      acceptor.set_option(net::socket_base::receive_buffer_size(buffer_bytes));
      near.open(tcp::v4());
      near.set_option(net::socket_base::send_buffer_size(buffer_bytes));
    }
    near.connect(acceptor.local_endpoint());
    acceptor.accept(far);
  }

  std::string receive(std::size_t n) {
    std::string out(n, '\0');
    net::read(far, net::buffer(out));
    return out;
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

}  // namespace

TEST_CASE("try_send: a head and a body the socket can take are sent whole, in order", "[server][try_send]") {
  Pair p;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  const std::string body = "hello";
  const std::array<net::const_buffer, 3> buffers{net::buffer(head), net::const_buffer(), net::buffer(body)};
  boost::system::error_code ec;
  CHECK(try_send(p.near.native_handle(), buffers, ec) == head.size() + body.size());
  CHECK_FALSE(ec);
  CHECK(p.receive(head.size() + body.size()) == head + body);
}

TEST_CASE("try_send: nothing to send is no error", "[server][try_send]") {
  Pair p;
  boost::system::error_code ec = net::error::eof;
  const std::array<net::const_buffer, 2> empty{net::const_buffer(), net::const_buffer()};
  CHECK(try_send(p.near.native_handle(), empty, ec) == 0);
  CHECK_FALSE(ec);
}

TEST_CASE("try_send: more than the socket takes is sent in part, without blocking or error", "[server][try_send]") {
  Pair p(4096);
  const std::string body = pattern(4 * 1024 * 1024);
  boost::system::error_code ec;
  const auto started = std::chrono::steady_clock::now();
  const std::size_t first = try_send(p.near.native_handle(), net::buffer(body), ec);
  CHECK_FALSE(ec);
  CHECK(first > 0);
  CHECK(first < body.size());
  // Full now: the next attempt sends nothing and says so without an error (the caller goes asynchronous).
  std::size_t sent = first;
  std::size_t more = 0;
  do {
    more = try_send(p.near.native_handle(), net::buffer(body.data() + sent, body.size() - sent), ec);
    sent += more;
    REQUIRE_FALSE(ec);
  } while (more > 0);
  CHECK(sent < body.size());
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));  // never blocked
  // What was sent arrives intact.
  CHECK(p.receive(sent) == body.substr(0, sent));
}

TEST_CASE("try_send: a peer that has gone, or a closed socket, is an error", "[server][try_send]") {
  SECTION("the peer closed with unread bytes (reset)") {
    Pair p;
    const std::string unread = "unread";
    boost::system::error_code ec;
    REQUIRE(try_send(p.near.native_handle(), net::buffer(unread), ec) == unread.size());
    p.far.close();  // unread data: the kernel answers with a reset
    const std::string more(1024, 'x');
    for (int i = 0; i < 100 && !ec; ++i) try_send(p.near.native_handle(), net::buffer(more), ec);
    CHECK((ec == net::error::broken_pipe || ec == net::error::connection_reset));
  }
  SECTION("a socket already closed") {
    boost::system::error_code ec;
    CHECK(try_send(-1, net::buffer(std::string("x")), ec) == 0);
    CHECK(ec.value() == EBADF);
  }
}
