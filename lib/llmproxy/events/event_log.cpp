#include "llmproxy/events/event_log.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmproxy::events {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kFlushBytes = 1 << 20;

Json string_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

double round_micros(double ms) { return std::round(ms * 1000.0) / 1000.0; }

/// Bookkeeping size of a queued event: its strings plus the fixed part.
std::size_t event_bytes(const RequestEvent& e) {
  std::size_t n = sizeof(RequestEvent) + e.request_id.size() + e.project_id.size() + e.token_id.size() +
                  e.method.size() + e.path.size() + e.model.size() + e.cache_status.size();
  if (e.request_body) n += e.request_body->size();
  if (e.response_body) n += e.response_body->size();
  return n;
}

/// Opens `path` for appending, created 0600. Returns -1 with errno set on failure.
int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/// Writes all of `data`; false on any error (EINTR retried).
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::size_t utf8_cut(std::string_view body, std::size_t max) {
  if (body.size() <= max) return body.size();
  std::size_t cut = max;
  // The first byte left out is a continuation byte: the sequence it belongs to starts at most 3 bytes earlier.
  for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(body[cut]) & 0xC0) == 0x80; ++back) --cut;
  if ((static_cast<unsigned char>(body[cut]) & 0xC0) == 0x80) return max;  // not UTF-8 there anyway
  return cut;
}

std::string format_line(const RequestEvent& e, bool request_truncated, bool response_truncated) {
  Json j;
  j["time"] = util::format_time(e.time);
  j["request_id"] = string_or_null(e.request_id);
  j["project_id"] = string_or_null(e.project_id);
  j["token_id"] = string_or_null(e.token_id);
  j["method"] = string_or_null(e.method);
  j["path"] = string_or_null(e.path);
  j["model"] = string_or_null(e.model);
  j["status"] = e.status;
  j["duration_ms"] = round_micros(e.duration_ms);
  j["upstream_ms"] = e.upstream_ms < 0 ? Json(nullptr) : Json(round_micros(e.upstream_ms));
  if (e.usage && e.usage->present) {
    Json u;
    u["prompt_tokens"] = e.usage->prompt_tokens;
    u["completion_tokens"] = e.usage->completion_tokens;
    u["total_tokens"] = e.usage->total_tokens;
    j["usage"] = std::move(u);
  } else {
    j["usage"] = nullptr;
  }
  j["cache"] = string_or_null(e.cache_status);
  if (e.request_body) {
    j["request_body"] = *e.request_body;
    if (request_truncated) j["request_body_truncated"] = true;
  }
  if (e.response_body) {
    j["response_body"] = *e.response_body;
    if (response_truncated) j["response_body_truncated"] = true;
  }
  // Bodies are whatever the client and upstream sent: invalid UTF-8 becomes U+FFFD instead of failing the line.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

EventLog::EventLog(Options options) : options_(std::move(options)) {
  fd_ = open_append(options_.path);
  if (fd_ < 0) {
    throw std::runtime_error("EVENT_LOG_FILE: cannot open " + options_.path + " for appending: " +
                             std::strerror(errno));
  }
  writer_ = std::thread([this] { run(); });
}

EventLog::~EventLog() { stop(); }

bool EventLog::push(RequestEvent&& e) {
  Item item;
  item.event = std::move(e);
  if (!options_.bodies) {
    item.event.request_body.reset();
    item.event.response_body.reset();
  }
  // Cut bodies here, on the caller's thread, so the queue never holds more than max_body_bytes per body.
  auto cut = [&](std::optional<std::string>& body, bool& truncated) {
    if (!body || body->size() <= options_.max_body_bytes) return;
    body->resize(utf8_cut(*body, options_.max_body_bytes));
    truncated = true;
  };
  cut(item.event.request_body, item.request_truncated);
  cut(item.event.response_body, item.response_truncated);
  item.bytes = event_bytes(item.event);

  std::lock_guard lock(mutex_);
  if (stopping_ || queued_events_ >= options_.max_queue_events ||
      queued_bytes_ + item.bytes > options_.max_queue_bytes) {
    ++stats_.dropped;
    return false;
  }
  queued_events_ += 1;
  queued_bytes_ += item.bytes;
  queue_.push_back(std::move(item));
  wake_.notify_one();
  return true;
}

void EventLog::reopen() {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  if (!queue_.empty() && queue_.back().reopen) return;  // one marker is enough, however many signals came
  Item marker;
  marker.reopen = true;
  queue_.push_back(std::move(marker));
  wake_.notify_one();
}

void EventLog::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (writer_.joinable()) writer_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

EventLog::Stats EventLog::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.queued = queued_events_;
  return s;
}

void EventLog::write_batch(std::string& buffer, std::size_t events, std::size_t bytes) {
  if (events == 0) return;
  bool ok = true;
  if (partial_line_) {
    // A write failed halfway before: end that broken line so this batch starts on a line of its own.
    ok = write_all(fd_, "\n", 1);
    if (ok) partial_line_ = false;
  }
  ok = ok && write_all(fd_, buffer.data(), buffer.size());
  if (!ok) partial_line_ = true;
  buffer.clear();
  std::lock_guard lock(mutex_);
  (ok ? stats_.written : stats_.write_errors) += events;
  queued_events_ -= events;
  queued_bytes_ -= bytes;
}

void EventLog::run() {
  std::deque<Item> batch;
  std::string buffer;
  for (;;) {
    bool last = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      batch.swap(queue_);
      last = stopping_;  // push refuses after stopping_, so this batch is the last one
    }
    // The batch stays counted against the bounds until it is written: they bound all memory held for events.
    std::size_t events = 0, bytes = 0;
    for (Item& item : batch) {
      if (item.reopen) {
        write_batch(buffer, events, bytes);
        events = bytes = 0;
        const int fd = open_append(options_.path);
        if (fd < 0) {
          std::lock_guard lock(mutex_);
          ++stats_.reopen_errors;
        } else {
          ::close(fd_);
          fd_ = fd;
          partial_line_ = false;
        }
        continue;
      }
      buffer += format_line(item.event, item.request_truncated, item.response_truncated);
      buffer += '\n';
      ++events;
      bytes += item.bytes;
      // Bodies can make a batch large: write it in pieces of about kFlushBytes so memory stays bounded.
      if (buffer.size() >= kFlushBytes) {
        write_batch(buffer, events, bytes);
        events = bytes = 0;
      }
    }
    write_batch(buffer, events, bytes);
    batch.clear();
    if (last) return;
  }
}

}  // namespace llmproxy::events
