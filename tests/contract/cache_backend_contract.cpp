// The cache backend contract (lib/llmproxy/cache/cache.hpp Backend, SPEC §13), written once; run against every
// backend by cache_backend_test.cpp. Each section gets a new backend, driven on an io_context with two threads as
// the proxy's I/O threads drive it, and starts by purging everything it could see (a shared store such as Redis
// may hold keys of an earlier run).
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "contract/cache_backend_contract.hpp"
#include "llmproxy/cache/policy.hpp"

namespace llmproxy::contract {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const cache::Entry> make_entry(std::string body, std::int64_t ttl_ms) {
  auto e = std::make_shared<cache::Entry>();
  e->status = 200;
  e->headers.add("Content-Type", "application/json");
  e->headers.add("ETag", "\"v1\"");
  e->body = std::move(body);
  e->stored_at_ms = now_ms();
  e->expires_at_ms = e->stored_at_ms + ttl_ms;
  e->vary = {{"accept", "application/json"}, {"accept-encoding", ""}};
  return e;
}

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using cache::Entry;
using cache::LookupStatus;

/// A backend on an io_context running on two threads; the backend goes first, then the threads.
class Harness {
 public:
  explicit Harness(const CacheBackendUnderTest& under_test) : guard_(net::make_work_guard(io_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    backend_ = under_test.make(io_);
    const auto cleared = run(backend_->purge("*"));
    REQUIRE(cleared.has_value());
  }
  ~Harness() {
    backend_.reset();
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  cache::Backend& backend() { return *backend_; }
  net::io_context& io() { return io_; }

  /// Awaits `op` on the I/O threads and returns its result (bounded: a hung operation fails the test).
  template <class T>
  T run(net::awaitable<T> op) {
    auto result = net::co_spawn(io_, std::move(op), net::use_future);
    REQUIRE(result.wait_for(10s) == std::future_status::ready);
    return result.get();
  }

 private:
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
  std::unique_ptr<cache::Backend> backend_;
};


void check_same_entry(const Entry& got, const Entry& want) {
  CHECK(got.status == want.status);
  REQUIRE(got.headers.size() == want.headers.size());
  for (std::size_t i = 0; i < got.headers.size(); ++i) {
    CHECK(got.headers[i].name == want.headers[i].name);
    CHECK(got.headers[i].value == want.headers[i].value);
  }
  CHECK(got.body == want.body);
  CHECK(got.stored_at_ms == want.stored_at_ms);
  CHECK(got.expires_at_ms == want.expires_at_ms);
  CHECK(got.vary == want.vary);
  CHECK(got.forced == want.forced);
  CHECK(got.stream == want.stream);
}

const server::Headers kJson = [] {
  server::Headers h;
  h.add("Accept", "application/json");
  return h;
}();
const server::Headers kText = [] {
  server::Headers h;
  h.add("Accept", "text/plain");
  return h;
}();

}  // namespace

void check_cache_backend_contract(const CacheBackendUnderTest& under_test) {
  SECTION("a key never stored is a miss") {
    Harness h(under_test);
    const auto lookup = h.run(h.backend().get(cache::key("p1", "GET", "/v1/models", kJson, "")));
    CHECK(lookup.status == LookupStatus::miss);
    CHECK_FALSE(lookup.entry);
    CHECK(h.backend().healthy());
  }

  SECTION("a stored entry comes back equal, every field included") {
    Harness h(under_test);
    auto e = std::make_shared<Entry>(*make_entry(std::string("{\"a\":1}\0\xff", 9)));
    e->status = 404;
    e->vary = {{"accept", "application/json"}, {"x-model", ""}};
    e->forced = true;
    e->stream = true;
    const std::string k = cache::key("p1", "GET", "/v1/models", kJson, "");
    REQUIRE(h.run(h.backend().put(k, e)));
    const auto lookup = h.run(h.backend().get(k));
    REQUIRE(lookup.status == LookupStatus::hit);
    REQUIRE(lookup.entry);
    check_same_entry(*lookup.entry, *e);
    CHECK(h.run(h.backend().get(k)).status == LookupStatus::hit);  // reading does not consume it
  }

  SECTION("a put replaces what the key held") {
    Harness h(under_test);
    const std::string k = cache::key("p1", "GET", "/v1/models", kJson, "");
    REQUIRE(h.run(h.backend().put(k, make_entry("old"))));
    REQUIRE(h.run(h.backend().put(k, make_entry("new"))));
    const auto lookup = h.run(h.backend().get(k));
    REQUIRE(lookup.status == LookupStatus::hit);
    CHECK(lookup.entry->body == "new");
    CHECK(h.run(h.backend().purge("*")) == 1u);  // one key, not two
  }

  SECTION("an expired entry is never answered") {
    Harness h(under_test);
    // Already expired when stored: whatever put() answers, get() misses.
    const std::string gone = cache::key("p1", "GET", "/v1/gone", kJson, "");
    auto expired = std::make_shared<Entry>(*make_entry("x"));
    expired->expires_at_ms = now_ms() - 1'000;
    (void)h.run(h.backend().put(gone, expired));
    CHECK(h.run(h.backend().get(gone)).status == LookupStatus::miss);

    // Expiring shortly: answered now, not once its time passed (polled, at most ~1.5 s in all).
    const std::string soon = cache::key("p1", "GET", "/v1/soon", kJson, "");
    const auto entry = make_entry("soon", 400);
    REQUIRE(h.run(h.backend().put(soon, entry)));
    CHECK(h.run(h.backend().get(soon)).status == LookupStatus::hit);
    LookupStatus last = LookupStatus::hit;
    const auto deadline = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto lookup = h.run(h.backend().get(soon));
      last = lookup.status;
      // Never an answer past its expiry (10 ms of slack for the backend's own clock reading).
      if (lookup.status == LookupStatus::hit) CHECK(now_ms() <= entry->expires_at_ms + 10);
      if (last == LookupStatus::miss) break;
      std::this_thread::sleep_for(50ms);
    }
    CHECK(last == LookupStatus::miss);
  }

