#pragma once
/// A multi-threaded io_context, like the proxy's, for tests that drive Asio-based components (the Redis cache
/// backend, the rate limiter) from a test thread. Declare it before the component, so it is destroyed after it.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

namespace llmproxy::test {

class IoThreads {
 public:
  explicit IoThreads(int threads = 2) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io.run(); });
  }
  ~IoThreads() {
    work_.reset();
    // The component's shutdown lets the io_context run out of work; stop() only if something is left behind.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!io.stopped() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    io.stop();
    for (auto& t : threads_) t.join();
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  /// Runs `a` on a strand of its own; the future of its result.
  template <class T>
  std::future<T> start(boost::asio::awaitable<T> a) {
    return boost::asio::co_spawn(boost::asio::make_strand(io), std::move(a), boost::asio::use_future);
  }
  /// Runs `a` and waits for its result; throws when it takes longer than `limit`.
  template <class T>
  T await(boost::asio::awaitable<T> a, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto f = start(std::move(a));
    if (f.wait_for(limit) != std::future_status::ready) {
      throw std::runtime_error("the operation did not complete within the limit");
    }
    return f.get();
  }

  boost::asio::io_context io;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io.get_executor()};
  std::vector<std::thread> threads_;
};

}  // namespace llmproxy::test
