// The DB task queue (db/executor.hpp): bounded, a call over the bound fails at once with db::Unavailable (503
// upstream of it) instead of queueing behind a slow database; slots come back when tasks finish.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <thread>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/executor.hpp"
#include "unit/io_poll.hpp"

namespace net = boost::asio;
namespace db = llmproxy::db;
using namespace std::chrono_literals;
using llmproxy::testing::poll_until;

TEST_CASE("a full DB task queue refuses the next call at once with db::Unavailable", "[db][executor]") {
  net::io_context io;
  db::Executor executor(2, /*max_pending=*/4);
  CHECK(executor.max_pending() == 4);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();

  int finished = 0;
  for (int i = 0; i < 4; ++i) {
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          auto blocked = [released] {
            released.wait();
            return 1;
          };
          finished += co_await executor.run(std::move(blocked));
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  REQUIRE(poll_until(io, [&] { return executor.pending() == 4; }));

  std::optional<std::string> refused;
  bool ran = false;
  const auto started = std::chrono::steady_clock::now();
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto work = [&ran] { ran = true; };
        try {
          co_await executor.run(std::move(work));
        } catch (const db::Unavailable& e) {
          refused = e.what();
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  REQUIRE(poll_until(io, [&] { return refused.has_value(); }));
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // not queued behind the blocked tasks
  CHECK_FALSE(ran);
  CHECK(executor.rejected() == 1);
  CHECK(executor.pending() == 4);

  release.set_value();
  REQUIRE(poll_until(io, [&] { return finished == 4 && executor.pending() == 0; }));

  // Slots came back: the queue accepts work again.
  int value = 0;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto work = [] { return 42; };
        value = co_await executor.run(std::move(work));
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  REQUIRE(poll_until(io, [&] { return value == 42; }));
  CHECK(executor.rejected() == 1);
}

TEST_CASE("the default DB queue bound is 64 tasks per pool thread", "[db][executor]") {
  db::Executor executor(3);
  CHECK(executor.max_pending() == 3 * db::Executor::kPendingPerThread);
  CHECK(db::Executor::kPendingPerThread == 64);
}
