#pragma once
/// The blocking bridge: runs repository calls on a dedicated thread pool so I/O threads never block on the
/// database. The awaiting coroutine resumes on its own executor (strand), never on a pool thread.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace llmproxy::db {

class Executor {
 public:
  /// `threads` blocking worker threads (sized from DATABASE_POOL_SIZE).
  explicit Executor(std::size_t threads) : pool_(threads) {}
  ~Executor() { join(); }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Runs `fn()` on the pool; the caller's coroutine resumes on its own executor with the result, or with the
  /// exception `fn` threw. `fn` must own everything it touches (capture by value or by shared ownership).
  /// Callers: bind the lambda to a named local and pass it with std::move — GCC 12 destroys a lambda temporary
  /// written inside a co_await expression twice (double free when it captures strings).
  template <class Fn>
  auto run(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>> {
    using Result = std::invoke_result_t<Fn&>;
    auto task = [fn = std::move(fn)]() mutable -> boost::asio::awaitable<Result> {
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

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace llmproxy::db
