#include "llmproxy/auth/token_service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "llmproxy/audit/auditor.hpp"
#include "llmproxy/auth/detail/bearer.hpp"
#include "llmproxy/auth/detail/token_hash.hpp"
#include "llmproxy/auth/detail/id_hash.hpp"
#include "llmproxy/auth/detail/lru_cache.hpp"
#include "llmproxy/auth/detail/quota_coalescer.hpp"
#include "llmproxy/auth/detail/usage_accumulator.hpp"
#include "llmproxy/db/database.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/single_flight.hpp"
#include "llmproxy/db/executor.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/token.hpp"

namespace llmproxy::auth {

namespace net = boost::asio;

namespace {

/// Projects are few; this only bounds memory if something goes wrong.
constexpr std::size_t kProjectCacheMax = 10000;
constexpr std::size_t kMaxShards = 16;
/// stop_and_flush(): how long to wait for a periodic flush still running on the executor, and how often to try
/// the final write (with a growing pause in between) before giving up.
constexpr std::chrono::seconds kSettleTimeout{10};
constexpr int kFinalFlushAttempts = 3;
constexpr std::chrono::milliseconds kFinalFlushBackoff{200};
/// A condition that repeats on every request (database down) is logged at most this often.
constexpr std::chrono::seconds kLogThrottle{5};

/// What the request path needs of a token row. Smaller than db::Token: the cache holds up to TOKEN_CACHE_MAX.
struct CachedToken {
  std::string id;
  std::string hint;
  std::string project_id;
  std::optional<util::TimePoint> expires_at;
  std::optional<std::int64_t> max_requests;
  bool is_active = true;
  std::optional<std::int64_t> max_tokens;      // LLM-token budget
  std::optional<std::int64_t> rate_limit_rpm;  // requests per minute
  std::int64_t llm_tokens_used = 0;    // prompt + completion in the row read
  std::int64_t committed_at_read = 0;  // BudgetBook::committed() of the token when the row was read
  std::int64_t request_count = 0;      // in the row read: a quota token at its max_requests is refused from memory
};

CachedToken cached_from(const db::Token& t, std::int64_t committed_at_read) {
  return CachedToken{t.id,           t.token_hint,     t.project_id,
                     t.expires_at,   t.max_requests,   t.is_active,
                     t.max_tokens,   t.rate_limit_rpm, t.prompt_tokens + t.completion_tokens,
                     committed_at_read, t.request_count};
}

/// The row a cached token stands for (the inverse of cached_from; `hash` is its cache key).
db::Token row_from(const CachedToken& t, const std::string& hash) {
  db::Token row;
  row.id = t.id;
  row.token_hash = hash;
  row.token_hint = t.hint;
  row.project_id = t.project_id;
  row.expires_at = t.expires_at;
  row.max_requests = t.max_requests;
  row.is_active = t.is_active;
  row.max_tokens = t.max_tokens;
  row.rate_limit_rpm = t.rate_limit_rpm;
  row.prompt_tokens = t.llm_tokens_used;  // the sum is what is kept (the budget's use of it)
  row.request_count = t.request_count;
  return row;
}

/// The validity facts of a token, copied out of the cache or a row.
struct TokenFacts {
  std::optional<util::TimePoint> expires_at;
  std::optional<std::int64_t> max_requests;
  bool is_active = true;
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> rate_limit_rpm;
  std::int64_t llm_tokens_used = 0;
  std::int64_t committed_at_read = 0;
  std::int64_t request_count = 0;
};

TokenFacts facts_of(const CachedToken& t) {
  return TokenFacts{t.expires_at, t.max_requests, t.is_active, t.max_tokens, t.rate_limit_rpm, t.llm_tokens_used,
                    t.committed_at_read, t.request_count};
}

/// A project as the proxy needs it.
struct CachedProject {
  bool exists = false;
  bool is_active = false;
  bool key_ok = false;  // false: the stored key could not be decrypted (ENCRYPTION_KEY wrong or missing)
  std::string api_key;  // decrypted
  std::optional<std::int64_t> rate_limit_rpm;
};

/// This instance's LLM tokens of the tokens that have a budget, against which a row read from the database is
/// completed (SPEC §14). Per token: `unflushed`, recorded here and not yet written, and `committed`, written by
/// this instance's flushes (monotonic). A row read when `committed` was C holds everything committed up to C, so
/// the token's usage now is `row + unflushed + (committed - C)`. The one gap: a flush committed while the row's
/// query ran but counted before its answer arrived is missed until the next read (at most one flush's worth).
/// Amounts recorded before the token was tracked are not in `unflushed` (clamped at 0) but count once committed.
class BudgetBook {
 public:
  /// Starts tracking the token (a no-op when tracked). Its LLM tokens since `committed_at_read`.
  std::int64_t used_since(const std::string& token_id, std::int64_t committed_at_read) {
    std::lock_guard lock(mutex_);
    const Entry& e = entries_[token_id];
    return e.unflushed + (e.committed - committed_at_read);
  }
  /// The token's committed amount now; 0 for a token not tracked.
  std::int64_t committed(const std::string& token_id) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(token_id);
    return it == entries_.end() ? 0 : it->second.committed;
  }
  /// LLM tokens of a finished request (tokens not tracked are ignored).
  void recorded(std::string_view token_id, std::int64_t llm_tokens) {
    std::lock_guard lock(mutex_);
    if (const auto it = entries_.find(token_id); it != entries_.end()) it->second.unflushed += llm_tokens;
  }
  /// LLM tokens of the token written by a flush.
  void written(const std::string& token_id, std::int64_t llm_tokens) {
    std::lock_guard lock(mutex_);
    if (const auto it = entries_.find(token_id); it != entries_.end()) {
      it->second.committed += llm_tokens;
      it->second.unflushed = std::max<std::int64_t>(0, it->second.unflushed - llm_tokens);
    }
  }

