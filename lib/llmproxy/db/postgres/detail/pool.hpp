#pragma once
/// A bounded pool of libpqxx connections handed out through an RAII lease.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "llmproxy/db/models.hpp"

namespace llmproxy::db::postgres::detail {

using Clock = std::chrono::steady_clock;

struct PoolSettings {
  std::string conninfo;  // secret (may hold a password): passed to libpq only, never printed
  std::string target;    // redacted form of DATABASE_URL, for messages
  int size = 10;
  int max_idle = 5;
  std::chrono::milliseconds max_lifetime{std::chrono::hours(1)};
  std::chrono::milliseconds checkout_timeout{std::chrono::seconds(5)};  // DATABASE_CONNECT_TIMEOUT
};

/// Up to `size` connections. Checkout takes the most recently returned idle connection, else opens a new one
/// while below `size`, else waits up to `checkout_timeout` and throws db::Unavailable. An idle connection is not
/// pinged: only a non-blocking look at its socket skips one the server has closed; one that is stale in a way
/// the socket does not show fails on its first statement, and the caller retries once on a fresh connection. On return a connection is
/// closed if the lease discarded it, if it is older than `max_lifetime` or if `max_idle` connections are idle
/// already. Every method is safe from any thread; network I/O (connect, close) never happens under the mutex.
class Pool {
 public:
  /// Runs once on every new connection before its first use (session settings, prepared statement names).
  using Setup = std::function<void(pqxx::connection&)>;

  Pool(PoolSettings settings, Setup setup);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    pqxx::connection& connection() { return *conn_; }
    /// True if an earlier lease used this connection (it came from the idle list).
    bool reused() const { return reused_; }
    /// Closes the connection instead of returning it (it broke, or its session state is unknown).
    void discard() { discard_ = true; }

   private:
    friend class Pool;
    Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn, Clock::time_point created, bool reused);

    Pool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    Clock::time_point created_;
    bool reused_;
    bool discard_ = false;
  };

  /// Throws db::Unavailable (pool exhausted for checkout_timeout, or cannot connect).
  Lease acquire();
  /// Like acquire() but never hands out an idle connection: opens a new one, closing the oldest idle one when
  /// the pool is full. Used for the single retry after a reused connection turned out to be broken.
  Lease acquire_fresh();

  /// Never blocks on the database (the mutex is only ever held for bookkeeping).
  PoolStats stats() const;
  const PoolSettings& settings() const { return settings_; }

 private:
  struct Idle {
    std::unique_ptr<pqxx::connection> conn;
    Clock::time_point created;
  };

  Lease checkout(bool fresh);
  Lease open_reserved();  // a slot is reserved (open_ and in_use_ counted) by the caller
  void give_back(std::unique_ptr<pqxx::connection> conn, Clock::time_point created, bool discard);
  bool expired(Clock::time_point created, Clock::time_point now) const;

  const PoolSettings settings_;
  const Setup setup_;

  mutable std::mutex mutex_;  // guards the members below; held for bookkeeping only
  std::condition_variable returned_;
  std::vector<Idle> idle_;  // back() = most recently returned
  std::int64_t open_ = 0;   // idle + leased + being opened
  std::int64_t in_use_ = 0;
  std::int64_t waiting_ = 0;
  std::int64_t waits_total_ = 0;
  std::int64_t failures_total_ = 0;
};

}  // namespace llmproxy::db::postgres::detail
