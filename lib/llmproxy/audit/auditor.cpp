#include "llmproxy/audit/auditor.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "llmproxy/db/database.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::audit {

namespace {

using Clock = std::chrono::steady_clock;

/// Pause before retrying a failed database write: doubles from the first to the last value.
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
/// How long stop() keeps retrying the database before giving up on what is left.
constexpr std::chrono::seconds kStopDeadline{5};

/// A queued event and whether its file line is already written (a retried batch is not written twice).
struct Entry {
  db::AuditEvent event;
  bool filed = false;
};

nlohmann::json optional_text(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

/// One JSON object with every field of the event; missing ones are null. `metadata` is embedded as JSON when it
/// parses, else as its text.
std::string json_line(const db::AuditEvent& e) {
  nlohmann::json j = nlohmann::json::object();
  j["id"] = e.id;
  j["timestamp"] = util::format_time(e.timestamp);
  j["action"] = e.action;
  j["actor"] = e.actor;
  j["outcome"] = e.outcome;
  j["project_id"] = optional_text(e.project_id);
  j["token_id"] = optional_text(e.token_id);
  j["request_id"] = optional_text(e.request_id);
  j["correlation_id"] = optional_text(e.correlation_id);
  j["client_ip"] = optional_text(e.client_ip);
  j["method"] = optional_text(e.method);
  j["path"] = optional_text(e.path);
  j["user_agent"] = optional_text(e.user_agent);
  j["reason"] = optional_text(e.reason);
  if (e.metadata) {
    nlohmann::json parsed = nlohmann::json::parse(*e.metadata, nullptr, /*allow_exceptions=*/false);
    j["metadata"] = parsed.is_discarded() ? nlohmann::json(*e.metadata) : std::move(parsed);
  } else {
    j["metadata"] = nullptr;
  }
  // Invalid UTF-8 from a client (user agent, path) is replaced rather than failing the whole line.
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct Auditor::Impl {
  explicit Impl(Options o) : options(std::move(o)) {
    if (options.batch_size == 0) options.batch_size = 1;
    if (options.max_queue == 0) options.max_queue = 1;
  }

  Options options;     // immutable after construction
  std::ofstream file;  // touched only by the writer (the thread draining the queue)

  mutable std::mutex mutex;      // guards everything below
  std::condition_variable wake;  // writer: work arrived or stop requested
  std::condition_variable idle;  // waiters: the queue and the in-flight batch are empty
  std::deque<Entry> queue;       // oldest first; a batch being retried is back at the front
  std::size_t in_flight = 0;     // events taken by the writer and not yet settled
  std::size_t dropped = 0;       // events discarded (queue overflow, or still failing at stop)
  bool stopping = false;         // stop() called: drain, then exit
  bool draining = false;         // a thread (writer or stop()) is draining: only one at a time
  std::thread writer;            // started and joined by the owner's thread only (start(), stop())

  /// Drops the oldest entries beyond max_queue. Caller holds `mutex`.
  void enforce_bound() {
    while (queue.size() > options.max_queue) {
      queue.pop_front();
      ++dropped;
    }
  }

  bool is_idle() const { return queue.empty() && in_flight == 0; }

  /// Appends the lines of entries not written yet and flushes. File errors are logged, never retried: the
  /// database is the sink of record.
  void write_file(std::vector<Entry>& batch) {
    if (!file.is_open()) return;
    for (Entry& entry : batch) {
      if (entry.filed) continue;
      file << json_line(entry.event) << '\n';
      entry.filed = true;
    }
    file.flush();
    if (!file) {
      log::write(log::Level::error, "audit_file_write_failed", {{"path", options.file_path}});
      file.clear();
    }
  }

  /// Stores `batch` in the database and removes what is done from it. Returns the error if the database is
  /// unavailable: the entries left in `batch` are then to be retried. An event the database refuses for its
  /// content (constraint, duplicate id of an event already stored by an attempt reported as failed) would block
  /// the queue forever if retried: the batch is then written event by event and refused events are dropped
  /// (counted in `rejected`). Runs without the lock.
  std::string store(std::vector<Entry>& batch, std::size_t& rejected) {
    if (options.repository == nullptr) {
      batch.clear();
      return {};
    }
    std::vector<db::AuditEvent> events;
    events.reserve(batch.size());
    for (const Entry& entry : batch) events.push_back(entry.event);
    try {
      options.repository->insert_audit_events(events);
      batch.clear();
      return {};
    } catch (const db::Unavailable& e) {
      return e.what();
    } catch (const std::exception&) {
      // Isolate the bad event(s) below.
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      try {
        options.repository->insert_audit_events({events[i]});
      } catch (const db::Unavailable& e) {
        batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(i));
        return e.what();
      } catch (const std::exception& e) {
        ++rejected;
        log::write(log::Level::error, "audit_event_rejected",
                   {{"id", events[i].id}, {"action", events[i].action}, {"error", e.what()}});
      }
    }
    batch.clear();
    return {};
  }

  /// How long drain() runs: the writer thread waits for events until stop(); a drain on the thread calling
  /// stop() (writer never started) returns once the queue is empty.
  enum class Until { stopped, empty };

  /// Writes batches until the queue is empty and (for Until::stopped) stop was requested. Runs on the writer
  /// thread, or on the thread calling stop() when the writer was never started.
  void drain(Until until) {
    std::unique_lock lock(mutex);
    std::chrono::milliseconds backoff = kFirstBackoff;
    std::optional<Clock::time_point> give_up_at;  // set once stopping: bounds the retries
    bool failing = false;                         // log the start and the end of an outage only
    for (;;) {
      if (until == Until::stopped) wake.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) break;
      if (stopping && !give_up_at) {
        give_up_at = Clock::now() + kStopDeadline;
        backoff = kFirstBackoff;  // retry promptly within the deadline
      }

      std::vector<Entry> batch;
      const std::size_t n = std::min(queue.size(), options.batch_size);
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      in_flight = n;
      lock.unlock();

      write_file(batch);
      std::size_t rejected = 0;
      const std::string error = store(batch, rejected);

      // Logged without the lock: record() must never wait for the log sink.
      if (error.empty() && failing) log::write(log::Level::info, "audit_database_recovered");
      if (!error.empty() && !failing) {
        log::write(log::Level::warn, "audit_database_write_failed",
                   {{"events", batch.size()}, {"error", error}, {"message", "events kept in memory and retried"}});
      }
      failing = !error.empty();

      lock.lock();
      in_flight = 0;
      dropped += rejected;
      if (!failing) {
        backoff = kFirstBackoff;
        if (is_idle()) idle.notify_all();
        continue;
      }
      if (give_up_at && Clock::now() >= *give_up_at) {
        // Shutdown and the database is still unavailable: what is left cannot be kept anywhere.
        const std::size_t lost = batch.size() + queue.size();
        dropped += lost;
        queue.clear();
        lock.unlock();
        log::write(log::Level::error, "audit_events_lost", {{"events", lost}, {"error", error}});
        lock.lock();
        break;
      }
      // Back at the front, in order, so nothing newer overtakes it; overflow then drops the oldest first.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue.push_front(std::move(*it));
      enforce_bound();
      // Waits on the condition variable so that stop() ends the pause at once (and sets the deadline).
      std::chrono::milliseconds pause = backoff;
      if (give_up_at) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*give_up_at - Clock::now());
        pause = std::clamp(left, std::chrono::milliseconds(1), backoff);
      }
      const bool was_stopping = stopping;
      wake.wait_for(lock, pause, [&] { return stopping != was_stopping; });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
    if (is_idle()) idle.notify_all();
  }
};