 private:
  struct Entry {
    std::int64_t unflushed = 0, committed = 0;
  };
  mutable std::mutex mutex_;                                                          // guards entries_
  std::unordered_map<std::string, Entry, detail::ViewHash, std::equal_to<>> entries_;  // token id -> its amounts
};

/// Negative cache entries carry nothing: presence is the information.
struct Unknown {};

/// How a token lookup ended; shared by the requests that waited for it (single-flight).
enum class LookupFailure {
  none,
  unavailable,  // db::Unavailable (includes Timeout): stale entries may answer
  error,        // any other db::Error: 503, nothing stale
};
struct Lookup {
  std::optional<db::Token> row;  // nullopt and failure == none: the token does not exist
  LookupFailure failure = LookupFailure::none;
  std::int64_t committed_at_read = 0;  // BudgetBook::committed() of the token when `row` was read
};
using Lifetime = detail::ShardedLruCache<CachedToken, detail::IdHash>::Duration;

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Lets one line through per kLogThrottle; a database outage would otherwise log once per request.
class LogThrottle {
 public:
  bool allow() {
    const std::int64_t now = steady_ns();
    std::int64_t next = next_.load(std::memory_order_relaxed);
    return now >= next && next_.compare_exchange_strong(next, now + std::chrono::nanoseconds(kLogThrottle).count(),
                                                        std::memory_order_relaxed);
  }

 private:
  std::atomic<std::int64_t> next_{0};  // atomic: steady-clock ns before which nothing is logged
};

/// Usage of unlimited tokens not yet in the database. Shared (shared_ptr) by the service and by flushes in flight
/// on the executor, which may settle after the flush coroutine or the service itself are gone.
struct UsageBook {
  detail::UsageAccumulator pending;                      // sharded mutexes inside
  BudgetBook budgets;                                    // internally synchronized
  std::atomic<std::uint64_t> flush_failures{0};          // atomic counter
  std::atomic<std::int64_t> last_flush_ns{steady_ns()};  // atomic: last time everything pending was written
  std::mutex inflight_mutex;                             // guards `inflight`
  std::condition_variable inflight_settled;              // signalled when `inflight` drops
  int inflight = 0;                                      // batches taken out and neither written nor given back

  /// Waits until no batch is in flight. Returns false on timeout.
  bool wait_settled(std::chrono::milliseconds timeout) {
    std::unique_lock lock(inflight_mutex);
    return inflight_settled.wait_for(lock, timeout, [this] { return inflight == 0; });
  }
};

/// A batch taken out of the book for one write. If the write fails, or never happens because the executor
/// dropped the task, the batch goes back into the book: counts are never lost silently.
class PendingBatch {
 public:
  PendingBatch(std::shared_ptr<UsageBook> book, db::UsageBatch batch)
      : book_(std::move(book)), batch_(std::move(batch)) {
    std::lock_guard lock(book_->inflight_mutex);
    ++book_->inflight;
  }
  ~PendingBatch() {
    if (settled_) return;
    try {
      settle(Fate::returned);
    } catch (const std::exception& e) {
      log::write(log::Level::error, "usage_lost",
                 {{"tokens", batch_.tokens.size()}, {"daily_rows", batch_.daily.size()}, {"error", e.what()}});
    }
  }
  PendingBatch(const PendingBatch&) = delete;
  PendingBatch& operator=(const PendingBatch&) = delete;

  /// Blocking: one add_usage transaction. On failure the batch is back in the book before the exception
  /// (whatever add_usage threw) propagates.
  void write(db::TokenRepository& repo) {
    try {
      repo.add_usage(batch_);
    } catch (...) {
      settle(Fate::returned);
      throw;
    }
    settle(Fate::written);
  }

  std::size_t tokens() const { return batch_.tokens.size(); }

 private:
  /// Where the batch ends up: in the database, or back in the book for the next flush.
  enum class Fate { written, returned };

  void settle(Fate fate) {
    settled_ = true;
    if (fate == Fate::written) {
      book_->last_flush_ns.store(steady_ns(), std::memory_order_relaxed);
      for (const db::UsageDelta& t : batch_.tokens) {
        if (t.prompt_tokens != 0 || t.completion_tokens != 0) {
          book_->budgets.written(t.token_id, t.prompt_tokens + t.completion_tokens);
        }
      }
    } else {
      book_->flush_failures.fetch_add(1, std::memory_order_relaxed);
      book_->pending.merge_back(batch_);
    }
    {
      std::lock_guard lock(book_->inflight_mutex);
      --book_->inflight;
    }
    book_->inflight_settled.notify_all();
  }

