#pragma once
/// Test support: drives an io_context by hand until a condition holds (coroutines under test resume as their
/// handlers become ready, e.g. when a database pool thread hands a result back).
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <thread>

namespace llmproxy::testing {

/// Polls `done()`, running the ready handlers of `io` in between, until it holds or `timeout` passed.
/// Returns the last `done()`.
template <class Done>
bool poll_until(boost::asio::io_context& io, Done done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

}  // namespace llmproxy::testing
