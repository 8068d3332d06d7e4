#include "llmproxy/upstream/circuit_breaker.hpp"

#include <utility>

#include "llmproxy/metrics/metrics.hpp"

namespace llmproxy::upstream {

CircuitBreaker::CircuitBreaker(int threshold, std::chrono::milliseconds cooldown,
                               std::function<Clock::time_point()> now)
    : threshold_(threshold), cooldown_(cooldown), now_(std::move(now)) {}

bool CircuitBreaker::allow() {
  if (healthy_.load(std::memory_order_acquire)) return true;
  std::lock_guard lock(mu_);
  const Healthy update(*this);
  switch (state_) {
    case State::closed:
      return true;
    case State::open:
      if (now_() - opened_at_ < cooldown_) return false;
      state_ = State::half_open;
      probe_in_flight_ = true;
      opened_at_ = now_();  // from here on: when the probe was let through
      return true;
    case State::half_open:
      // A probe whose caller never reports (cancelled, crashed handler) must not keep the provider shut out
      // forever: after another cooldown without an outcome, the next caller becomes the probe.
      if (probe_in_flight_ && now_() - opened_at_ < cooldown_) return false;
      probe_in_flight_ = true;
      opened_at_ = now_();
      return true;
  }
  return false;
}

void CircuitBreaker::record(Outcome outcome) {
  const bool failure = outcome == Outcome::failure;
  if (!failure && healthy_.load(std::memory_order_acquire)) return;  // closed, nothing counted: nothing to change
  std::lock_guard lock(mu_);
  const Healthy update(*this);
  switch (state_) {
    case State::closed:
      if (!failure) {
        consecutive_failures_ = 0;
        return;
      }
      // threshold <= 0 disables the breaker.
      if (threshold_ > 0 && ++consecutive_failures_ >= threshold_) {
        state_ = State::open;
        opened_at_ = now_();
      }
      return;
    case State::open:
      // A request let through before the breaker opened reports late: it says nothing about the provider now
      // (the cooldown decides when to look again).
      return;
    case State::half_open:
      probe_in_flight_ = false;
      if (failure) {
        state_ = State::open;
        opened_at_ = now_();
      } else {
        state_ = State::closed;
        consecutive_failures_ = 0;
      }
      return;
  }
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

CircuitBreaker::Outcome outcome_of_status(int status) {
  return status == 502 || status == 503 || status == 504 ? CircuitBreaker::Outcome::failure
                                                          : CircuitBreaker::Outcome::success;
}

void register_metrics(metrics::Registry& registry, lifecycle::Published<const CircuitBreaker> breaker) {
  registry.add_gauge("llm_proxy_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
                     [breaker] {
                       const CircuitBreaker* b = breaker.get();
                       return b != nullptr ? static_cast<double>(b->state()) : 0.0;
                     });
}

}  // namespace llmproxy::upstream