  std::shared_ptr<UsageBook> book_;
  db::UsageBatch batch_;
  bool settled_ = false;  // touched by the one thread running write(), then by the destructor after it
};

/// The periodic flush: its strand, its timer while it runs, and the stop request.
struct FlushControl {
  explicit FlushControl(net::io_context& io) : strand(net::make_strand(io)) {}
  net::strand<net::io_context::executor_type> strand;
  std::atomic<bool> stopping{false};   // atomic: set by stop_and_flush() from any thread
  net::steady_timer* timer = nullptr;  // confined to `strand`: the loop's timer while the loop runs
};

/// Every usage_flush_interval, writes what the book holds in one add_usage call on the executor. Runs on
/// `control->strand`; owns only shared state, so the io_context may destroy it at any suspension point.
net::awaitable<void> flush_loop(std::shared_ptr<FlushControl> control, std::shared_ptr<UsageBook> book,
                                db::TokenRepository& repo, db::Executor& executor, std::chrono::milliseconds interval) {
  net::steady_timer timer(co_await net::this_coro::executor);
  control->timer = &timer;
  struct Unregister {
    FlushControl& control;
    ~Unregister() { control.timer = nullptr; }
  } unregister{*control};

  bool failing = false;  // log the start and the end of an outage, not every tick
  while (!control->stopping.load()) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    if (ec || control->stopping.load()) break;
    db::UsageBatch deltas = book->pending.take();
    if (deltas.empty()) {
      book->last_flush_ns.store(steady_ns(), std::memory_order_relaxed);
      continue;
    }
    auto batch = std::make_shared<PendingBatch>(book, std::move(deltas));
    std::string error;
    auto write = [batch, &repo] { batch->write(repo); };
    try {
      co_await executor.run(std::move(write));
    } catch (const std::exception& e) {
      error = e.what();  // the deltas are back in the book; the next tick retries them
    }
    if (!error.empty() && !failing) {
      log::write(log::Level::warn, "usage_flush_failed",
                 {{"tokens", batch->tokens()}, {"error", error}, {"message", "usage kept in memory and retried"}});
    } else if (error.empty() && failing) {
      log::write(log::Level::info, "usage_flush_recovered", {{"tokens", batch->tokens()}});
    }
    failing = !error.empty();
  }
}

/// Reads a project and decrypts its key. Blocking (executor thread). A missing project is a value, not an error.
CachedProject load_project(db::ProjectRepository& repo, const util::Cipher& cipher, const std::string& id) {
  CachedProject out;
  db::Project p;
  try {
    p = repo.get_project(id);
  } catch (const db::NotFound&) {
    return out;
  }
  out.exists = true;
  out.is_active = p.is_active;
  out.rate_limit_rpm = p.rate_limit_rpm;
  try {
    out.api_key = cipher.decrypt(p.api_key);
    out.key_ok = true;
  } catch (const util::CryptoError&) {
    // The key was encrypted with another ENCRYPTION_KEY (or none is configured now): an operator problem, not
    // the client's. Cached like a good key so a misconfigured instance does not query the database per request.
    log::write(log::Level::error, "project_key_decrypt_failed",
               {{"project_id", id}, {"message", "stored API key cannot be decrypted; check ENCRYPTION_KEY"}});
  }
  return out;
}

}  // namespace

struct TokenService::Impl {
  Impl(db::Database& db_, db::Executor& executor_, const util::Cipher& cipher_, audit::Auditor* auditor_,
       Options options_, std::function<util::TimePoint()> now_)
      : db(db_),
        executor(executor_),
        cipher(cipher_),
        auditor(auditor_),
        options(options_),
        now(std::move(now_)),
        tokens(options.token_cache_max, options.token_cache_ttl, shards_for(options.token_cache_max),
               options.cache_stale_if_error),
        unknown(options.token_cache_max, options.negative_cache_ttl, shards_for(options.token_cache_max),
                options.cache_stale_if_error),
        projects(kProjectCacheMax, options.project_cache_ttl, kMaxShards, options.cache_stale_if_error) {}

  static std::size_t shards_for(std::size_t capacity) { return std::clamp<std::size_t>(capacity, 1, kMaxShards); }

  db::Database& db;
  db::Executor& executor;
  const util::Cipher& cipher;
  audit::Auditor* const auditor;
  const Options options;
  const std::function<util::TimePoint()> now;

  // Sharded mutexes inside each. Keys: the SHA-256 hex of the token (tokens, unknown), the project id (projects).
  detail::ShardedLruCache<CachedToken, detail::IdHash> tokens;
  detail::ShardedLruCache<Unknown, detail::IdHash> unknown;
  detail::ShardedLruCache<CachedProject, detail::IdHash> projects;
  // Bumped (before erasing) by every invalidation. A lookup that started before a bump does not store what it
  // read: it may predate the change that caused the invalidation.
  std::atomic<std::uint64_t> token_epoch{0};    // atomic
  std::atomic<std::uint64_t> project_epoch{0};  // atomic
  std::atomic<std::uint64_t> db_lookups{0};     // atomic counter: token lookups that reached the database
  std::atomic<std::uint64_t> shared_lookups{0};  // atomic counter: misses that joined a lookup in flight
  std::atomic<std::uint64_t> stale_served{0};    // atomic counter: requests answered from stale entries
  std::atomic<bool> serving_stale{false};  // atomic: stale entries served since the database last answered
  std::atomic<std::int64_t> next_probe_ns{0};  // atomic: steady-clock ns; during an outage, next database probe
  db::SingleFlight<Lookup> token_flights;  // one mutex inside; key: SHA-256 hex of the token
  detail::QuotaCoalescer quota{db, executor, now};  // one mutex inside; key: token id
  std::shared_ptr<UsageBook> usage = std::make_shared<UsageBook>();  // internally synchronized
  std::shared_ptr<FlushControl> flush;  // written by start() before any traffic; read by stop_and_flush()
  std::atomic<bool> stopped{false};     // atomic: stop_and_flush() ran
  LogThrottle db_error_log;             // internally atomic

  void log_db_error(std::string_view operation, const std::exception& e) {
    if (!db_error_log.allow()) return;
    log::write(log::Level::warn, "auth_database_unavailable", {{"operation", operation}, {"error", e.what()}});
  }
  void log_quota_error(const std::string& error) {
    if (!db_error_log.allow()) return;
    log::write(log::Level::warn, "auth_database_unavailable", {{"operation", "consume quota"}, {"error", error}});
  }

