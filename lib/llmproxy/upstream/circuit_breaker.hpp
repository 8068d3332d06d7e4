#pragma once
/// Per-provider circuit breaker (SPEC §5.4): opens after `threshold` consecutive failures (502/503/504 or
/// transport errors), answers "reject" while open, lets exactly one probe through after `cooldown` (half-open),
/// closes on the probe's success and re-opens on its failure. Thread-safe (one mutex, tiny critical sections).
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>

#include "llmproxy/lifecycle/readiness.hpp"

namespace llmproxy::metrics {
class Registry;
}

namespace llmproxy::upstream {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { closed = 0, open = 1, half_open = 2 };
  /// How an allowed request went: `failure` = upstream 502/503/504 or a transport error.
  enum class Outcome { success, failure };

  CircuitBreaker(int threshold, std::chrono::milliseconds cooldown,
                 std::function<Clock::time_point()> now = [] { return Clock::now(); });

  /// True if a request may go upstream now. In half-open state only one caller gets true until it reports.
  bool allow();
  /// Reports the outcome of an allowed request.
  void record(Outcome outcome);
  State state() const;

 private:
  /// Refreshes healthy_ when the locked section it is made in ends.
  struct Healthy {
    CircuitBreaker& b;
    explicit Healthy(CircuitBreaker& breaker) : b(breaker) {}
    ~Healthy() { b.healthy_.store(b.state_ == State::closed && b.consecutive_failures_ == 0, std::memory_order_release); }
    Healthy(const Healthy&) = delete;
    Healthy& operator=(const Healthy&) = delete;
  };

  mutable std::mutex mu_;
  // Closed with no failure counted, written under mu_: then allow() is true and a success changes nothing, so
  // both answer without the lock (every request calls both; a breaker that is shut or counting takes the lock).
  std::atomic<bool> healthy_{true};
  int threshold_;
  std::chrono::milliseconds cooldown_;
  std::function<Clock::time_point()> now_;
  State state_ = State::closed;
  int consecutive_failures_ = 0;
  Clock::time_point opened_at_{};
  bool probe_in_flight_ = false;
};

/// The outcome an upstream answer with HTTP `status` reports to the breaker: 502/503/504 are failures.
CircuitBreaker::Outcome outcome_of_status(int status);

/// Registers llm_proxy_circuit_breaker_state (0 closed, 1 open, 2 half-open); it reads 0 until `breaker` is
/// published.
void register_metrics(metrics::Registry& registry, lifecycle::Published<const CircuitBreaker> breaker);

}  // namespace llmproxy::upstream
