#pragma once
/// Idle keep-alive connections to one upstream. Thread-safe: one mutex guards the deque; sockets are checked
/// and closed outside it.
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "llmproxy/upstream/detail/connection.hpp"

namespace llmproxy::upstream::detail {

class Pool {
 public:
  using Clock = Connection::Clock;

  Pool(std::size_t max_idle, Clock::duration idle_timeout);

  /// The most recently used idle connection on `context` (Connection::context()) that is still usable, or null.
  /// Connections idle longer than the idle timeout, or found closed by the peer, are dropped on the way; the
  /// peer check (one peek) is made only for connections idle for a second or more.
  std::unique_ptr<Connection> take(const net::execution_context* context);
  /// Parks a connection whose last response was read completely. Drops the oldest idle one beyond the limit,
  /// and `conn` itself once the pool is shut.
  void put(std::unique_ptr<Connection> conn);
  std::size_t size() const;
  /// Closes every idle connection and refuses new ones (the client is going away).
  void shut();

 private:
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<Connection>> idle_;  // oldest first
  std::size_t max_idle_;
  Clock::duration idle_timeout_;
  bool shut_ = false;
};

}  // namespace llmproxy::upstream::detail
