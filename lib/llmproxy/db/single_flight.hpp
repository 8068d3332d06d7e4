#pragma once
/// Single-flight (SPEC §5.5 "Floods"): concurrent requests that need the same database answer share one query.
/// The first asker of a key leads (it runs the query and finishes the flight); the others wait for its result and
/// resume on their own executors. Header-only; used by the token service (token lookups) and ops (the health
/// check behind /ready and /health). Its waiting primitive (Suspended, suspend, resume) is also what the quota
/// coalescer (auth/detail/quota_coalescer.hpp) parks its requests with.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llmproxy::db {

/// A coroutine suspended until a database answer arrives: its completion handler and the executor it must resume
/// on. Move-only. Destroying it unresumed destroys the coroutine (only at shutdown).
template <class Signature>
struct Suspended {
  boost::asio::any_io_executor executor;
  boost::asio::any_completion_handler<Signature> handler;
};

/// Resumes `waiter` with `values` on its own executor: posted, never run inline (the caller may hold locks or be
/// on another thread, e.g. a DB executor thread). Any thread.
template <class Signature, class... Values>
void resume(Suspended<Signature> waiter, Values... values) {
  auto run = [handler = std::move(waiter.handler), ... values = std::move(values)]() mutable {
    std::move(handler)(std::move(values)...);
  };
  boost::asio::post(waiter.executor, std::move(run));
}

/// Suspends the calling coroutine without blocking its thread: `park(Suspended<Signature>)` runs at once (on the
/// caller's thread) and keeps the waiter, or resumes it; the coroutine then continues on its own executor with
/// what the waiter was resumed with. Bind `park` to a named local first (GCC 12: no lambda temporary inside a
/// co_await expression).
template <class Signature, class Park>
auto suspend(Park park) {
  auto initiate = [park = std::move(park)](auto handler) mutable {
    auto executor = boost::asio::get_associated_executor(handler);
    park(Suspended<Signature>{std::move(executor), std::move(handler)});
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, Signature>(std::move(initiate),
                                                                                       boost::asio::use_awaitable);
}

template <class Result>
class SingleFlight {
 public:
  /// A suspended waiter: its completion handler and the executor it must resume on.
  using Waiter = Suspended<void()>;

  /// One query in progress. Opaque to callers: they hold it between join() and finish() / wait().
  struct Flight {
    std::uint64_t generation = 0;  // what the leader's caller passed to join(); guarded by the table's mutex
    bool done = false;             // guarded by the table's mutex
    Result result{};               // guarded by the table's mutex; set once, when `done` becomes true
    std::vector<Waiter> waiters;   // guarded by the table's mutex
  };
  using FlightPtr = std::shared_ptr<Flight>;

  struct Joined {
    FlightPtr flight;
    bool leader = false;  // true: the caller must run the query and call finish() (also when it fails)
  };

  /// Joins the flight in progress for `key`, or starts one (the caller then leads). `generation` is the
  /// caller's view of invalidations (a counter bumped on every change that may make an answer obsolete): a
  /// flight that started under another generation is not joined, a new one replaces it in the table (its
  /// waiters still get its answer). Any thread.
  Joined join(std::string_view key, std::uint64_t generation) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(std::string(key));
    if (it != flights_.end() && it->second->generation == generation) return {it->second, false};
    auto flight = std::make_shared<Flight>();
    flight->generation = generation;
    if (it != flights_.end()) {
      it->second = flight;
    } else {
      flights_.emplace(std::string(key), flight);
    }
    return {std::move(flight), true};
  }

  /// The leader's answer: stored, the flight leaves the table, every waiter is resumed (posted to its own
  /// executor; never run inline here). Idempotent: a second call is ignored. Any thread.
  void finish(std::string_view key, const FlightPtr& flight, Result result) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(mutex_);
      if (flight->done) return;
      flight->done = true;
      flight->result = std::move(result);
      waiters.swap(flight->waiters);
      const auto it = flights_.find(std::string(key));
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
    }
    for (auto& waiter : waiters) db::resume(std::move(waiter));
  }

  /// Waits (without blocking the thread) until `flight` is finished and returns a copy of its result. The
  /// caller resumes on its own executor.
  boost::asio::awaitable<Result> wait(FlightPtr flight) {
    auto park = [this, flight](Waiter waiter) {
      std::unique_lock lock(mutex_);
      if (flight->done) {
        lock.unlock();
        db::resume(std::move(waiter));
        return;
      }
      flight->waiters.push_back(std::move(waiter));
    };
    co_await suspend<void()>(std::move(park));
    std::lock_guard lock(mutex_);
    co_return flight->result;
  }

  /// Flights in progress (tests).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  mutable std::mutex mutex_;  // guards the table and every flight's fields; held briefly, never across I/O
  std::unordered_map<std::string, FlightPtr> flights_;
};

/// Finishes a led flight with `fallback` if the leader never did (its coroutine was destroyed mid-query, or it
/// threw): waiters are never left hanging.
template <class Result>
class FlightLead {
 public:
  FlightLead(SingleFlight<Result>& table, std::string key, typename SingleFlight<Result>::FlightPtr flight,
             Result fallback)
      : table_(table), key_(std::move(key)), flight_(std::move(flight)), fallback_(std::move(fallback)) {}
  ~FlightLead() {
    try {
      table_.finish(key_, flight_, std::move(fallback_));
    } catch (...) {  // allocation failure while posting: nothing more can be done here
    }
  }
  FlightLead(const FlightLead&) = delete;
  FlightLead& operator=(const FlightLead&) = delete;

  void finish(Result result) { table_.finish(key_, flight_, std::move(result)); }

 private:
  SingleFlight<Result>& table_;
  std::string key_;
  typename SingleFlight<Result>::FlightPtr flight_;
  Result fallback_;
};

}  // namespace llmproxy::db
