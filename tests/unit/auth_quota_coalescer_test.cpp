// Coalesced quota grants (SPEC §6.3, auth/detail/quota_coalescer.hpp): while a grant statement for a token is in
// flight, later requests for it wait and share the next statement; the first `granted` of them are accepted, the
// rest get the database's refusal; a failure fails the whole batch. Over the real SQLite driver, with the
// statement held in flight by the fault injector so that the batches are deterministic.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/auth/detail/quota_coalescer.hpp"
#include "llmproxy/db/executor.hpp"
#include "unit/auth_service_fixture.hpp"
#include "unit/io_poll.hpp"

namespace net = boost::asio;
namespace db = llmproxy::db;
using llmproxy::auth::detail::QuotaCoalescer;
using llmproxy::auth::detail::QuotaGrant;
using llmproxy::testing::AuthEnv;
using llmproxy::testing::poll_until;
using namespace std::chrono_literals;

namespace {

/// What each request got, by the order it was started in.
struct Answers {
  std::mutex mutex;
  std::vector<std::optional<QuotaGrant>> grants;
  std::atomic<int> done{0};
  std::atomic<int> wrong_executor{0};  // resumed elsewhere than on the strand it waited on

  explicit Answers(std::size_t n) : grants(n) {}

  int count(db::QuotaOutcome outcome) {
    std::lock_guard lock(mutex);
    return static_cast<int>(std::count_if(grants.begin(), grants.end(), [&](const auto& g) {
      return g && !g->failed && g->outcome == outcome;
    }));
  }
  int failed() {
    std::lock_guard lock(mutex);
    return static_cast<int>(std::count_if(grants.begin(), grants.end(), [](const auto& g) { return g && g->failed; }));
  }
};

/// Releases a held statement when a test ends early (a failed REQUIRE), so the executor can be joined.
struct ReleaseAtEnd {
  llmproxy::testing::FaultyDatabase& db;
  ~ReleaseAtEnd() { db.release_quota(); }
};

/// Request number `index` for one unit of `token_id`, on its own strand of `io`.
void start_request(net::io_context& io, QuotaCoalescer& coalescer, const std::string& token_id, Answers& answers,
                   std::size_t index) {
  auto strand = net::make_strand(io);
  net::co_spawn(
      strand,
      [&coalescer, &answers, token_id, index, strand]() -> net::awaitable<void> {
        QuotaGrant grant = co_await coalescer.acquire(token_id);
        if (!strand.running_in_this_thread()) ++answers.wrong_executor;
        {
          std::lock_guard lock(answers.mutex);
          answers.grants[index] = std::move(grant);
        }
        ++answers.done;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
}

/// Starts request 0 and waits until its statement is held in the database (the caller called hold_quota()), then
/// starts requests 1..n-1 and waits until all of them are parked for the next statement.
void park_behind_held_statement(AuthEnv& env, QuotaCoalescer& coalescer, const std::string& token_id,
                                Answers& answers, std::size_t n) {
  start_request(env.io, coalescer, token_id, answers, 0);
  REQUIRE(poll_until(env.io, [&] { return env.db.quota_calls_held() == 1; }));
  for (std::size_t i = 1; i < n; ++i) start_request(env.io, coalescer, token_id, answers, i);
  REQUIRE(poll_until(env.io, [&] { return coalescer.waiting() == n - 1; }));
}

}  // namespace

TEST_CASE("coalescer: requests arriving during a statement share the next one, the first of them get the last units",
          "[auth][quota]") {
  AuthEnv env;
  db::Token row;
  env.add_token(env.add_project(), 25, std::nullopt, &row);
  QuotaCoalescer coalescer(env.db, env.executor, [&env] { return env.clock; });
  constexpr std::size_t kRequests = 40;
  Answers answers(kRequests);

  env.db.hold_quota();
  ReleaseAtEnd release{env.db};
  park_behind_held_statement(env, coalescer, row.id, answers, kRequests);
  CHECK(answers.done == 0);
  env.db.release_quota();
  REQUIRE(poll_until(env.io, [&] { return answers.done == static_cast<int>(kRequests); }));

  // Two statements: the first for one unit, the second for the 39 that waited, of which 24 were left.
  const auto stats = coalescer.stats();
  CHECK(stats.statements == 2);
  CHECK(stats.requests == kRequests);
  CHECK(stats.granted == 25);
  CHECK(env.db.quota_calls == 2);
  CHECK(env.db.max_quota_units == 39);
  CHECK(answers.count(db::QuotaOutcome::accepted) == 25);
  CHECK(answers.count(db::QuotaOutcome::exhausted) == 15);
  CHECK(answers.failed() == 0);
  // In arrival order: the first 25 got a unit, every later one the refusal, with the row the statement left.
  for (std::size_t i = 0; i < kRequests; ++i) {
    INFO("request " << i);
    const auto& g = answers.grants[i];
    REQUIRE(g.has_value());
    CHECK(g->outcome == (i < 25 ? db::QuotaOutcome::accepted : db::QuotaOutcome::exhausted));
    REQUIRE(g->row != nullptr);
    CHECK(g->row->id == row.id);
  }
  CHECK(answers.wrong_executor == 0);
  CHECK(env.driver->get_token(row.id).request_count == 25);
  CHECK(coalescer.active_tokens() == 0);
}

TEST_CASE("coalescer: one statement asks for at most max_batch units, the rest wait for the next", "[auth][quota]") {
  AuthEnv env;
  db::Token row;
  env.add_token(env.add_project(), 100, std::nullopt, &row);
  QuotaCoalescer coalescer(env.db, env.executor, [&env] { return env.clock; }, 8);
  constexpr std::size_t kRequests = 31;
  Answers answers(kRequests);

  env.db.hold_quota();
  ReleaseAtEnd release{env.db};
  park_behind_held_statement(env, coalescer, row.id, answers, kRequests);
  env.db.release_quota();
  REQUIRE(poll_until(env.io, [&] { return answers.done == static_cast<int>(kRequests); }));

  CHECK(coalescer.stats().statements == 1 + 4);  // 1, then 30 waiters as 8 + 8 + 8 + 6
  CHECK(env.db.max_quota_units == 8);
  CHECK(answers.count(db::QuotaOutcome::accepted) == static_cast<int>(kRequests));
  CHECK(env.driver->get_token(row.id).request_count == static_cast<std::int64_t>(kRequests));
}

TEST_CASE("coalescer: a failed statement fails every request of its batch and counts nothing", "[auth][quota]") {
  AuthEnv env;
  db::Token row;
  env.add_token(env.add_project(), 100, std::nullopt, &row);
  QuotaCoalescer coalescer(env.db, env.executor, [&env] { return env.clock; });
  Answers answers(12);

  env.db.hold_quota();
  ReleaseAtEnd release{env.db};
  park_behind_held_statement(env, coalescer, row.id, answers, 11);
  env.db.down = true;  // both statements meet the outage
  env.db.release_quota();
  REQUIRE(poll_until(env.io, [&] { return answers.done == 11; }));
  CHECK(answers.failed() == 11);
  CHECK(coalescer.stats().statements == 2);
  {
    std::lock_guard lock(answers.mutex);
    REQUIRE(answers.grants[3]->error != nullptr);
    CHECK(answers.grants[3]->error->find("unavailable") != std::string::npos);
  }
  CHECK(coalescer.active_tokens() == 0);

  // The database is back: the next request starts a new statement.
  env.db.down = false;
  start_request(env.io, coalescer, row.id, answers, 11);
  REQUIRE(poll_until(env.io, [&] { return answers.done == 12; }));
  CHECK(answers.count(db::QuotaOutcome::accepted) == 1);
  CHECK(env.driver->get_token(row.id).request_count == 1);
}

TEST_CASE("coalescer: a full DB executor queue fails the batch at once, other tokens are not held up",
          "[auth][quota]") {
  AuthEnv env;
  const auto project = env.add_project();
  db::Token slow, other;
  env.add_token(project, 10, std::nullopt, &slow);
  env.add_token(project, 10, std::nullopt, &other);
  db::Executor executor(1, 1);  // one task queued or running at most
  QuotaCoalescer coalescer(env.db, executor, [&env] { return env.clock; });
  Answers answers(4);

  env.db.hold_quota();
  ReleaseAtEnd release{env.db};
  start_request(env.io, coalescer, slow.id, answers, 0);  // takes the executor's only slot, held
  REQUIRE(poll_until(env.io, [&] { return env.db.quota_calls_held() == 1; }));
  for (std::size_t i = 1; i < 4; ++i) start_request(env.io, coalescer, other.id, answers, i);
  REQUIRE(poll_until(env.io, [&] { return answers.done == 3; }));
  CHECK(answers.failed() == 3);
  CHECK(executor.rejected() >= 1);  // refused before it ran: 503 at once, not queued behind the slow one
  CHECK(env.driver->get_token(other.id).request_count == 0);

  env.db.release_quota();
  REQUIRE(poll_until(env.io, [&] { return answers.done == 4; }));
  CHECK(answers.grants[0]->outcome == db::QuotaOutcome::accepted);
  CHECK(env.driver->get_token(slow.id).request_count == 1);
}

TEST_CASE("coalescer: requests from two io_contexts share statements and each resumes on its own strand",
          "[auth][quota]") {
  AuthEnv env;
  db::Token row;
  env.add_token(env.add_project(), 30, std::nullopt, &row);
  QuotaCoalescer coalescer(env.db, env.executor, [&env] { return env.clock; });
  constexpr std::size_t kPerContext = 20;
  Answers answers(1 + 2 * kPerContext);

  net::io_context second;
  env.io.restart();
  auto work1 = net::make_work_guard(env.io);
  auto work2 = net::make_work_guard(second);
  std::thread t1([&] { env.io.run(); });
  std::thread t2([&] { second.run(); });
  const auto wait_for = [](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return done();
  };

  env.db.hold_quota();
  ReleaseAtEnd release{env.db};
  start_request(env.io, coalescer, row.id, answers, 0);
  REQUIRE(wait_for([&] { return env.db.quota_calls_held() == 1; }));
  for (std::size_t i = 0; i < kPerContext; ++i) {
    start_request(env.io, coalescer, row.id, answers, 1 + 2 * i);
    start_request(second, coalescer, row.id, answers, 2 + 2 * i);
  }
  REQUIRE(wait_for([&] { return coalescer.waiting() == 2 * kPerContext; }));
  env.db.release_quota();
  REQUIRE(wait_for([&] { return answers.done == static_cast<int>(1 + 2 * kPerContext); }));
  work1.reset();
  work2.reset();
  t1.join();
  t2.join();

  CHECK(answers.wrong_executor == 0);
  CHECK(coalescer.stats().statements == 2);
  CHECK(answers.count(db::QuotaOutcome::accepted) == 30);
  CHECK(answers.count(db::QuotaOutcome::exhausted) == 11);
  CHECK(env.driver->get_token(row.id).request_count == 30);
}

TEST_CASE("coalescer: statement loops that end and restart under two I/O threads never fail a request",
          "[auth][quota]") {
  // A token's loop ends when it finds nobody waiting; a request arriving on the other thread at that moment
  // starts the next loop. Nothing may be failed or lost in that hand-over. Many short sequential runs on two
  // io_contexts make it happen thousands of times. (The race this guards against, the ending loop failing the
  // new loop's requests with 503 "abandoned", was found by bench/run.sh's IO_THREADS=2 quota row at about 4
  // in 120,000 requests; its window is too narrow for this test to hit reliably, so it is a stress test of the
  // hand-over, not a reproduction.)
  AuthEnv env;
  db::Token row;
  env.add_token(env.add_project(), 10'000'000, std::nullopt, &row);
  QuotaCoalescer coalescer(env.db, env.executor, [&env] { return env.clock; });
  constexpr int kPerContext = 2, kEach = 6000;
  std::atomic<int> accepted{0}, failed{0}, other{0}, finished{0};

  net::io_context second;
  env.io.restart();
  const auto spawn = [&](net::io_context& io) {
    for (int c = 0; c < kPerContext; ++c) {
      net::co_spawn(
          net::make_strand(io),
          [&]() -> net::awaitable<void> {
            for (int i = 0; i < kEach; ++i) {
              const QuotaGrant grant = co_await coalescer.acquire(row.id);
              co_await net::post(co_await net::this_coro::executor, net::use_awaitable);  // let the queue drain
              if (grant.failed) {
                ++failed;
              } else if (grant.outcome == db::QuotaOutcome::accepted) {
                ++accepted;
              } else {
                ++other;
              }
            }
            ++finished;
          },
          [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
    }
  };
  spawn(env.io);
  spawn(second);
  std::thread t2([&] { second.run(); });
  env.io.run();
  t2.join();

  REQUIRE(finished == 2 * kPerContext);
  CHECK(failed == 0);
  CHECK(other == 0);
  CHECK(accepted == 2 * kPerContext * kEach);
  CHECK(env.driver->get_token(row.id).request_count == 2 * kPerContext * kEach);
  CHECK(coalescer.active_tokens() == 0);
}
