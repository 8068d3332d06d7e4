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
#include <string_view>
#include <thread>
#include <unordered_map>
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

/// A queued event, its place in the order of record() calls, and whether its file line is already written (a
/// retried batch is not written twice).
struct Entry {
  db::AuditEvent event;
  std::uint64_t seq = 0;
  bool filed = false;
};

/// How often the writer closes the coalescing windows that have ended.
constexpr std::chrono::milliseconds kSweepEvery{1000};

/// An open coalescing window of one key.
struct Window {
  Clock::time_point opened;
  db::AuditEvent first;  // the event that opened it (already queued): the template of the summary
  std::uint64_t repeats = 0;
  util::TimePoint first_seen{}, last_seen{};
};

/// `metadata` (a JSON object text, or nothing) with `fields` merged in. Metadata that is not an object is kept
/// under "metadata".
std::string merged_metadata(const std::optional<std::string>& metadata, const nlohmann::json& fields) {
  nlohmann::json j = nlohmann::json::object();
  if (metadata) {
    nlohmann::json parsed = nlohmann::json::parse(*metadata, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) {
      j = std::move(parsed);
    } else {
      j["metadata"] = *metadata;
    }
  }
  for (const auto& [k, v] : fields.items()) j[k] = v;
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

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
  // Oldest first; a batch being retried is back at the front. Two queues so that overflow drops proxy events
  // first; the writer merges them back into record order by `seq`.
  std::deque<Entry> proxy_queue;
  std::deque<Entry> management_queue;
  std::uint64_t next_seq = 0;
  std::size_t in_flight = 0;           // events taken by the writer and not yet settled
  std::size_t dropped_proxy = 0;       // events discarded (overflow, refused rows, still failing at stop)
  std::size_t dropped_management = 0;  // the same for every other action
  std::unordered_map<std::string, Window> windows;  // open coalescing windows, at most coalesce_max_keys
  std::uint64_t coalesced = 0;                      // repetitions folded into windows
  Clock::time_point last_sweep = Clock::now();
  bool stopping = false;         // stop() called: drain, then exit
  bool draining = false;         // a thread (writer or stop()) is draining: only one at a time
  std::thread writer;            // started and joined by the owner's thread only (start(), stop())

  std::size_t queued() const { return proxy_queue.size() + management_queue.size(); }
  bool queue_empty() const { return proxy_queue.empty() && management_queue.empty(); }

  void count_drop(const db::AuditEvent& event, std::size_t n = 1) {
    (kind_of(event) == Kind::proxy ? dropped_proxy : dropped_management) += n;
  }

  /// Drops entries beyond max_queue: the oldest proxy event first, a management event only when no proxy event
  /// is left. Caller holds `mutex`.
  void enforce_bound() {
    while (queued() > options.max_queue) {
      if (!proxy_queue.empty()) {
        proxy_queue.pop_front();
        ++dropped_proxy;
      } else {
        management_queue.pop_front();
        ++dropped_management;
      }
    }
  }

  /// Queues `event` (id and timestamp already set). Caller holds `mutex`.
  void push(db::AuditEvent event) {
    auto& queue = kind_of(event) == Kind::proxy ? proxy_queue : management_queue;
    queue.push_back(Entry{std::move(event), next_seq++, false});
    enforce_bound();
  }

  /// Takes the oldest queued entry (smallest seq of the two fronts). Caller holds `mutex`; queue not empty.
  Entry pop_oldest() {
    const bool from_proxy = management_queue.empty() ||
                            (!proxy_queue.empty() && proxy_queue.front().seq < management_queue.front().seq);
    auto& queue = from_proxy ? proxy_queue : management_queue;
    Entry e = std::move(queue.front());
    queue.pop_front();
    return e;
  }

  /// Queues the summary of `w` if it folded any repetition. Caller holds `mutex`.
  void close_window(const Window& w) {
    if (w.repeats == 0) return;
    db::AuditEvent summary = w.first;
    summary.id = util::uuid_v4();
    summary.timestamp = w.last_seen;
    summary.metadata = merged_metadata(
        w.first.metadata,
        {{"count", w.repeats},
         {"first_seen", util::format_time(w.first_seen)},
         {"last_seen", util::format_time(w.last_seen)},
         {"summary", true},
         {"interval_seconds", std::chrono::duration<double>(options.coalesce_interval).count()}});
    push(std::move(summary));
  }

  /// Ends the windows that are older than the interval (all of them if `all`): a window that folded
  /// repetitions is summarized and starts over empty at `now` (a steady flood gives one row per interval); an
  /// empty one is closed (the next event of its key is queued at once again). Caller holds `mutex`.
  void sweep(Clock::time_point now, bool all) {
    last_sweep = now;
    for (auto it = windows.begin(); it != windows.end();) {
      Window& w = it->second;
      if (!all && now - w.opened < options.coalesce_interval) {
        ++it;
        continue;
      }
      close_window(w);
      if (w.repeats == 0 || all) {
        it = windows.erase(it);
      } else {
        w.opened = now;
        w.repeats = 0;
        ++it;
      }
    }
  }

  bool is_idle() const { return queue_empty() && in_flight == 0; }

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
  std::string store(std::vector<Entry>& batch, std::size_t& rejected_proxy, std::size_t& rejected_management) {
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
        ++(kind_of(events[i]) == Kind::proxy ? rejected_proxy : rejected_management);
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
      if (until == Until::stopped) {
        // Wakes about once a second while coalescing windows are open, to close the ones that ended.
        while (!stopping && queue_empty()) {
          if (windows.empty()) {
            wake.wait(lock);
          } else {
            wake.wait_until(lock, last_sweep + kSweepEvery);
          }
          if (Clock::now() - last_sweep >= kSweepEvery) sweep(Clock::now(), false);
        }
      }
      if (Clock::now() - last_sweep >= kSweepEvery) sweep(Clock::now(), false);
      if (queue_empty()) break;
      if (stopping && !give_up_at) {
        give_up_at = Clock::now() + kStopDeadline;
        backoff = kFirstBackoff;  // retry promptly within the deadline
      }

      std::vector<Entry> batch;
      const std::size_t n = std::min(queued(), options.batch_size);
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) batch.push_back(pop_oldest());
      in_flight = n;
      lock.unlock();

      write_file(batch);
      std::size_t rejected_proxy = 0;
      std::size_t rejected_management = 0;
      const std::string error = store(batch, rejected_proxy, rejected_management);

      // Logged without the lock: record() must never wait for the log sink.
      if (error.empty() && failing) log::write(log::Level::info, "audit_database_recovered");
      if (!error.empty() && !failing) {
        log::write(log::Level::warn, "audit_database_write_failed",
                   {{"events", batch.size()}, {"error", error}, {"message", "events kept in memory and retried"}});
      }
      failing = !error.empty();

      lock.lock();
      in_flight = 0;
      dropped_proxy += rejected_proxy;
      dropped_management += rejected_management;
      if (!failing) {
        backoff = kFirstBackoff;
        if (is_idle()) idle.notify_all();
        continue;
      }
      if (give_up_at && Clock::now() >= *give_up_at) {
        // Shutdown and the database is still unavailable: what is left cannot be kept anywhere.
        const std::size_t lost = batch.size() + queued();
        for (const Entry& e : batch) count_drop(e.event);
        dropped_proxy += proxy_queue.size();
        dropped_management += management_queue.size();
        proxy_queue.clear();
        management_queue.clear();
        lock.unlock();
        log::write(log::Level::error, "audit_events_lost", {{"events", lost}, {"error", error}});
        lock.lock();
        break;
      }
      // Back at the front, in order, so nothing newer overtakes it; overflow then drops the oldest first.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        auto& queue = kind_of(it->event) == Kind::proxy ? proxy_queue : management_queue;
        queue.push_front(std::move(*it));
      }
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

