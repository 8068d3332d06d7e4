#include <catch2/catch.hpp>

#include "llmproxy/upstream/circuit_breaker.hpp"

#include <chrono>

using llmproxy::upstream::CircuitBreaker;
using State = CircuitBreaker::State;
using Outcome = CircuitBreaker::Outcome;
using namespace std::chrono_literals;

namespace {

/// A clock the test moves by hand.
struct FakeClock {
  CircuitBreaker::Clock::time_point now{std::chrono::hours(1000)};
  auto source() {
    return [this] { return now; };
  }
};

/// A breaker with threshold 3 and a 10 s cooldown, driven into the open state.
void trip(CircuitBreaker& breaker) {
  for (int i = 0; i < 3; ++i) {
    REQUIRE(breaker.allow());
    breaker.record(Outcome::failure);
  }
  REQUIRE(breaker.state() == State::open);
}

}  // namespace

TEST_CASE("breaker opens only after threshold consecutive failures", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(3, 10s, clock.source());
  CHECK(breaker.state() == State::closed);

  breaker.record(Outcome::failure);
  breaker.record(Outcome::failure);
  breaker.record(Outcome::success);  // a success in between resets the count
  breaker.record(Outcome::failure);
  breaker.record(Outcome::failure);
  CHECK(breaker.state() == State::closed);
  CHECK(breaker.allow());

  breaker.record(Outcome::failure);
  CHECK(breaker.state() == State::open);
  CHECK_FALSE(breaker.allow());
}

TEST_CASE("open breaker rejects until the cooldown, then lets exactly one probe through", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(3, 10s, clock.source());
  trip(breaker);

  clock.now += 9999ms;
  CHECK_FALSE(breaker.allow());
  CHECK(breaker.state() == State::open);

  clock.now += 1ms;
  CHECK(breaker.allow());  // the probe
  CHECK(breaker.state() == State::half_open);
  CHECK_FALSE(breaker.allow());
  CHECK_FALSE(breaker.allow());
  clock.now += 5s;
  CHECK_FALSE(breaker.allow());  // still waiting for the probe's outcome
}

TEST_CASE("a successful probe closes the breaker and resets the failure count", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(3, 10s, clock.source());
  trip(breaker);
  clock.now += 10s;
  REQUIRE(breaker.allow());
  breaker.record(Outcome::success);
  CHECK(breaker.state() == State::closed);
  CHECK(breaker.allow());
  CHECK(breaker.allow());

  // Counting starts from zero again: two failures do not re-open it.
  breaker.record(Outcome::failure);
  breaker.record(Outcome::failure);
  CHECK(breaker.state() == State::closed);
  breaker.record(Outcome::failure);
  CHECK(breaker.state() == State::open);
}

TEST_CASE("a failed probe re-opens the breaker for a full cooldown", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(3, 10s, clock.source());
  trip(breaker);
  clock.now += 15s;
  REQUIRE(breaker.allow());
  clock.now += 2s;  // the probe took a while
  breaker.record(Outcome::failure);
  CHECK(breaker.state() == State::open);
  CHECK_FALSE(breaker.allow());

  clock.now += 9s;
  CHECK_FALSE(breaker.allow());  // the cooldown counts from the probe's failure
  clock.now += 1s;
  CHECK(breaker.allow());
  CHECK(breaker.state() == State::half_open);
}

TEST_CASE("a probe that never reports does not shut the provider out forever", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(3, 10s, clock.source());
  trip(breaker);
  clock.now += 10s;
  REQUIRE(breaker.allow());
  clock.now += 10s;
  CHECK(breaker.allow());  // a second probe after another cooldown without an outcome
  CHECK_FALSE(breaker.allow());
  breaker.record(Outcome::success);
  CHECK(breaker.state() == State::closed);
}

TEST_CASE("late reports while open do not change the breaker", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker breaker(2, 10s, clock.source());
  breaker.record(Outcome::failure);
  breaker.record(Outcome::failure);
  REQUIRE(breaker.state() == State::open);
  breaker.record(Outcome::success);  // a request allowed before the breaker opened
  CHECK(breaker.state() == State::open);
  CHECK_FALSE(breaker.allow());
}

TEST_CASE("threshold 1 opens on the first failure, threshold 0 never opens", "[upstream][breaker]") {
  FakeClock clock;
  CircuitBreaker one(1, 1s, clock.source());
  one.record(Outcome::failure);
  CHECK(one.state() == State::open);

  CircuitBreaker off(0, 1s, clock.source());
  for (int i = 0; i < 100; ++i) off.record(Outcome::failure);
  CHECK(off.state() == State::closed);
  CHECK(off.allow());
}
