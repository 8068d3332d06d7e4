#include "llmproxy/db/sqlite/detail/pool.hpp"

#include <SQLiteCpp/Exception.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "llmproxy/db/errors.hpp"

namespace llmproxy::db::sqlite::detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kMemoryPath = ":memory:";

void create_parent_directory(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw Unavailable("sqlite: cannot create directory " + parent.string() + ": " + ec.message());
}

}  // namespace

Pool::Lease::Lease(Pool* pool, Connection* conn, std::unique_ptr<Connection> reader)
    : pool_(pool), conn_(conn), reader_(std::move(reader)) {}

Pool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      conn_(other.conn_),
      reader_(std::move(other.reader_)),
      discard_(other.discard_) {}

Pool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->give_back(*this);
}

Pool::Pool(PoolSettings settings) : settings_(std::move(settings)), memory_(settings_.path == kMemoryPath) {
  if (!memory_) create_parent_directory(settings_.path);
  try {
    writer_ = std::make_unique<Connection>(settings_.path, Role::writer, settings_.busy_timeout);
  } catch (const SQLite::Exception& e) {
    throw Unavailable("sqlite: cannot open database " + settings_.path + ": " + e.what());
  }
}

Pool::~Pool() = default;

Pool::Lease Pool::writer(std::chrono::milliseconds timeout, std::string_view setting) {
  std::unique_lock lock(writer_mutex_);
  if (writer_held_) {
    waits_total_.fetch_add(1, std::memory_order_relaxed);
    ++writer_waiting_;
    const bool free = writer_free_.wait_for(lock, timeout, [&] { return !writer_held_; });
    --writer_waiting_;
    if (!free) {
      failures_total_.fetch_add(1, std::memory_order_relaxed);
      throw Unavailable("sqlite: timed out after " + std::to_string(timeout.count()) +
                        "ms waiting for the writer connection (" + std::string(setting) + ")");
    }
  }
  writer_held_ = true;
  return Lease(this, writer_.get(), nullptr);
}

Pool::Lease Pool::reader() {
  if (memory_) return writer();
  auto conn = checkout_reader();
  Connection* raw = conn.get();
  return Lease(this, raw, std::move(conn));
}

std::unique_ptr<Connection> Pool::checkout_reader() {
  std::unique_lock lock(reader_mutex_);
  const auto deadline = Clock::now() + settings_.checkout_timeout;
  const std::int64_t size = std::max(settings_.readers, 1);
  bool counted_wait = false;
  for (;;) {
    if (!idle_readers_.empty()) {
      auto conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      ++readers_in_use_;
      return conn;
    }
    if (readers_open_ < size) {
      // Reserve the slot, then open outside the lock: opening touches the file.
      ++readers_open_;
      ++readers_in_use_;
      lock.unlock();
      try {
        return std::make_unique<Connection>(settings_.path, Role::reader, settings_.busy_timeout);
      } catch (...) {
        lock.lock();
        --readers_open_;
        --readers_in_use_;
        failures_total_.fetch_add(1, std::memory_order_relaxed);
        lock.unlock();
        reader_returned_.notify_one();
        throw;
      }
    }
    if (!counted_wait) {
      counted_wait = true;
      waits_total_.fetch_add(1, std::memory_order_relaxed);
    }
    ++readers_waiting_;
    const bool ready =
        reader_returned_.wait_until(lock, deadline, [&] { return !idle_readers_.empty() || readers_open_ < size; });
    --readers_waiting_;
    if (!ready) {
      failures_total_.fetch_add(1, std::memory_order_relaxed);
      throw Unavailable("sqlite: timed out after " + std::to_string(settings_.checkout_timeout.count()) +
                        "ms waiting for a free reader connection (DATABASE_POOL_SIZE=" + std::to_string(size) + ")");
    }
  }
}

void Pool::give_back(Lease& lease) {
  if (!lease.reader_) {
    {
      std::lock_guard lock(writer_mutex_);
      writer_held_ = false;
    }
    writer_free_.notify_one();
    return;
  }
  std::unique_ptr<Connection> dropped;  // closed after the lock is released
  {
    std::lock_guard lock(reader_mutex_);
    --readers_in_use_;
    if (lease.discard_) {
      --readers_open_;
      dropped = std::move(lease.reader_);
    } else {
      idle_readers_.push_back(std::move(lease.reader_));
    }
  }
  reader_returned_.notify_one();
}

PoolStats Pool::stats() const {
  // Counts cover every connection: the writer (the only one for ":memory:") plus the readers.
  PoolStats stats;
  stats.waits_total = waits_total_.load(std::memory_order_relaxed);
  stats.failures_total = failures_total_.load(std::memory_order_relaxed);
  stats.size = 1;
  stats.open = 1;
  {
    std::lock_guard lock(writer_mutex_);
    stats.in_use = writer_held_ ? 1 : 0;
    stats.waiting = writer_waiting_;
  }
  if (!memory_) {
    std::lock_guard lock(reader_mutex_);
    stats.size += std::max(settings_.readers, 1);
    stats.open += readers_open_;
    stats.in_use += readers_in_use_;
    stats.waiting += readers_waiting_;
  }
  stats.idle = stats.open - stats.in_use;
  return stats;
}

}  // namespace llmproxy::db::sqlite::detail