  SECTION("purge by resource, by project and everything, with the counts") {
    Harness h(under_test);
    const std::string models_json = cache::key("p1", "GET", "/v1/models?a=1&b=2", kJson, "");
    const std::string models_text = cache::key("p1", "GET", "/v1/models?b=2&a=1", kText, "");
    const std::string models_head = cache::key("p1", "HEAD", "/v1/models?a=1&b=2", kJson, "");
    const std::string other_path = cache::key("p1", "GET", "/v1/models/m1", kJson, "");
    const std::string p2_models = cache::key("p2", "GET", "/v1/models?a=1&b=2", kJson, "");
    const std::string p3_models = cache::key("p3", "GET", "/v1/models?a=1&b=2", kJson, "");
    for (const auto& k : {models_json, models_text, models_head, other_path, p2_models, p3_models}) {
      REQUIRE(h.run(h.backend().put(k, make_entry(k))));
    }
    auto hit = [&](const std::string& k) { return h.run(h.backend().get(k)).status == LookupStatus::hit; };

    // One project's resource: both variants, not HEAD, not another path, not another project.
    CHECK(h.run(h.backend().purge(cache::resource_pattern("p1", "GET", "/v1/models?a=1&b=2"))) == 2u);
    CHECK_FALSE(hit(models_json));
    CHECK_FALSE(hit(models_text));
    CHECK(hit(models_head));
    CHECK(hit(other_path));
    CHECK(hit(p2_models));
    // Nothing left to match: 0, not a failure.
    CHECK(h.run(h.backend().purge(cache::resource_pattern("p1", "GET", "/v1/models?a=1&b=2"))) == 0u);

    // A resource across projects.
    CHECK(h.run(h.backend().purge(cache::resource_pattern("", "GET", "/v1/models?a=1&b=2"))) == 2u);
    CHECK_FALSE(hit(p2_models));
    CHECK_FALSE(hit(p3_models));

    // One project: what remains of p1.
    CHECK(h.run(h.backend().purge(cache::project_pattern("p1"))) == 2u);
    CHECK_FALSE(hit(models_head));
    CHECK_FALSE(hit(other_path));

    // Everything.
    REQUIRE(h.run(h.backend().put(models_json, make_entry("a"))));
    REQUIRE(h.run(h.backend().put(p2_models, make_entry("b"))));
    CHECK(h.run(h.backend().purge("*")) == 2u);
    CHECK_FALSE(hit(models_json));
    CHECK_FALSE(hit(p2_models));
    CHECK(h.run(h.backend().purge("*")) == 0u);
  }

