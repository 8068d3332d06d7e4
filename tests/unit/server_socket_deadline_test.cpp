// SocketDeadline: closes a socket once a deadline passes; arming is lazy, so these check what a connection
// depends on (closed when due, never before, not at all when disarmed), over a real loopback socket pair.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>

#include "io_poll.hpp"
#include "llmproxy/server/socket_deadline.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using llmproxy::server::SocketDeadline;
using llmproxy::testing::poll_until;
using Clock = std::chrono::steady_clock;

/// A connected loopback pair; `near` is the socket under a deadline, with one read pending on it.
struct SocketPair {
  net::io_context io;
  tcp::socket near{io};
  tcp::socket far{io};
  std::array<char, 16> buffer{};
  std::optional<boost::system::error_code> read_result;

  SocketPair() {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    far.connect(acceptor.local_endpoint());
    acceptor.accept(near);
  }

  void start_read() {
    near.async_read_some(net::buffer(buffer),
                         [this](boost::system::error_code ec, std::size_t) { read_result = ec; });
  }

  /// Runs the io_context for `duration` (the read may complete meanwhile).
  void run_for(std::chrono::milliseconds duration) {
    poll_until(io, [] { return false; }, duration);
  }

  /// The pending read is still waiting: the socket is open and the deadline has not expired.
  void check_waiting(const SocketDeadline& deadline) const {
    CHECK_FALSE(read_result.has_value());
    CHECK_FALSE(deadline.expired());
    CHECK(near.is_open());
  }

  /// Runs until the deadline ends the pending read, no earlier than `at_least` after `start`.
  void check_closed_by(const SocketDeadline& deadline, Clock::time_point start, std::chrono::milliseconds at_least) {
    REQUIRE(poll_until(io, [&] { return read_result.has_value(); }, 5s));
    CHECK(Clock::now() - start >= at_least);
    CHECK(*read_result == net::error::operation_aborted);
    CHECK(deadline.expired());
    CHECK_FALSE(near.is_open());
  }
};

/// A pair with a deadline on `near` and a read pending there.
struct ArmedPair : SocketPair {
  SocketDeadline deadline{io.get_executor(), near};
  ArmedPair() { start_read(); }
};

}  // namespace

TEST_CASE("SocketDeadline closes the socket once the deadline passes, ending the pending read", "[server][deadline]") {
  ArmedPair pair;
  auto& deadline = pair.deadline;
  const auto start = Clock::now();
  deadline.expires_after(100ms);
  pair.check_closed_by(deadline, start, 100ms);
}

TEST_CASE("SocketDeadline moved later before it passes keeps the socket open until the later one", "[server][deadline]") {
  ArmedPair pair;
  auto& deadline = pair.deadline;
  const auto start = Clock::now();
  deadline.expires_after(100ms);
  pair.run_for(50ms);
  deadline.expires_after(300ms);  // due at about 350 ms; the timer still waits for 100 ms and must wait again
  pair.run_for(200ms);
  pair.check_waiting(deadline);
  pair.check_closed_by(deadline, start, 350ms);
}

TEST_CASE("SocketDeadline brought earlier closes at the earlier time", "[server][deadline]") {
  ArmedPair pair;
  auto& deadline = pair.deadline;
  deadline.expires_after(60s);
  const auto start = Clock::now();
  deadline.expires_after(100ms);
  pair.check_closed_by(deadline, start, 100ms);
}

TEST_CASE("SocketDeadline expires_never keeps the socket open, and a later deadline still applies", "[server][deadline]") {
  ArmedPair pair;
  auto& deadline = pair.deadline;
  deadline.expires_after(50ms);
  deadline.expires_never();
  pair.run_for(200ms);  // the timer fires, finds no deadline and stops waiting
  pair.check_waiting(deadline);

  const auto start = Clock::now();
  deadline.expires_after(50ms);  // no wait pending: a new one starts
  pair.check_closed_by(deadline, start, 50ms);
}

TEST_CASE("SocketDeadline destroyed with a wait pending leaves the socket alone", "[server][deadline]") {
  SocketPair pair;
  auto deadline = std::make_unique<SocketDeadline>(pair.io.get_executor(), pair.near);
  pair.start_read();
  deadline->expires_after(50ms);
  deadline.reset();
  pair.run_for(200ms);
  CHECK_FALSE(pair.read_result.has_value());
  CHECK(pair.near.is_open());
  // The socket still works: bytes from the peer complete the read.
  net::write(pair.far, net::buffer("x", 1));
  REQUIRE(poll_until(pair.io, [&] { return pair.read_result.has_value(); }, 5s));
  CHECK_FALSE(*pair.read_result);
}
