#include "llmproxy/db/postgres/detail/pool.hpp"

#include <poll.h>

#include <exception>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/connection.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"

namespace llmproxy::db::postgres::detail {

Pool::Lease::Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn, Clock::time_point created, bool reused)
    : pool_(pool), conn_(std::move(conn)), created_(created), reused_(reused) {}

Pool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      conn_(std::move(other.conn_)),
      created_(other.created_),
      reused_(other.reused_),
      discard_(other.discard_) {}

Pool::Lease::~Lease() {
  if (pool_ == nullptr || !conn_) return;
  try {
    pool_->give_back(std::move(conn_), created_, discard_);
  } catch (...) {  // bookkeeping only (allocation); the connection is closed by conn_'s destructor
  }
}

Pool::Pool(PoolSettings settings, Setup setup) : settings_(std::move(settings)), setup_(std::move(setup)) {}

// Every lease has been returned by now (the owner outlives its callers); idle connections close here.
Pool::~Pool() = default;

namespace {

// Whether the server closed this idle connection (restart, idle timeout, pg_terminate_backend), told without a
// round trip: a healthy idle connection has nothing to read, a closed one has the server's goodbye (FATAL and
// EOF) waiting in the socket. A silently dropped network path is not detected here; the caller's single retry
// on a fresh connection covers it.
bool closed_by_server(pqxx::connection& conn) {
  // A few rounds: the goodbye can take two reads (the FATAL message, then EOF).
  for (int round = 0; round < 4; ++round) {
    pollfd p{conn.sock(), POLLIN, 0};
    if (p.fd < 0) return true;
    if (::poll(&p, 1, 0) <= 0) return false;
    try {
      conn.get_notifs();  // reads what arrived; throws broken_connection at EOF
    } catch (const std::exception&) {
      return true;
    }
    if (!conn.is_open()) return true;
  }
  return false;
}

}  // namespace

Pool::Lease Pool::acquire() {
  for (;;) {
    Lease lease = checkout(false);
    if (!lease.reused() || !closed_by_server(lease.connection())) return lease;
    lease.discard();  // and take the next idle connection, or open a new one
  }
}

Pool::Lease Pool::acquire_fresh() { return checkout(true); }

bool Pool::expired(Clock::time_point created, Clock::time_point now) const {
  return settings_.max_lifetime.count() > 0 && now - created >= settings_.max_lifetime;
}

Pool::Lease Pool::checkout(bool fresh) {
  const auto started = Clock::now();
  const auto deadline = started + settings_.checkout_timeout;
  // Declared before the lock, so connections dropped below are closed after the mutex is released.
  std::vector<std::unique_ptr<pqxx::connection>> to_close;
  std::unique_lock lock(mutex_);
  bool counted_wait = false;
  for (;;) {
    if (!fresh) {
      const auto now = Clock::now();
      while (!idle_.empty()) {
        Idle idle = std::move(idle_.back());
        idle_.pop_back();
        if (expired(idle.created, now)) {
          --open_;
          to_close.push_back(std::move(idle.conn));
          continue;
        }
        ++in_use_;
        lock.unlock();
        return Lease(this, std::move(idle.conn), idle.created, true);
      }
    }
    if (open_ < settings_.size) {
      ++open_;
      ++in_use_;
      lock.unlock();
      to_close.clear();
      return open_reserved();
    }
    if (fresh && !idle_.empty()) {
      // Full, but an idle connection can make room: close the oldest one (most likely stale as well).
      to_close.push_back(std::move(idle_.front().conn));
      idle_.erase(idle_.begin());
      --open_;
      continue;
    }
    if (!counted_wait) {
      counted_wait = true;
      ++waits_total_;
    }
    ++waiting_;
    const bool ready =
        returned_.wait_until(lock, deadline, [&] { return !idle_.empty() || open_ < settings_.size; });
    --waiting_;
    if (!ready) {
      ++failures_total_;
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
      throw db::Unavailable("database pool exhausted: all " + std::to_string(settings_.size) +
                            " connections stayed in use for " + std::to_string(waited) +
                            " ms (raise DATABASE_POOL_SIZE or look for slow statements)");
    }
  }
}

Pool::Lease Pool::open_reserved() {
  // A connection's age (DATABASE_CONN_MAX_LIFETIME) counts from when it began to be opened, as the server sees
  // its session: connecting and the session setup are part of its life.
  const auto opened = Clock::now();
  try {
    auto conn = connect(settings_.conninfo, settings_.target);
    if (setup_) setup_(*conn);
    return Lease(this, std::move(conn), opened, false);
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      --open_;
      --in_use_;
      ++failures_total_;
    }
    // A waiter may now open a connection in the freed slot (and fail fast the same way if the server is down).
    returned_.notify_one();
    rethrow_as_db_error("opening a connection to " + settings_.target);
  }
}

void Pool::give_back(std::unique_ptr<pqxx::connection> conn, Clock::time_point created, bool discard) {
  bool close = discard || !conn->is_open() || expired(created, Clock::now());
  {
    std::lock_guard lock(mutex_);
    --in_use_;
    if (!close && static_cast<std::int64_t>(idle_.size()) >= settings_.max_idle) close = true;
    if (close) {
      --open_;
    } else {
      idle_.push_back(Idle{std::move(conn), created});
    }
  }
  returned_.notify_one();
  // A connection not kept is closed here by `conn`'s destructor, outside the mutex.
}

PoolStats Pool::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats s;
  s.size = settings_.size;
  s.open = open_;
  s.in_use = in_use_;
  s.idle = static_cast<std::int64_t>(idle_.size());
  s.waiting = waiting_;
  s.waits_total = waits_total_;
  s.failures_total = failures_total_;
  return s;
}

}  // namespace llmproxy::db::postgres::detail
