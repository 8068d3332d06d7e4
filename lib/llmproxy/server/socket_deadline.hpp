#pragma once
/// A deadline that closes a socket, armed lazily: for connections that set a new deadline before every read and
/// write (keep-alive HTTP, pooled upstream connections), where beast::tcp_stream schedules and cancels a timer
/// around each operation (two trips through the reactor's locked timer queue, and a cancelled wait's
/// completion, per operation).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace llmproxy::server {

/// Setting a deadline is a store. The timer is only re-armed when the new deadline is earlier than the time it
/// already waits for; when it fires before the current deadline it waits again for that. So a connection costs
/// about one timer wait per deadline period (HEADER_READ_TIMEOUT, WRITE_TIMEOUT), however many requests it
/// carries. When a deadline passes while set, the socket is closed: pending operations complete with
/// operation_aborted and later ones fail; expired() tells a timeout from other failures.
///
/// Not thread-safe: every call, and the expiry, must run on one executor at a time: the one the expiry is
/// bound to (run_on). A socket handed to a user on another executor (a pooled connection, with several I/O
/// threads) is first stop()ped on the old one, then run_on() the new one.
class SocketDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  /// `executor` runs the timer and, until run_on(), the expiry. The socket must outlive this object.
  SocketDeadline(const boost::asio::any_io_executor& executor, boost::asio::ip::tcp::socket& socket);
  ~SocketDeadline();
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  /// The socket is closed if this deadline is still set `after` from now (replacing any earlier one).
  void expires_after(Clock::duration after);
  /// No deadline until the next expires_after(). A pending wait stays, to be reused by the next deadline.
  void expires_never() noexcept { deadline_ = Clock::time_point::max(); }
  /// No deadline, and no wait pending: a wait that already completed does nothing when it runs.
  void stop();
  /// Binds the expiry of waits started from now on to `executor` (call after stop(), or with none pending).
  void run_on(const boost::asio::any_io_executor& executor) { expiry_executor_ = executor; }
  /// True once a deadline passed and closed the socket.
  bool expired() const noexcept { return expired_; }

 private:
  void wait_until(Clock::time_point when);

  /// Shared with the pending wait. `current` names the wait that may act; the check reads only this, so a
  /// superseded wait completing on another thread never touches the deadline.
  struct Life {
    std::atomic<std::uint64_t> current{0};  // 0: none (the object is gone, or stopped)
  };

  boost::asio::ip::tcp::socket& socket_;
  boost::asio::steady_timer timer_;
  boost::asio::any_io_executor expiry_executor_;
  std::shared_ptr<Life> life_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point waiting_for_ = Clock::time_point::max();  // max: no wait pending
  std::uint64_t next_wait_ = 0;
  bool expired_ = false;
};

}  // namespace llmproxy::server