Auditor::Auditor(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  if (!s.options.enabled || s.options.file_path.empty()) return;
  const std::filesystem::path path(s.options.file_path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  s.file.open(path, std::ios::out | std::ios::app);
  if (!s.file.is_open()) {
    throw std::runtime_error("cannot open the audit log file " + s.options.file_path +
                             (ec ? " (" + ec.message() + ")" : std::string()));
  }
}

Auditor::~Auditor() { stop(); }

void Auditor::record(db::AuditEvent event) {
  Impl& s = *impl_;
  if (!s.options.enabled) return;
  if (event.id.empty()) event.id = util::uuid_v4();
  if (event.timestamp == util::TimePoint{}) event.timestamp = util::now();
  {
    std::lock_guard lock(s.mutex);
    s.queue.push_back(Entry{std::move(event), false});
    s.enforce_bound();
  }
  s.wake.notify_one();
}

void Auditor::start() {
  Impl& s = *impl_;
  if (!s.options.enabled) return;
  std::lock_guard lock(s.mutex);
  if (s.writer.joinable() || s.stopping) return;
  s.draining = true;
  s.writer = std::thread([&s] { s.drain(Impl::Until::stopped); });
}

void Auditor::stop() {
  Impl& s = *impl_;
  bool run_here = false;
  {
    std::lock_guard lock(s.mutex);
    s.stopping = true;
    // Never started: drain on this thread so stop() still writes what was recorded.
    if (!s.draining) run_here = s.draining = true;
  }
  s.wake.notify_all();
  if (s.writer.joinable()) s.writer.join();
  if (run_here) s.drain(Impl::Until::empty);
}

bool Auditor::wait_idle(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  return s.idle.wait_for(lock, timeout, [&] { return s.is_idle(); });
}

std::size_t Auditor::pending() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->queue.size() + impl_->in_flight;
}

std::size_t Auditor::dropped() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->dropped;
}

void register_metrics(metrics::Registry& registry, lifecycle::Published<const Auditor> auditor) {
  registry.add_gauge("llm_proxy_audit_queue", "Audit events waiting to be written.", [auditor] {
    const Auditor* a = auditor.get();
    return a != nullptr ? static_cast<double>(a->pending()) : 0.0;
  });
  registry.add_counter("llm_proxy_audit_dropped_total", "Audit events dropped (queue overflow or refused rows).",
                       [auditor] {
                         const Auditor* a = auditor.get();
                         return a != nullptr ? static_cast<double>(a->dropped()) : 0.0;
                       });
}

}  // namespace llmproxy::audit
