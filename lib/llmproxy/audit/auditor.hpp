#pragma once
/// Audit trail (SPEC §7.3): events are queued by any thread without blocking and written by one background
/// thread to the `audit_events` table and/or a JSON-lines file. While the database is unavailable, events stay
/// queued (bounded) and are retried. stop() flushes what is left.
///
/// Two kinds of events share the queue: `proxy.*` events (caused by API clients, unbounded in number) and
/// management events (everything else: management API mutations, management.auth_failed, server.*). When the
/// queue is full the oldest proxy event is dropped first; a management event is dropped only when the queue
/// holds nothing else. Repetitive events (denials of one token, failed management logins from one address) go
/// through record_coalesced(): one row at once, then at most one summary row per key and interval.
#include <chrono>
#include <cstddef>
#include <cstdint>
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
  std::size_t max_queue = 100000;             // beyond this, the oldest proxy.* event is dropped (and counted);
                                              // the writer's batch in flight (<= batch_size) comes on top
  std::size_t batch_size = 500;
  std::chrono::milliseconds coalesce_interval{60000};  // record_coalesced(): one window per key and interval
  std::size_t coalesce_max_keys = 10000;               // open windows; a new key beyond this is dropped
};

/// Which events a drop counter counts: `proxy.*` actions, or every other (management, system) action.
enum class Kind { proxy, management };
Kind kind_of(const db::AuditEvent& event);

class Auditor {
 public:
  /// Throws std::runtime_error if the file cannot be opened.
  explicit Auditor(Options options);
  ~Auditor();  // stop()
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  /// Queues an event; fills `id` (uuid) and `timestamp` (now) when empty. Never blocks on I/O. Any thread.
  void record(db::AuditEvent event);
  /// Coalesces repetitions of one kind of event (SPEC §7.3): the first event of `key` is queued at once with
  /// `"count": 1` added to its metadata and opens a window of `coalesce_interval`; the next ones within the
  /// window are only counted. When the window ends (checked by the writer about once a second, by the next
  /// event of the key, and by stop()) and it counted any, one summary row is queued: the first event's fields,
  /// a new id, the timestamp of the last repetition and metadata `"count"` (repetitions folded into it),
  /// `"first_seen"`, `"last_seen"`, `"summary": true`, `"interval_seconds"`; the window then starts over, so a
  /// steady flood gives one row per interval. A window that counted nothing closes: the next event of its key
  /// is queued at once again. The counts of a key's rows add up to the events recorded. At most
  /// `coalesce_max_keys` windows are open; an event with a new key beyond that is dropped (and counted).
  /// Never blocks on I/O. Any thread.
  void record_coalesced(std::string key, db::AuditEvent event);
  /// The same with the key `action|actor|token_id|project_id|reason|client_ip` of `event`.
  void record_coalesced(db::AuditEvent event);
  /// Starts the writer thread.
  void start();
  /// Writes everything queued (waiting for the database up to a few seconds), then stops the thread.
  void stop();
  /// Blocks until the queue is empty or `timeout` passes (tests). Returns true if empty.
  bool wait_idle(std::chrono::milliseconds timeout);

  std::size_t pending() const;
  std::size_t dropped() const;
  std::size_t dropped(Kind kind) const;
  /// Events folded into a coalescing window so far (not yet or already summarized).
  std::uint64_t coalesced() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Registers llm_proxy_audit_queue (pending()), llm_proxy_audit_dropped_total{kind="proxy"|"management"}
/// (dropped(kind)) and llm_proxy_audit_coalesced_total (coalesced()); they read 0 until `auditor` is published.
void register_metrics(metrics::Registry& registry, lifecycle::Published<const Auditor> auditor);

}  // namespace llmproxy::audit
