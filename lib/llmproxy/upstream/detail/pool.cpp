#include "llmproxy/upstream/detail/pool.hpp"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace llmproxy::upstream::detail {

namespace {
/// How long after its last answer a pooled connection is reused without peeking at it first.
constexpr auto kTrustIdleFor = std::chrono::seconds(1);
}  // namespace

Pool::Pool(std::size_t max_idle, Clock::duration idle_timeout) : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

std::unique_ptr<Connection> Pool::take(const net::execution_context* context) {
  for (;;) {
    std::unique_ptr<Connection> conn;
    std::vector<std::unique_ptr<Connection>> expired;  // closed after unlocking; allocates only when non-empty
    const auto now = Clock::now();
    {
      std::lock_guard lock(mu_);
      const auto cutoff = now - idle_timeout_;
      while (!idle_.empty() && idle_.front()->last_used < cutoff) {
        expired.push_back(std::move(idle_.front()));
        idle_.pop_front();
      }
      // Another I/O thread's connection would have every operation on it cross between threads (its socket is
      // registered with that thread's reactor): left for its own thread, which parked it most recently.
      const auto mine =
          std::find_if(idle_.rbegin(), idle_.rend(), [&](const auto& c) { return c->context() == context; });
      if (mine == idle_.rend()) return nullptr;
      conn = std::move(*mine);
      idle_.erase(std::next(mine).base());
    }
    // A connection returned moments ago is taken as is (a peek would be one more system call per request, and
    // an upstream rarely closes a connection within a second of answering on it; Client::send retries a pooled
    // connection that turns out dead before any answer). Longer idle ones are peeked.
    if (now - conn->last_used < kTrustIdleFor ? conn->tcp().is_open() : conn->usable()) return conn;
    // Dropped by the upstream while idle: close it (destructor) and look at the next one.
  }
}

void Pool::put(std::unique_ptr<Connection> conn) {
  std::unique_ptr<Connection> evicted;  // declared before the lock: closed after it is released
  conn->last_used = Clock::now();
  std::lock_guard lock(mu_);
  if (shut_ || max_idle_ == 0) {
    evicted = std::move(conn);
    return;
  }
  idle_.push_back(std::move(conn));
  if (idle_.size() > max_idle_) {
    evicted = std::move(idle_.front());
    idle_.pop_front();
  }
}

std::size_t Pool::size() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

void Pool::shut() {
  std::deque<std::unique_ptr<Connection>> closing;  // declared before the lock: closed after it is released
  std::lock_guard lock(mu_);
  shut_ = true;
  closing.swap(idle_);
}

}  // namespace llmproxy::upstream::detail
