#pragma once
/// The SQLite connections of one database, handed out through an RAII lease: one writer (every write, one at a
/// time) and up to `readers` read-only connections opened on demand. A ":memory:" database has only the writer,
/// which then serves reads too. The twin of db/postgres/detail/pool.hpp.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "llmproxy/db/models.hpp"
#include "llmproxy/db/sqlite/detail/connection.hpp"

namespace llmproxy::db::sqlite::detail {

struct PoolSettings {
  std::string path;  // file, or ":memory:"
  int readers = 10;  // DATABASE_POOL_SIZE
  std::chrono::milliseconds checkout_timeout{std::chrono::seconds(5)};  // DATABASE_CONNECT_TIMEOUT
  std::chrono::milliseconds busy_timeout{std::chrono::seconds(5)};      // DATABASE_STATEMENT_TIMEOUT
};

/// Every method is safe from any thread. The mutexes guard bookkeeping only and are never held while a
/// connection does database work or while one is opened.
class Pool {
 public:
  /// Creates the parent directory and opens the writer (which creates the file and switches it to WAL).
  /// Throws db::Unavailable if either fails.
  explicit Pool(PoolSettings settings);
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

    Connection& connection() { return *conn_; }
    /// Closes a reader instead of returning it (its file handle failed). No effect on the writer.
    void discard() { discard_ = true; }

   private:
    friend class Pool;
    Lease(Pool* pool, Connection* conn, std::unique_ptr<Connection> reader);

    Pool* pool_;
    Connection* conn_;
    std::unique_ptr<Connection> reader_;  // set for a reader; the writer stays owned by the pool
    bool discard_ = false;
  };

  /// The writer, exclusively; waits at most `timeout`, then throws db::Unavailable naming `setting`.
  Lease writer(std::chrono::milliseconds timeout, std::string_view setting);
  /// The writer within DATABASE_CONNECT_TIMEOUT.
  Lease writer() { return writer(settings_.checkout_timeout, "DATABASE_CONNECT_TIMEOUT"); }
  /// A reader (":memory:": the writer); waits at most DATABASE_CONNECT_TIMEOUT, then throws db::Unavailable.
  Lease reader();

  PoolStats stats() const;
  bool memory() const { return memory_; }

 private:
  std::unique_ptr<Connection> checkout_reader();
  void give_back(Lease& lease);

  const PoolSettings settings_;
  const bool memory_;

  // The writer, used only while writer_held_ is set by a lease. writer_mutex_ guards the two counters below it.
  std::unique_ptr<Connection> writer_;
  mutable std::mutex writer_mutex_;
  std::condition_variable writer_free_;
  bool writer_held_ = false;
  std::int64_t writer_waiting_ = 0;

  // The readers. reader_mutex_ guards the members below it.
  mutable std::mutex reader_mutex_;
  std::condition_variable reader_returned_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  std::int64_t readers_open_ = 0;  // idle + leased + being opened
  std::int64_t readers_in_use_ = 0;
  std::int64_t readers_waiting_ = 0;

  // Statistics shared by both halves; atomics, so stats() takes no lock that database work holds.
  std::atomic<std::int64_t> waits_total_{0};
  std::atomic<std::int64_t> failures_total_{0};
};

}  // namespace llmproxy::db::sqlite::detail
