#include "llmproxy/auth/detail/quota_coalescer.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmproxy/db/database.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/db/single_flight.hpp"

namespace llmproxy::auth::detail {

namespace net = boost::asio;

namespace {
using Waiter = db::Suspended<void(QuotaGrant)>;
}  // namespace

struct QuotaCoalescer::State {
  State(db::TokenRepository& repo_, db::Executor& executor_, std::function<util::TimePoint()> now_,
        std::size_t max_batch_)
      : repo(repo_), executor(executor_), now(std::move(now_)), max_batch(std::max<std::size_t>(max_batch_, 1)) {}

  db::TokenRepository& repo;
  db::Executor& executor;
  const std::function<util::TimePoint()> now;
  const std::size_t max_batch;

  // Guards `queues`; held briefly, never across I/O or a resumption. A token has an entry exactly while its
  // statement loop (drive) runs: the entry's waiters are those for the *next* statement.
  mutable std::mutex mutex;
  // A deque, never erased from the middle: Boost 1.81's any_completion_handler has a broken move assignment
  // (it wraps itself recursively), so waiters are only ever move-constructed, never assigned.
  std::unordered_map<std::string, std::deque<Waiter>> queues;

  std::atomic<std::uint64_t> statements{0};  // atomic counters
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> granted{0};

  /// Queues `waiter` for the next statement of `token_id`; true if no loop runs for the token yet (the caller
  /// starts one).
  bool enqueue(const std::string& token_id, Waiter waiter) {
    std::lock_guard lock(mutex);
    auto [it, inserted] = queues.try_emplace(token_id);
    it->second.push_back(std::move(waiter));
    return inserted;
  }

  /// The next batch of `token_id` (at most max_batch waiters, oldest first). Empty: nobody waits, the entry is
  /// gone and the loop must end (a later request starts a new one).
  std::vector<Waiter> take(const std::string& token_id) {
    std::lock_guard lock(mutex);
    const auto it = queues.find(token_id);
    if (it == queues.end()) return {};
    std::deque<Waiter>& waiting = it->second;
    if (waiting.empty()) {
      queues.erase(it);
      return {};
    }
    std::vector<Waiter> batch;
    batch.reserve(std::min(waiting.size(), max_batch));
    while (!waiting.empty() && batch.size() < max_batch) {
      batch.push_back(std::move(waiting.front()));
      waiting.pop_front();
    }
    return batch;
  }