Kind kind_of(const db::AuditEvent& event) {
  return std::string_view(event.action).starts_with("proxy.") ? Kind::proxy : Kind::management;
}

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
    s.push(std::move(event));
  }
  s.wake.notify_one();
}

void Auditor::record_coalesced(std::string key, db::AuditEvent event) {
  Impl& s = *impl_;
  if (!s.options.enabled) return;
  if (event.id.empty()) event.id = util::uuid_v4();
  if (event.timestamp == util::TimePoint{}) event.timestamp = util::now();
  const auto now = Clock::now();
  {
    std::lock_guard lock(s.mutex);
    auto it = s.windows.find(key);
    if (it != s.windows.end() && now - it->second.opened >= s.options.coalesce_interval) {
      // Ended and not swept yet: as the sweep would.
      Window& w = it->second;
      s.close_window(w);
      if (w.repeats == 0) {
        s.windows.erase(it);
        it = s.windows.end();
      } else {
        w.opened = now;
        w.repeats = 0;
      }
    }
    if (it != s.windows.end()) {
      Window& w = it->second;
      if (w.repeats++ == 0) w.first_seen = event.timestamp;
      w.last_seen = std::max(w.last_seen, event.timestamp);
      ++s.coalesced;
      return;  // nothing queued: no need to wake the writer
    }
    if (s.windows.size() >= s.options.coalesce_max_keys) {
      s.count_drop(event);
      return;
    }
    Window w;
    w.opened = now;
    w.first = event;
    event.metadata = merged_metadata(event.metadata, {{"count", 1}});
    s.windows.emplace(std::move(key), std::move(w));
    s.push(std::move(event));
  }
  s.wake.notify_one();
}

