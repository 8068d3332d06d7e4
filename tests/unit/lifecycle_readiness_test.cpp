// lifecycle/readiness: the boot phases and the one publication of the services.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "llmproxy/lifecycle/readiness.hpp"

namespace lc = llmproxy::lifecycle;

TEST_CASE("Readiness moves booting -> migrating -> ready -> stopping, forward only", "[lifecycle]") {
  lc::Readiness r;
  CHECK(r.phase() == lc::Phase::booting);
  CHECK_FALSE(r.published());
  r.begin_migrating();
  CHECK(r.phase() == lc::Phase::migrating);
  r.publish();
  CHECK(r.phase() == lc::Phase::ready);
  CHECK(r.published());
  r.begin_migrating();  // no way back
  CHECK(r.phase() == lc::Phase::ready);
  CHECK(r.begin_stopping());
  CHECK(r.phase() == lc::Phase::stopping);
  CHECK(r.stopping());
  CHECK(r.published());  // requests still draining may use the services
  CHECK_FALSE(r.begin_stopping());  // the second stop request is told so (forced exit)
  CHECK(lc::to_string(lc::Phase::migrating) == "migrating");
}

TEST_CASE("Readiness: a stop during boot stays a stop, and a late publish still publishes", "[lifecycle]") {
  lc::Readiness r;
  CHECK(r.begin_stopping());
  r.begin_migrating();
  CHECK(r.phase() == lc::Phase::stopping);
  r.publish();
  CHECK(r.phase() == lc::Phase::stopping);
  CHECK(r.published());
}

TEST_CASE("Published<T> is null until publish, then the object, seen across threads", "[lifecycle]") {
  lc::Readiness r;
  std::unique_ptr<int> owner;
  const lc::Published<const int> owned(r, owner);
  int plain = 0;
  const lc::Published<int> direct(r, plain);
  CHECK(owned.get() == nullptr);
  CHECK(direct.get() == nullptr);

  std::atomic<int> seen{-1};
  std::thread reader([&] {
    while (owned.get() == nullptr) std::this_thread::yield();
    seen = *owned.get();  // written before publish(), so visible here
  });
  owner = std::make_unique<int>(42);
  plain = 7;
  r.publish();
  reader.join();
  CHECK(seen == 42);
  REQUIRE(direct.get() != nullptr);
  CHECK(*direct.get() == 7);
}
