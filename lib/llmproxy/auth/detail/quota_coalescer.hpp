#pragma once
/// Coalesced quota grants (SPEC §6.3): per token, at most one grant statement is in flight on this instance.
/// Requests for a token that arrive while its statement runs wait for the next statement, which asks for all of
/// them at once (TokenRepository::consume_quota with units = the number of waiters, at most max_batch); the first
/// `granted` waiters are accepted, the others get the refusal the database explained. A failed statement (any
/// db::Error, the DB executor's queue full) fails every waiter of its batch. Exactness is the database's: each
/// waiter is in exactly one batch, and a batch asks for exactly its size.
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "llmproxy/db/models.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::db {
class TokenRepository;
class Executor;
}  // namespace llmproxy::db

namespace llmproxy::auth::detail {

/// What one request got from its batch's statement.
struct QuotaGrant {
  /// The statement failed (database error, DB executor queue full): the whole batch gets 503; `error` says why.
  bool failed = false;
  /// accepted for the first `granted` waiters; otherwise the refusal the database explained (exhausted after a
  /// partial grant). Meaningless when `failed`.
  db::QuotaOutcome outcome = db::QuotaOutcome::not_found;
  /// The row after the statement, shared by the batch; null when not_found or failed.
  std::shared_ptr<const db::Token> row;
  std::shared_ptr<const std::string> error;  // set when failed
};

/// Counters since construction (metrics). Atomic.
struct QuotaCoalescerStats {
  std::uint64_t statements = 0;  // grant statements run (failed ones included)
  std::uint64_t requests = 0;    // requests answered by a statement (granted, refused or failed)
  std::uint64_t granted = 0;     // units the database granted
};

class QuotaCoalescer {
 public:
  /// Default cap on the units one statement asks for; more waiters wait for the next statement.
  static constexpr std::size_t kMaxBatch = 256;

  /// `repo` and `executor` must outlive every acquire() in progress (the statement runs on `executor`);
  /// `now` gives the time a statement checks expiry against and writes as last_used_at.
  QuotaCoalescer(db::TokenRepository& repo, db::Executor& executor, std::function<util::TimePoint()> now,
                 std::size_t max_batch = kMaxBatch);
  ~QuotaCoalescer();
  QuotaCoalescer(const QuotaCoalescer&) = delete;
  QuotaCoalescer& operator=(const QuotaCoalescer&) = delete;

  /// One unit of `token_id`'s quota: joins the batch of the next statement for the token (starting it when none
  /// is in flight) and resumes on the caller's executor with this request's share of the answer. Never blocks a
  /// thread; never throws a db::Error (failures are in the result). Any thread, any executor.
  /// A waiter whose coroutine is gone by the time its batch is answered (shutdown) keeps its unit counted: the
  /// quota counts a request before it is forwarded, whatever happens to it afterwards.
  boost::asio::awaitable<QuotaGrant> acquire(const std::string& token_id);

  QuotaCoalescerStats stats() const;
  /// Tokens with a statement in flight or waiters queued (tests: 0 once everything was answered).
  std::size_t active_tokens() const;
  /// Requests queued for a next statement (not yet in one), over all tokens (tests).
  std::size_t waiting() const;

  struct State;  // shared with the statements in flight, which may outlive the coalescer at shutdown

 private:
  std::shared_ptr<State> state_;
};

}  // namespace llmproxy::auth::detail