  /// How long a token row is trusted. Expiry is final (the API cannot move expires_at): until evicted. A revoked
  /// token is a denial like an unknown one: at least NEGATIVE_CACHE_TTL, so a flood of it costs no query even
  /// with TOKEN_CACHE_TTL=0. A reactivation through this instance invalidates at once (invalidate_token).
  Lifetime token_lifetime(const db::Token& t, util::TimePoint at) const {
    if (t.expires_at && at >= *t.expires_at) return detail::ShardedLruCache<CachedToken, detail::IdHash>::kForever;
    if (!t.is_active) return std::max<Lifetime>(options.token_cache_ttl, options.negative_cache_ttl);
    return options.token_cache_ttl;
  }

  /// Stores a row just read from the database unless an invalidation happened since `epoch`. Returns the
  /// BudgetBook::committed() the row is paired with (CachedToken::committed_at_read).
  std::int64_t cache_token(std::string_view hash, const db::Token& row, util::TimePoint at, std::uint64_t epoch) {
    const std::int64_t committed_at_read = usage->budgets.committed(row.id);
    tokens.put_for(hash, cached_from(row, committed_at_read), at, token_lifetime(row, at),
                   [&] { return token_epoch.load() == epoch; });
    return committed_at_read;
  }

  /// A request was answered from entries past their TTL: counted; logged once per outage.
  void stale_request_answered() {
    stale_served.fetch_add(1, std::memory_order_relaxed);
    bool expected = false;
    if (serving_stale.compare_exchange_strong(expected, true)) {
      next_probe_ns.store(steady_ns() + std::chrono::nanoseconds(options.outage_probe_interval).count(),
                          std::memory_order_relaxed);
      log::write(log::Level::warn, "serving_stale_cache",
                 {{"message", "database unavailable: serving cached tokens and projects past their TTL"},
                  {"max_staleness_ms", options.cache_stale_if_error.count()}});
    }
  }

  /// The database answered: ends a stale-serving period (logged once).
  void database_answered() {
    if (!serving_stale.load(std::memory_order_relaxed)) return;
    bool expected = true;
    if (serving_stale.compare_exchange_strong(expected, false)) {
      log::write(log::Level::info, "serving_stale_cache_ended",
                 {{"stale_served_total", stale_served.load(std::memory_order_relaxed)}});
    }
  }

  /// Counts a request in llm_proxy_stale_served_total when it ends, if stale entries decided it and it was not a
  /// 503 anyway (a quota token still needs the database). Reads only the outcome, which a move leaves in place.
  class StaleAnswer {
   public:
    StaleAnswer(Impl& s, const Authorization& out) : s_(s), out_(out) {}
    ~StaleAnswer() {
      if (!used_ || out_.outcome == Outcome::service_unavailable) return;
      try {
        s_.stale_request_answered();
      } catch (...) {  // logging failed: the count is already taken
      }
    }
    StaleAnswer(const StaleAnswer&) = delete;
    StaleAnswer& operator=(const StaleAnswer&) = delete;
    void used() { used_ = true; }

   private:
    Impl& s_;
    const Authorization& out_;
    bool used_ = false;
  };

  /// True while stale entries are being served and this request is not the one that probes the database: a
  /// stale entry may answer at once. Probes are at most one per outage_probe_interval.
  bool skip_database_for_stale() {
    if (!serving_stale.load(std::memory_order_relaxed)) return false;
    const std::int64_t now_ns = steady_ns();
    std::int64_t next = next_probe_ns.load(std::memory_order_relaxed);
    const std::int64_t interval = std::chrono::nanoseconds(options.outage_probe_interval).count();
    return !(now_ns >= next && next_probe_ns.compare_exchange_strong(next, now_ns + interval));
  }

  /// Cache miss: the row of `hash`, read once for all concurrent askers (single-flight). The leader caches what
  /// it read before the waiters resume. Never throws a db::Error: failures are in the result.
  net::awaitable<Lookup> lookup_token(const std::string& hash, util::TimePoint at);

  /// Records `proxy.denied` for a denial caused by the token's or project's state (SPEC §7.3).
  void audit_denied(const Authorization& a, std::string_view reason) {
    if (auditor == nullptr) return;
    db::AuditEvent ev;
    ev.action = "proxy.denied";
    ev.actor = "token:" + a.token_id;
    ev.outcome = "denied";
    ev.token_id = a.token_id;
    ev.project_id = a.project_id;
    ev.reason = std::string(reason);
    ev.metadata = nlohmann::json{{"token_hint", a.token_hint}}.dump();
    auditor->record_coalesced(std::move(ev));  // one row per token, reason and minute, with a count
  }

  // The project step, split so that a cache hit needs no nested coroutine (no frame allocation):
  void read_project(const CachedProject& p, Authorization& out, CachedProject& facts) const;
  /// Cache miss: reads and caches the project. While the database is unavailable, a stale entry answers (sets
  /// `stale`). False if neither the database nor a stale entry could.
  net::awaitable<bool> load_project_facts(Authorization& out, util::TimePoint at, CachedProject& facts,
                                          bool& stale);
  /// Applies the checks; nullopt if the request may go on, else the denial (already set in `out`).
  std::optional<Outcome> judge_project(Authorization& out, const CachedProject& facts);
};

namespace {

void set_denial(Authorization& a, Outcome outcome, std::string_view message) {
  a.outcome = outcome;
  a.message = message;
  a.api_key.clear();
}

Authorization denial(Authorization&& a, Outcome outcome, std::string_view message) {
  set_denial(a, outcome, message);
  return std::move(a);
}

}  // namespace

