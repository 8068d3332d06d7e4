#pragma once
/// The blocking bridge: runs repository calls on a dedicated thread pool so I/O threads never block on the
/// database. The awaiting coroutine resumes on its own executor (strand), never on a pool thread. The queue is
/// bounded: past max_pending() tasks queued or running, a call fails at once with db::Unavailable (HTTP 503)
/// instead of waiting behind work that a slow or unreachable database will not finish soon.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db {

class Executor {
 public:
  /// Default bound on tasks queued or running, per worker thread. A database call takes about a millisecond, so
  /// a full queue is ~64 ms of work when the database is healthy; when it is slow (each call waits up to
  /// DATABASE_CONNECT_TIMEOUT / DATABASE_STATEMENT_TIMEOUT) new callers get 503 at once instead of queueing.
  static constexpr std::size_t kPendingPerThread = 64;

  /// `threads` blocking worker threads (sized from DATABASE_POOL_SIZE); at most `max_pending` tasks queued or
  /// running (0: kPendingPerThread x threads).
  explicit Executor(std::size_t threads, std::size_t max_pending = 0)
      : max_pending_(max_pending != 0 ? max_pending : kPendingPerThread * (threads == 0 ? 1 : threads)),
        pool_(threads) {}
  ~Executor() { join(); }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Runs `fn()` on the pool; the caller's coroutine resumes on its own executor with the result, or with the
  /// exception `fn` threw. `fn` must own everything it touches (capture by value or by shared ownership).
  /// Throws db::Unavailable without running `fn` when max_pending() tasks are already queued or running.
  /// Any thread. Callers: bind the lambda to a named local and pass it with std::move — GCC 12 destroys a lambda
  /// temporary written inside a co_await expression twice (double free when it captures strings).
  template <class Fn>
  auto run(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>> {
    using Result = std::invoke_result_t<Fn&>;
    // The slot is released when the task is destroyed: after it ran, or unrun when the pool shuts down.
    Slot slot = acquire();
    auto task = [fn = std::move(fn), slot = std::move(slot)]() mutable -> boost::asio::awaitable<Result> {
      if constexpr (std::is_void_v<Result>) {
        fn();
        co_return;
      } else {
        co_return fn();
      }
    };
    if constexpr (std::is_void_v<Result>) {
      co_await boost::asio::co_spawn(pool_.get_executor(), std::move(task), boost::asio::use_awaitable);
    } else {
      co_return co_await boost::asio::co_spawn(pool_.get_executor(), std::move(task), boost::asio::use_awaitable);
    }
  }

  /// Waits for queued work to finish, then stops the threads. Call once at shutdown.
  void join() { pool_.join(); }

  std::size_t max_pending() const { return max_pending_; }
  /// Tasks queued or running now.
  std::size_t pending() const { return pending_.load(std::memory_order_relaxed); }
  /// Calls refused because the queue was full, since construction.
  std::uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  /// One unit of pending_, released once (move-only).
  class Slot {
   public:
    explicit Slot(std::atomic<std::size_t>* pending) : pending_(pending) {}
    Slot(Slot&& other) noexcept : pending_(std::exchange(other.pending_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (pending_ != nullptr) pending_->fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    std::atomic<std::size_t>* pending_;
  };

  Slot acquire() {
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= max_pending_) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      rejected_.fetch_add(1, std::memory_order_relaxed);
      throw Unavailable("database task queue is full");
    }
    return Slot(&pending_);
  }

  const std::size_t max_pending_;
  // Declared before the pool: tasks destroyed by the pool's destructor release their slot here.
  std::atomic<std::size_t> pending_{0};   // atomic: tasks queued or running
  std::atomic<std::uint64_t> rejected_{0};  // atomic counter
  boost::asio::thread_pool pool_;
};

}  // namespace llmproxy::db
