#pragma once
/// The event log (SPEC §14, `EVENT_LOG_FILE`): one JSON object per line per proxied request, appended to a file by
/// one writer thread so request threads never wait for the disk.
///
/// Line format, keys always in this order (every key on every line, except the body keys):
///   time            when the request started, RFC 3339 UTC with microseconds (util::format_time, as the access log)
///   request_id      string, null if unknown
///   project_id      string, null if unknown (refused before authentication)
///   token_id        string, null if unknown
///   method, path    strings as the caller passes them, null if unknown
///   model           string, null if unknown
///   status          integer, the status sent to the client
///   duration_ms     number, the whole request, rounded to microseconds
///   upstream_ms     number, or null when no upstream call was made (cache hit, refused early)
///   usage           {"prompt_tokens":n,"completion_tokens":n,"total_tokens":n}, or null when not known
///   cache           the cache status string (hit, miss, ...), null if unknown
///   request_body, response_body   only with Options::bodies and when the caller passed one: the body as a JSON
///                   string, cut to max_body_bytes at a UTF-8 boundary; invalid UTF-8 bytes become U+FFFD
///   request_body_truncated, response_body_truncated   true, only when that body was cut
///
/// Durability: lines are written in batches with one write(2) each and never fsync'ed: a crash of the machine
/// (not of the process) can lose what the kernel had not written back, about the last seconds. A failed write
/// (disk full) loses that batch, counted in Stats::write_errors; the queue is bounded by events and by bytes and a
/// push past either bound is dropped and counted, so a stuck disk never blocks a request or grows memory.
/// The file is created with mode 0600 (it can hold prompts); the event never holds credentials.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "llmproxy/usage/scanner.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::events {

/// What the event log records about one proxied request.
struct RequestEvent {
  util::TimePoint time{};  ///< when the request started
  std::string request_id, project_id, token_id, method, path, model, cache_status;  ///< "" = unknown
  int status = 0;
  double duration_ms = 0;
  double upstream_ms = -1;            ///< < 0: no upstream call (cache hit, refused early)
  std::optional<usage::Usage> usage;  ///< nullopt (or !present): not known
  std::optional<std::string> request_body, response_body;  ///< set by the caller only when bodies are enabled
};

struct Options {
  std::string path;                          ///< EVENT_LOG_FILE
  /// Events held at most, queued or in the batch being written; past it a push is dropped.
  std::size_t max_queue_events = 10000;
  /// Bytes held at most (the strings and the bodies after truncation), queued or being written.
  std::size_t max_queue_bytes = 64 << 20;
  bool bodies = false;                       ///< EVENT_LOG_BODIES: write request_body/response_body
  std::size_t max_body_bytes = 64 * 1024;    ///< EVENT_LOG_MAX_BODY_BYTES: each body cut to this many bytes
};

class EventLog {
 public:
  /// Opens `options.path` (created with mode 0600 if missing, appended to) and starts the writer thread.
  /// Throws std::runtime_error naming the path when it cannot be opened.
  explicit EventLog(Options options);
  /// stop().
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  /// Queues one event. Any thread; never waits for I/O (takes the queue mutex only). Bodies are ignored unless
  /// Options::bodies, and cut to max_body_bytes here, so the queue holds at most that much per body.
  /// Returns false when the event is dropped (queue full by events or bytes, or stopped); drops are counted.
  bool push(RequestEvent&& e);

  /// Any thread (e.g. on SIGHUP after logrotate renamed the file): events pushed before this call go to the file
  /// open now, events pushed after it to the file opened anew at the path. If reopening fails the writer keeps the
  /// old file and counts Stats::reopen_errors.
  void reopen();

  /// Writes everything queued, closes the file and joins the writer thread. Idempotent; any thread but the writer.
  void stop();

  struct Stats {
    std::uint64_t written = 0;        ///< events written to the file
    std::uint64_t dropped = 0;        ///< events refused by push (queue full, or after stop)
    std::uint64_t write_errors = 0;   ///< events lost because their batch's write failed
    std::uint64_t reopen_errors = 0;  ///< reopen() calls whose open failed (the old file is kept)
    std::size_t queued = 0;           ///< events pushed and not yet written or lost (the batch being written too)
  };
  /// Any thread.
  Stats stats() const;

 private:
  struct Item {
    RequestEvent event;
    bool request_truncated = false, response_truncated = false;
    bool reopen = false;  // a marker: reopen the file here (no event)
    std::size_t bytes = 0;
  };

  void run();
  /// Writes `buffer` (`events` lines holding `bytes` of the bounds), counts the outcome, frees their share.
  void write_batch(std::string& buffer, std::size_t events, std::size_t bytes);

  const Options options_;
  int fd_ = -1;  // the writer thread's (and the constructor's / stop()'s after join)
  bool partial_line_ = false;  // writer only: a failed write may have left half a line in the file

  std::mutex stop_mutex_;     // serialises stop() (join and close)
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::deque<Item> queue_;
  std::size_t queued_events_ = 0, queued_bytes_ = 0;  // queued or in the batch being written
  bool stopping_ = false;
  Stats stats_;

  std::thread writer_;
};

/// One event as its line (no trailing newline): the format in the table above. Exposed for tests.
std::string format_line(const RequestEvent& e, bool request_truncated, bool response_truncated);

/// The longest prefix of `body` of at most `max` bytes that does not end inside a UTF-8 sequence.
std::size_t utf8_cut(std::string_view body, std::size_t max);

}  // namespace llmproxy::events