/// Copies what the request needs from a project entry; the key only when it will be forwarded.
void TokenService::Impl::read_project(const CachedProject& p, Authorization& out, CachedProject& facts) const {
  facts.exists = p.exists;
  facts.is_active = p.is_active;
  facts.key_ok = p.key_ok;
  facts.rate_limit_rpm = p.rate_limit_rpm;
  if (p.exists && p.key_ok && (p.is_active || !options.enforce_project_active)) out.api_key = p.api_key;
}

net::awaitable<bool> TokenService::Impl::load_project_facts(Authorization& out, util::TimePoint at,
                                                            CachedProject& facts, bool& stale) {
  const std::uint64_t epoch = project_epoch.load();
  std::optional<CachedProject> loaded;
  bool unavailable = false;
  auto load = [&repo = db, &cipher = cipher, id = out.project_id] { return load_project(repo, cipher, id); };
  try {
    loaded = co_await executor.run(std::move(load));
  } catch (const db::Unavailable& e) {
    log_db_error("project lookup", e);
    unavailable = true;
  } catch (const db::Error& e) {
    log_db_error("project lookup", e);
  }
  if (!loaded) {
    if (unavailable &&
        projects.visit_stale(out.project_id, at, [&](const CachedProject& p) { read_project(p, out, facts); })) {
      stale = true;
      co_return true;
    }
    co_return false;
  }
  database_answered();
  read_project(*loaded, out, facts);
  projects.put_if(out.project_id, std::move(*loaded), at, [&] { return project_epoch.load() == epoch; });
  co_return true;
}

std::optional<Outcome> TokenService::Impl::judge_project(Authorization& out, const CachedProject& facts) {
  if (!facts.exists) {
    audit_denied(out, "project not found");
    set_denial(out, Outcome::project_inactive, "Project not found");
    return Outcome::project_inactive;
  }
  if (!facts.is_active && options.enforce_project_active) {
    audit_denied(out, "project inactive");
    set_denial(out, Outcome::project_inactive, "Project is inactive");
    return Outcome::project_inactive;
  }
  if (!facts.key_ok) {
    // Decision: 503, not a client error. The operator must fix ENCRYPTION_KEY; the message names no secret and
    // load_project() logged the project id.
    set_denial(out, Outcome::service_unavailable, "Project API key is unavailable");
    return Outcome::service_unavailable;
  }
  return std::nullopt;
}

TokenService::TokenService(db::Database& db, db::Executor& executor, const util::Cipher& cipher,
                           audit::Auditor* auditor, Options options, std::function<util::TimePoint()> now)
    : impl_(std::make_unique<Impl>(db, executor, cipher, auditor, options, std::move(now))) {}

TokenService::~TokenService() {
  if (impl_->flush) impl_->flush->stopping.store(true);
  if (impl_->stopped.load()) return;
  // Not stopped through stop_and_flush(): one last attempt so counted usage is not dropped silently.
  try {
    if (!flush_blocking()) {
      log::write(log::Level::error, "usage_lost",
                 {{"tokens", impl_->usage->pending.pending_tokens()},
                  {"requests", impl_->usage->pending.pending_requests()},
                  {"daily_rows", impl_->usage->pending.pending_daily_rows()}});
    }
  } catch (const std::exception& e) {
    log::write(log::Level::error, "usage_lost", {{"error", e.what()}});
  }
}

// GCC 12 false positive (-Wmismatched-new-delete, as in proxy.cpp's handle() and forward()): once a coroutine's
// frame allocation and release are inlined (lookup_token()'s into authorize(), authorize()'s own), GCC pairs the
// global operator new that Asio's awaitable_frame_base::operator new ends in with the frame's own operator
// delete, which does release it with the global operator delete. Only for these two functions.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
net::awaitable<Lookup> TokenService::Impl::lookup_token(const std::string& hash, util::TimePoint at) {
  const std::uint64_t epoch = token_epoch.load();
  auto joined = token_flights.join(hash, epoch);
  if (!joined.leader) {
    shared_lookups.fetch_add(1, std::memory_order_relaxed);
    co_return co_await token_flights.wait(std::move(joined.flight));
  }
  // If this frame is destroyed before finishing (shutdown), the waiters are told "unavailable", not left hanging.
  db::FlightLead<Lookup> lead(token_flights, hash, std::move(joined.flight),
                              Lookup{std::nullopt, LookupFailure::unavailable});
  // A lookup of this token may have finished between the caller's cache miss and this join (it caches its
  // answer before it ends its flight): then the answer is in the cache and a second query would be wasted.
  Lookup from_cache;
  bool found_in_cache = unknown.visit(hash, at, [](const Unknown&) {});
  if (!found_in_cache) {
    found_in_cache = tokens.visit(hash, at, [&](const CachedToken& t) {
      from_cache.row = row_from(t, hash);
      from_cache.committed_at_read = t.committed_at_read;
    });
  }
  if (found_in_cache) {
    lead.finish(from_cache);
    co_return from_cache;
  }
  db_lookups.fetch_add(1, std::memory_order_relaxed);
  Lookup result;
  // Named, not a temporary inside the co_await expression: GCC 12 destroys such temporaries twice.
  auto query = [&repo = db, hash] { return repo.find_token_by_hash(hash); };
  try {
    result.row = co_await executor.run(std::move(query));
  } catch (const db::Unavailable& e) {
    log_db_error("token lookup", e);
    result.failure = LookupFailure::unavailable;
  } catch (const db::Error& e) {
    log_db_error("token lookup", e);
    result.failure = LookupFailure::error;
  }
  if (result.failure == LookupFailure::none) {
    database_answered();
    if (result.row) {
      // Inactive and expired rows are cached too: a client retrying a dead token is answered from memory.
      result.committed_at_read = cache_token(hash, *result.row, at, epoch);
    } else {
      tokens.erase(hash);  // a stale entry must not answer for a token the database no longer has
      unknown.put(hash, Unknown{}, at);
    }
  }
  lead.finish(result);
  co_return result;
}