  SECTION("the same request in two projects is stored twice, independently") {
    Harness h(under_test);
    const std::string body = R"({"model":"m","messages":[]})";
    const std::string k1 = cache::key("p1", "POST", "/v1/chat/completions", kJson, body);
    const std::string k2 = cache::key("p2", "POST", "/v1/chat/completions", kJson, body);
    REQUIRE(k1 != k2);
    REQUIRE(h.run(h.backend().put(k1, make_entry("answer for p1"))));
    CHECK(h.run(h.backend().get(k2)).status == LookupStatus::miss);  // p1's answer is not p2's
    REQUIRE(h.run(h.backend().put(k2, make_entry("answer for p2"))));
    CHECK(h.run(h.backend().get(k1)).entry->body == "answer for p1");
    CHECK(h.run(h.backend().get(k2)).entry->body == "answer for p2");
    CHECK(h.run(h.backend().purge(cache::project_pattern("p2"))) == 1u);
    CHECK(h.run(h.backend().get(k1)).status == LookupStatus::hit);
    CHECK(h.run(h.backend().get(k2)).status == LookupStatus::miss);
  }

  SECTION("a body above the object limit is refused and not stored") {
    Harness h(under_test);
    const std::string k = cache::key("p1", "GET", "/v1/big", kJson, "");
    CHECK_FALSE(h.run(h.backend().put(k, make_entry(std::string(kCacheMaxObjectBytes + 1, 'x')))));
    CHECK(h.run(h.backend().get(k)).status == LookupStatus::miss);
    CHECK(h.run(h.backend().put(k, make_entry(std::string(kCacheMaxObjectBytes, 'x')))));  // the limit itself
    CHECK(h.run(h.backend().get(k)).entry->body.size() == kCacheMaxObjectBytes);
    CHECK(h.backend().healthy());
  }

  SECTION("concurrent gets and puts from two I/O threads stay consistent") {
    Harness h(under_test);
    constexpr int kKeys = 16;
    constexpr int kOps = 400;
    std::vector<std::string> keys;
    for (int i = 0; i < kKeys; ++i) keys.push_back(cache::key("p1", "GET", "/v1/k/" + std::to_string(i), kJson, ""));
    // Every value stored under key i is body(i): a hit with anything else is a torn or crossed entry.
    auto body = [](int i) { return "body-" + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 100, 'z'); };

    std::atomic<int> done{0};
    std::atomic<int> wrong{0};
    std::atomic<int> refused{0};
    std::atomic<int> errors{0};
    std::promise<void> all_done;
    for (int n = 0; n < kOps; ++n) {
      auto op = [&, n]() -> net::awaitable<void> {
        const int i = n % kKeys;
        if (n % 3 == 0) {
          const bool stored = co_await h.backend().put(keys[static_cast<std::size_t>(i)], make_entry(body(i)));
          if (!stored) ++refused;
        } else {
          const auto lookup = co_await h.backend().get(keys[static_cast<std::size_t>(i)]);
          if (lookup.status == LookupStatus::error) ++errors;
          if (lookup.status == LookupStatus::hit && (!lookup.entry || lookup.entry->body != body(i))) ++wrong;
        }
        if (++done == kOps) all_done.set_value();
      };
      net::co_spawn(h.io(), op, net::detached);
    }
    REQUIRE(all_done.get_future().wait_for(20s) == std::future_status::ready);
    CHECK(wrong == 0);
    CHECK(refused == 0);
    CHECK(errors == 0);
    for (int i = 0; i < kKeys; ++i) {
      const auto lookup = h.run(h.backend().get(keys[static_cast<std::size_t>(i)]));
      REQUIRE(lookup.status == LookupStatus::hit);
      CHECK(lookup.entry->body == body(i));
    }
  }
}

}  // namespace llmproxy::contract