  /// The loop of `token_id` ends without answering (its frame is destroyed: shutdown): its batch and everything
  /// queued behind it fail, and the entry goes so that a later request starts afresh.
  void abandon(const std::string& token_id, std::vector<Waiter>& batch) {
    std::deque<Waiter> queued;
    {
      std::lock_guard lock(mutex);
      const auto it = queues.find(token_id);
      if (it != queues.end()) {
        queued.swap(it->second);
        queues.erase(it);
      }
    }
    const auto error = std::make_shared<const std::string>("quota grant abandoned (shutting down)");
    for (Waiter& waiter : batch) db::resume(std::move(waiter), QuotaGrant{true, {}, nullptr, error});
    batch.clear();
    for (Waiter& waiter : queued) db::resume(std::move(waiter), QuotaGrant{true, {}, nullptr, error});
  }
};

namespace {

/// Answers a batch from its statement: the first `granted` waiters are accepted, the rest refused as the database
/// explained (a partial grant happens only at the end of the quota: exhausted).
void answer_batch(std::vector<Waiter>& batch, const db::QuotaResult& result) {
  const auto row = result.token ? std::make_shared<const db::Token>(*result.token) : nullptr;
  const bool accepted = result.outcome == db::QuotaOutcome::accepted;
  const std::int64_t granted = accepted ? result.granted : 0;
  const db::QuotaOutcome refusal = accepted ? db::QuotaOutcome::exhausted : result.outcome;
  std::int64_t index = 0;
  for (Waiter& waiter : batch) {
    const db::QuotaOutcome outcome = index++ < granted ? db::QuotaOutcome::accepted : refusal;
    db::resume(std::move(waiter), QuotaGrant{false, outcome, row, nullptr});
  }
  batch.clear();
}

void fail_batch(std::vector<Waiter>& batch, const std::shared_ptr<const std::string>& error) {
  for (Waiter& waiter : batch) db::resume(std::move(waiter), QuotaGrant{true, {}, nullptr, error});
  batch.clear();
}

/// A batch taken out of the queue: answered by the loop, or failed (with the queue) if the loop's frame is
/// destroyed first.
class Batch {
 public:
  Batch(std::shared_ptr<QuotaCoalescer::State> state, const std::string& token_id)
      : state_(std::move(state)), token_id_(token_id), waiters_(state_->take(token_id)) {}
  ~Batch() {
    // Empty: take() found nobody waiting and removed the token's entry, so the loop ends normally. The entry
    // may already belong to a new loop, started meanwhile by a request on another I/O thread: it must not be
    // touched (abandoning it failed those requests with 503).
    if (answered_ || waiters_.empty()) return;
    try {
      state_->abandon(token_id_, waiters_);
    } catch (...) {  // allocation failure while posting: nothing more can be done here
    }
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  std::size_t size() const { return waiters_.size(); }

  void answer(const db::QuotaResult& result) {
    answered_ = true;
    answer_batch(waiters_, result);
  }
  void fail(const std::shared_ptr<const std::string>& error) {
    answered_ = true;
    fail_batch(waiters_, error);
  }

 private:
  std::shared_ptr<QuotaCoalescer::State> state_;
  const std::string& token_id_;  // the loop's own copy
  std::vector<Waiter> waiters_;
  bool answered_ = false;
};

/// The statement loop of one token: one grant statement at a time, each for every request queued when it starts
/// (up to max_batch), until nobody waits. Runs on the executor of the request that started it; the statement
/// itself runs on the DB executor. Owns only shared state.
net::awaitable<void> drive(std::shared_ptr<QuotaCoalescer::State> state, std::string token_id) {
  for (;;) {
    Batch batch(state, token_id);
    if (batch.size() == 0) co_return;
    const auto units = static_cast<std::int64_t>(batch.size());
    const util::TimePoint at = state->now();
    db::QuotaResult result;
    std::shared_ptr<const std::string> error;
    // Named, not a temporary inside the co_await expression: GCC 12 destroys such temporaries twice.
    auto grant = [&repo = state->repo, token_id, units, at] { return repo.consume_quota(token_id, units, at); };
    try {
      result = co_await state->executor.run(std::move(grant));
    } catch (const std::exception& e) {  // db::Error, the queue full, or anything else: the batch gets 503
      error = std::make_shared<const std::string>(e.what());
    }
    state->statements.fetch_add(1, std::memory_order_relaxed);
    state->requests.fetch_add(static_cast<std::uint64_t>(units), std::memory_order_relaxed);
    if (error) {
      batch.fail(error);
      continue;
    }
    if (result.outcome == db::QuotaOutcome::accepted) {
      state->granted.fetch_add(static_cast<std::uint64_t>(std::min(result.granted, units)), std::memory_order_relaxed);
    }
    batch.answer(result);
  }
}

}  // namespace

QuotaCoalescer::QuotaCoalescer(db::TokenRepository& repo, db::Executor& executor,
                               std::function<util::TimePoint()> now, std::size_t max_batch)
    : state_(std::make_shared<State>(repo, executor, std::move(now), max_batch)) {}

QuotaCoalescer::~QuotaCoalescer() = default;

net::awaitable<QuotaGrant> QuotaCoalescer::acquire(const std::string& token_id) {
  // Not a coroutine itself: the returned operation is the only frame. `park` runs when the caller awaits it.
  auto park = [state = state_, token_id](Waiter waiter) {
    auto executor = waiter.executor;
    if (state->enqueue(token_id, std::move(waiter))) {
      net::co_spawn(executor, drive(state, token_id), net::detached);
    }
  };
  return db::suspend<void(QuotaGrant)>(std::move(park));
}

QuotaCoalescerStats QuotaCoalescer::stats() const {
  return QuotaCoalescerStats{state_->statements.load(std::memory_order_relaxed),
                             state_->requests.load(std::memory_order_relaxed),
                             state_->granted.load(std::memory_order_relaxed)};
}

std::size_t QuotaCoalescer::active_tokens() const {
  std::lock_guard lock(state_->mutex);
  return state_->queues.size();
}

std::size_t QuotaCoalescer::waiting() const {
  std::lock_guard lock(state_->mutex);
  std::size_t n = 0;
  for (const auto& [token_id, queued] : state_->queues) n += queued.size();
  return n;
}

}  // namespace llmproxy::auth::detail