net::awaitable<Authorization> TokenService::authorize(std::string_view authorization_header,
                                                      std::function<std::string()> admit, CachedAnswer cached_answer) {
  Impl& s = *impl_;
  Authorization out;
  Impl::StaleAnswer stale(s, out);
  // `authorization_header` is read only before the first suspension: the caller's buffer need not outlive it.
  const std::optional<std::string_view> credentials = detail::bearer_credentials(authorization_header);
  if (!credentials)
    co_return denial(std::move(out), Outcome::invalid_token, "Missing or malformed Authorization header");
  if (!util::is_well_formed_token(*credentials))
    co_return denial(std::move(out), Outcome::invalid_token, "Invalid token format");
  // Copied (the view lasts until the next call), into the frame: no allocation for the usual, cached, case.
  std::array<char, 64> hash_bytes{};
  const std::string_view hashed = detail::token_hash(*credentials);
  const std::string_view hash(hash_bytes.data(), std::min(hashed.size(), hash_bytes.size()));
  std::copy_n(hashed.data(), hash.size(), hash_bytes.data());
  const util::TimePoint at = s.now();

  TokenFacts facts;
  const auto read_cached = [&](const CachedToken& t) {
    out.token_id = t.id;
    out.token_hint = t.hint;
    out.project_id = t.project_id;
    facts = facts_of(t);
  };
  const bool cached = s.tokens.visit(hash, at, read_cached);
  if (!cached) {
    if (s.unknown.visit(hash, at, [](const Unknown&) {}))
      co_return denial(std::move(out), Outcome::token_not_found, "Token not found");
    // Stale-if-error: the last state the database confirmed, within CACHE_STALE_IF_ERROR past its TTL.
    bool answered = false;
    if (s.skip_database_for_stale()) {
      if (s.tokens.visit_stale(hash, at, read_cached)) {
        stale.used();
        answered = true;
      } else if (s.unknown.visit_stale(hash, at, [](const Unknown&) {})) {
        stale.used();
        co_return denial(std::move(out), Outcome::token_not_found, "Token not found");
      }
    }
    if (!answered) {
      const std::string key(hash);
      const Lookup found = co_await s.lookup_token(key, at);
      if (found.failure == LookupFailure::unavailable) {
        const bool known = s.tokens.visit_stale(hash, at, read_cached);
        if (!known && !s.unknown.visit_stale(hash, at, [](const Unknown&) {}))
          co_return denial(std::move(out), Outcome::service_unavailable, "Service temporarily unavailable");
        stale.used();
        if (!known) co_return denial(std::move(out), Outcome::token_not_found, "Token not found");
      } else if (found.failure == LookupFailure::error) {
        co_return denial(std::move(out), Outcome::service_unavailable, "Service temporarily unavailable");
      } else if (!found.row) {
        co_return denial(std::move(out), Outcome::token_not_found, "Token not found");
      } else {
        out.token_id = found.row->id;
        out.token_hint = found.row->token_hint;
        out.project_id = found.row->project_id;
        facts = facts_of(cached_from(*found.row, found.committed_at_read));
      }
    }
  }

  if (!facts.is_active) {
    s.audit_denied(out, "token revoked");
    co_return denial(std::move(out), Outcome::token_inactive, "Token is inactive");
  }
  if (facts.expires_at && at >= *facts.expires_at)
    co_return denial(std::move(out), Outcome::token_expired, "Token has expired");

  CachedProject project;  // facts only; the key goes straight into `out`
  const bool project_cached =
      s.projects.visit(out.project_id, at, [&](const CachedProject& p) { s.read_project(p, out, project); });
  if (!project_cached) {
    bool project_stale = false;
    if (s.skip_database_for_stale() &&
        s.projects.visit_stale(out.project_id, at, [&](const CachedProject& p) { s.read_project(p, out, project); })) {
      project_stale = true;
    } else {
      const bool loaded = co_await s.load_project_facts(out, at, project, project_stale);
      if (!loaded) co_return denial(std::move(out), Outcome::service_unavailable, "Service temporarily unavailable");
    }
    if (project_stale) stale.used();
  }
  if (s.judge_project(out, project)) co_return std::move(out);
  if (admit) {
    if (std::string refusal = admit(); !refusal.empty()) co_return denial(std::move(out), Outcome::not_admitted, refusal);
  }
  if (facts.max_tokens) {
    // The budget (SPEC §14): the row's LLM tokens plus this instance's not in that row (BudgetBook). Usage is
    // known only after an answer, so requests in flight when the budget runs out overshoot it (docs).
    out.has_budget = true;
    const std::int64_t used =
        facts.llm_tokens_used + s.usage->budgets.used_since(out.token_id, facts.committed_at_read);
    if (used >= *facts.max_tokens)
      co_return denial(std::move(out), Outcome::token_budget_exceeded, "Token budget of LLM tokens is used up");
  }
  if (facts.max_requests && facts.request_count >= *facts.max_requests) {
    // Used up when last read (counts only grow): refused from memory, before it could count against a rate
    // limit or cost a database round trip. Raising max_requests through this instance clears the cache entry.
    co_return denial(std::move(out), Outcome::rate_limit_exceeded, "Token request limit exceeded");
  }
  if (s.options.limiter && (facts.rate_limit_rpm || project.rate_limit_rpm)) {
    // Rate limits (SPEC §14): the token's and the project's, counted on both or on neither. Before the response
    // cache: a client over its limit is refused even for an answer the cache holds.
    std::vector<ratelimit::Rule> rules;
    if (facts.rate_limit_rpm) rules.push_back(ratelimit::Rule{"t:" + out.token_id, *facts.rate_limit_rpm});
    if (project.rate_limit_rpm) rules.push_back(ratelimit::Rule{"p:" + out.project_id, *project.rate_limit_rpm});
    const bool token_first = facts.rate_limit_rpm.has_value();
    auto acquire = s.options.limiter->acquire(std::move(rules));  // named: GCC 12 and co_await temporaries
    const ratelimit::Decision decision = co_await std::move(acquire);
    if (!decision.allowed && decision.unavailable) {
      co_return denial(std::move(out), Outcome::rate_limit_unavailable, "Rate limits cannot be checked right now");
    }
    if (!decision.allowed) {
      out.retry_after = decision.retry_after;
      const bool by_token = token_first && decision.refused_rule == 0;
      co_return denial(std::move(out), Outcome::rate_limited,
                       by_token ? "Token rate limit exceeded" : "Project rate limit exceeded");
    }
  }
  if (cached_answer) {
    auto lookup = cached_answer(out.project_id);  // named: GCC 12 and temporaries inside co_await
    if (co_await std::move(lookup)) {
      // Answered from the response cache: no quota, no request; a cache hit, flushed with the usage.
      s.usage->pending.add(out.token_id, 0, 1, at);
      out.outcome = Outcome::served_from_cache;
      co_return std::move(out);
    }
  }

  if (!facts.max_requests) {
    // Unlimited: no database round trip; the usage is written by the periodic flush.
    s.usage->pending.add(out.token_id, 1, 0, at);
    out.outcome = Outcome::authorized;
    co_return std::move(out);
  }

  // A quota: the database decides, whatever the cache says (exact across instances), in one atomic conditional
  // grant shared with the other requests for this token waiting on this instance (coalesced, SPEC §6.3). The
  // unit is counted before forwarding: a request that fails afterwards (upstream error, client gone) keeps it.
  const std::uint64_t epoch = s.token_epoch.load();
  const detail::QuotaGrant quota = co_await s.quota.acquire(out.token_id);
  if (quota.failed) {
    s.log_quota_error(*quota.error);
    co_return denial(std::move(out), Outcome::service_unavailable, "Service temporarily unavailable");
  }
  s.database_answered();

  // The row changed elsewhere (limit, expiry): refresh what the cache believes.
  const auto refresh = [&] {
    if (quota.row && (quota.row->max_requests != facts.max_requests || quota.row->expires_at != facts.expires_at)) {
      s.cache_token(hash, *quota.row, at, epoch);
    }
  };
  switch (quota.outcome) {
    case db::QuotaOutcome::accepted:
      refresh();
      out.outcome = Outcome::authorized;
      co_return std::move(out);
    case db::QuotaOutcome::exhausted:
      // Cached as used up: the next requests are refused without a round trip (the check before the limits).
      if (quota.row) s.cache_token(hash, *quota.row, at, epoch);
      co_return denial(std::move(out), Outcome::rate_limit_exceeded, "Token request limit exceeded");
    case db::QuotaOutcome::inactive:
      // Revoked after it was cached (possibly by another instance): remember the denial like any revoked row.
      if (quota.row) {
        s.cache_token(hash, *quota.row, at, epoch);
      } else {
        s.tokens.erase(hash);
      }
      s.audit_denied(out, "token revoked");
      co_return denial(std::move(out), Outcome::token_inactive, "Token is inactive");
    case db::QuotaOutcome::expired:
      refresh();
      co_return denial(std::move(out), Outcome::token_expired, "Token has expired");
    case db::QuotaOutcome::not_found:
      break;
  }
  s.tokens.erase(hash);
  s.unknown.put(hash, Unknown{}, at);
  co_return denial(std::move(out), Outcome::token_not_found, "Token not found");
}

