#include "llmproxy/server/socket_deadline.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/system/error_code.hpp>

namespace llmproxy::server {

SocketDeadline::SocketDeadline(const boost::asio::any_io_executor& executor, boost::asio::ip::tcp::socket& socket)
    : socket_(socket), timer_(executor), expiry_executor_(executor), life_(std::make_shared<Life>()) {}

SocketDeadline::~SocketDeadline() { stop(); }

void SocketDeadline::expires_after(Clock::duration after) {
  deadline_ = Clock::now() + after;
  if (deadline_ < waiting_for_) wait_until(deadline_);
}

void SocketDeadline::stop() {
  deadline_ = Clock::time_point::max();
  if (waiting_for_ == Clock::time_point::max()) return;
  waiting_for_ = Clock::time_point::max();
  life_->current.store(0, std::memory_order_release);
  timer_.cancel();
}

void SocketDeadline::wait_until(Clock::time_point when) {
  waiting_for_ = when;
  const std::uint64_t id = ++next_wait_;
  life_->current.store(id, std::memory_order_release);
  timer_.expires_at(when);  // a pending wait completes with operation_aborted
  timer_.async_wait(boost::asio::bind_executor(expiry_executor_, [this, life = life_, id](boost::system::error_code ec) {
    // A wait superseded by a re-arm or stop() may have completed before it could be cancelled: only the
    // current one acts.
    if (ec || life->current.load(std::memory_order_acquire) != id) return;
    waiting_for_ = Clock::time_point::max();
    if (deadline_ == Clock::time_point::max()) return;  // no deadline now: the next one starts a wait
    if (Clock::now() < deadline_) {
      wait_until(deadline_);  // moved later meanwhile
      return;
    }
    expired_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }));
}

}  // namespace llmproxy::server