void Auditor::record_coalesced(db::AuditEvent event) {
  std::string key = event.action + '|' + event.actor;
  for (const auto* part : {&event.token_id, &event.project_id, &event.reason, &event.client_ip}) {
    key += '|';
    if (*part) key += **part;
  }
  record_coalesced(std::move(key), std::move(event));
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
    s.sweep(Clock::now(), /*all=*/true);  // every open window's summary is written with the rest
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
  return impl_->queued() + impl_->in_flight;
}

std::size_t Auditor::dropped() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->dropped_proxy + impl_->dropped_management;
}

std::size_t Auditor::dropped(Kind kind) const {
  std::lock_guard lock(impl_->mutex);
  return kind == Kind::proxy ? impl_->dropped_proxy : impl_->dropped_management;
}

std::uint64_t Auditor::coalesced() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->coalesced;
}

void register_metrics(metrics::Registry& registry, lifecycle::Published<const Auditor> auditor) {
  registry.add_gauge("llm_proxy_audit_queue", "Audit events waiting to be written.", [auditor] {
    const Auditor* a = auditor.get();
    return a != nullptr ? static_cast<double>(a->pending()) : 0.0;
  });
  for (const auto& [kind, label] : {std::pair{Kind::proxy, "proxy"}, std::pair{Kind::management, "management"}}) {
    registry.add_counter(std::string("llm_proxy_audit_dropped_total{kind=\"") + label + "\"}",
                         "Audit events dropped (queue overflow: proxy events first; refused rows; coalescing "
                         "key limit), by kind of action.",
                         [auditor, kind = kind] {
                           const Auditor* a = auditor.get();
                           return a != nullptr ? static_cast<double>(a->dropped(kind)) : 0.0;
                         });
  }
  registry.add_counter("llm_proxy_audit_coalesced_total",
                       "Repeated audit events folded into a coalesced summary row instead of a row each.", [auditor] {
                         const Auditor* a = auditor.get();
                         return a != nullptr ? static_cast<double>(a->coalesced()) : 0.0;
                       });
}

}  // namespace llmproxy::audit