#pragma GCC diagnostic pop

void TokenService::record_usage(const UsageRecord& r) {
  if (r.has_budget) impl_->usage->budgets.recorded(r.token_id, r.prompt_tokens + r.completion_tokens);
  const std::string day = util::format_day(r.at);
  impl_->usage->pending.add_request(
      detail::RequestUsage{r.token_id, r.project_id, r.model, day, r.prompt_tokens, r.completion_tokens, r.cache_hit});
}

void TokenService::invalidate_token(const std::string& token_id) {
  impl_->token_epoch.fetch_add(1);
  impl_->tokens.erase_if([&](std::string_view, const CachedToken& t) { return t.id == token_id; });
}

void TokenService::invalidate_project(const std::string& project_id) {
  impl_->project_epoch.fetch_add(1);
  impl_->token_epoch.fetch_add(1);
  impl_->projects.erase(project_id);
  impl_->tokens.erase_if([&](std::string_view, const CachedToken& t) { return t.project_id == project_id; });
}

void TokenService::start(net::io_context& io) {
  if (impl_->flush) return;
  impl_->flush = std::make_shared<FlushControl>(io);
  net::co_spawn(impl_->flush->strand,
                flush_loop(impl_->flush, impl_->usage, impl_->db, impl_->executor, impl_->options.usage_flush_interval),
                net::detached);
}

