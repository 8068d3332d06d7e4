#pragma once
/// Audit trail (SPEC §7.3): events are queued by any thread without blocking and written by one background
/// thread to the `audit_events` table and/or a JSON-lines file. While the database is unavailable, events stay
/// queued (bounded) and are retried. stop() flushes what is left.
#include <cstddef>
#include <memory>
#include <string>

#include "llmproxy/db/models.hpp"
#include "llmproxy/lifecycle/readiness.hpp"

namespace llmproxy::db {
class AuditRepository;
}
namespace llmproxy::metrics {
class Registry;
}

namespace llmproxy::audit {

struct Options {
  bool enabled = true;
  db::AuditRepository* repository = nullptr;  // null = do not store in the database
  std::string file_path;                      // empty = no file sink; parent directory is created
  std::size_t max_queue = 100000;             // beyond this, the oldest events are dropped (and counted)
  std::size_t batch_size = 500;
};

class Auditor {
 public:
  /// Throws std::runtime_error if the file cannot be opened.
  explicit Auditor(Options options);
  ~Auditor();  // stop()
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  /// Queues an event; fills `id` (uuid) and `timestamp` (now) when empty. Never blocks on I/O. Any thread.
  void record(db::AuditEvent event);
  /// Starts the writer thread.
  void start();
  /// Writes everything queued (waiting for the database up to a few seconds), then stops the thread.
  void stop();
  /// Blocks until the queue is empty or `timeout` passes (tests). Returns true if empty.
  bool wait_idle(std::chrono::milliseconds timeout);

  std::size_t pending() const;
  std::size_t dropped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Registers llm_proxy_audit_queue (pending()) and llm_proxy_audit_dropped_total (dropped()); they read 0 until
/// `auditor` is published.
void register_metrics(metrics::Registry& registry, lifecycle::Published<const Auditor> auditor);

}  // namespace llmproxy::audit