bool TokenService::stop_and_flush() {
  Impl& s = *impl_;
  s.stopped.store(true);
  if (s.flush) {
    s.flush->stopping.store(true);
    // The timer belongs to the strand. If the I/O threads are gone this never runs, and need not: the loop
    // will never resume.
    net::post(s.flush->strand, [control = s.flush] {
      if (control->timer != nullptr) control->timer->cancel();
    });
  }
  // A periodic flush may still be writing on the executor: let it finish so its deltas are either written or
  // back in the book before the final write.
  if (!s.usage->wait_settled(kSettleTimeout)) {
    log::write(log::Level::warn, "usage_flush_still_running", {{"waited_seconds", kSettleTimeout.count()}});
  }
  for (int attempt = 1;; ++attempt) {
    try {
      if (flush_blocking()) return true;
    } catch (const std::exception& e) {
      log::write(log::Level::warn, "usage_flush_failed", {{"error", e.what()}});
    }
    if (attempt == kFinalFlushAttempts) break;
    std::this_thread::sleep_for(kFinalFlushBackoff * attempt);
  }
  log::write(log::Level::error, "usage_lost",
             {{"tokens", s.usage->pending.pending_tokens()},
              {"requests", s.usage->pending.pending_requests()},
              {"daily_rows", s.usage->pending.pending_daily_rows()},
              {"message", "the database refused the final usage flush"}});
  return false;
}

bool TokenService::flush_blocking() {
  Impl& s = *impl_;
  db::UsageBatch deltas = s.usage->pending.take();
  if (deltas.empty()) {
    s.usage->last_flush_ns.store(steady_ns(), std::memory_order_relaxed);
    return true;
  }
  PendingBatch batch(s.usage, std::move(deltas));
  try {
    batch.write(s.db);
    return true;
  } catch (const db::Error& e) {
    log::write(log::Level::warn, "usage_flush_failed", {{"tokens", batch.tokens()}, {"error", e.what()}});
    return false;
  }
}

Stats TokenService::stats() const {
  const Impl& s = *impl_;
  Stats st;
  st.cache_hits = s.tokens.hits();
  st.cache_misses = s.db_lookups.load(std::memory_order_relaxed);
  st.shared_lookups = s.shared_lookups.load(std::memory_order_relaxed);
  st.negative_hits = s.unknown.hits();
  st.stale_served = s.stale_served.load(std::memory_order_relaxed);
  st.cached_tokens = s.tokens.size();
  st.pending_usage_tokens = s.usage->pending.pending_tokens();
  st.pending_usage_requests = s.usage->pending.pending_requests();
  // Rows of usage_daily can be pending alone (a quota token's request without LLM tokens): they count as lag too.
  if (st.pending_usage_tokens > 0 || s.usage->pending.pending_daily_rows() > 0) {
    const std::int64_t since = steady_ns() - s.usage->last_flush_ns.load(std::memory_order_relaxed);
    st.seconds_since_last_flush = static_cast<double>(std::max<std::int64_t>(since, 0)) / 1e9;
  }
  st.flush_failures = s.usage->flush_failures.load(std::memory_order_relaxed);
  const detail::QuotaCoalescerStats quota = s.quota.stats();
  st.quota_statements = quota.statements;
  st.quota_requests = quota.requests;
  st.quota_granted = quota.granted;
  return st;
}

void register_metrics(metrics::Registry& registry, lifecycle::Published<const TokenService> tokens) {
  const auto stat = [tokens](auto pick) {
    return [tokens, pick] {
      const TokenService* service = tokens.get();
      return service != nullptr ? static_cast<double>(pick(service->stats())) : 0.0;
    };
  };
  registry.add_counter("llm_proxy_token_cache_hits_total", "Token validations answered from the cache.",
                       stat([](const Stats& st) { return st.cache_hits; }));
  registry.add_counter("llm_proxy_token_cache_misses_total",
                       "Token lookups sent to the database (concurrent misses of one token share one).",
                       stat([](const Stats& st) { return st.cache_misses; }));
  registry.add_counter("llm_proxy_token_lookups_shared_total",
                       "Token cache misses answered by a database lookup already in flight for the same token.",
                       stat([](const Stats& st) { return st.shared_lookups; }));
  registry.add_counter("llm_proxy_stale_served_total",
                       "Requests answered from token or project cache entries past their TTL because the database "
                       "was unavailable (CACHE_STALE_IF_ERROR).",
                       stat([](const Stats& st) { return st.stale_served; }));
  registry.add_counter("llm_proxy_quota_grant_statements_total",
                       "Quota grant statements run (one per batch of concurrent requests for one quota token).",
                       stat([](const Stats& st) { return st.quota_statements; }));
  registry.add_counter("llm_proxy_quota_grant_requests_total",
                       "Requests on quota tokens answered by a grant statement (granted, refused or failed); "
                       "divided by llm_proxy_quota_grant_statements_total: requests per statement.",
                       stat([](const Stats& st) { return st.quota_requests; }));
  registry.add_counter("llm_proxy_quota_granted_total", "Quota units the database granted (requests let through).",
                       stat([](const Stats& st) { return st.quota_granted; }));
  registry.add_gauge("llm_proxy_token_cache_entries", "Tokens in the cache.",
                     stat([](const Stats& st) { return st.cached_tokens; }));
  registry.add_gauge("llm_proxy_usage_pending_deltas", "Tokens with usage not yet written to the database.",
                     stat([](const Stats& st) { return st.pending_usage_tokens; }));
  registry.add_gauge("llm_proxy_usage_flush_lag_seconds", "Seconds since usage was last written successfully.",
                     stat([](const Stats& st) { return st.seconds_since_last_flush; }));
}

}  // namespace llmproxy::auth
