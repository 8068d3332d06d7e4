#include "llmproxy/log/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <charconv>
#include <cmath>
#include <type_traits>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "llmproxy/util/time.hpp"
#include "llmproxy/util/utf8.hpp"

namespace llmproxy::log {
namespace {

// Set once in setup() before any other thread starts; read-only afterwards.
std::atomic<bool> g_json{true};
class BatchingSink;
// The sink of the default logger, for JSON lines written without spdlog's formatting. Set with it in setup().
std::shared_ptr<BatchingSink> g_sink;

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

std::string console_value(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

/// The length of the leading run of `v` that a JSON string holds as it is: printable ASCII other than '"' and
/// '\\'. 16 bytes per step with SSE2 (every x86-64 has it): access log values are mostly such runs.
std::size_t plain_run(std::string_view v) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= v.size(); i += 16) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v.data() + i));
    // Signed compare: bytes >= 0x80 are negative, so "below 0x20" catches them too.
    const __m128i special = _mm_or_si128(_mm_cmplt_epi8(block, space),
                                         _mm_or_si128(_mm_cmpeq_epi8(block, quote), _mm_cmpeq_epi8(block, backslash)));
    if (const int hits = _mm_movemask_epi8(special); hits != 0) {
      return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
    }
  }
#endif
  for (; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
  }
  return i;
}

/// Appends `v` as a JSON string literal.
void append_json_string(std::string& out, std::string_view v) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out.push_back('"');
  while (!v.empty()) {
    // The common case, a run of printable ASCII that needs no escape, is appended in one piece.
    const std::size_t plain = plain_run(v);
    out.append(v.data(), plain);
    v.remove_prefix(plain);
    if (v.empty()) break;
    const auto c = static_cast<unsigned char>(v.front());
    std::size_t used = 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00").push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0x0f]);
        } else if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else if (const auto n = util::utf8_sequence(v); n > 0) {
          out.append(v.substr(0, n));
          used = n;
        } else {
          out.append("\xEF\xBF\xBD");  // U+FFFD for a byte that starts no valid sequence
        }
    }
    v.remove_prefix(used);
  }
  out.push_back('"');
}

void append_number(std::string& out, const auto& n) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  if (ec == std::errc{}) out.append(buf, end);
}

/// A double with three decimals (durations in milliseconds: to the microsecond), by integer arithmetic; the
/// shortest round-trip form (std::to_chars) cost more than the rest of an access line. Values outside
/// [0, 1e12) keep that form.
void append_fixed3(std::string& out, double v) {
  if (!(v >= 0.0 && v < 1e12)) {
    append_number(out, v);
    return;
  }
  const auto thousandths = static_cast<std::uint64_t>(std::llround(v * 1000.0));
  append_number(out, thousandths / 1000);
  const auto frac = static_cast<unsigned>(thousandths % 1000);
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, sizeof digits);
}

/// Where log lines go: a file descriptor, written in batches. Lines are collected in memory and written when
/// 64 KiB are pending, when a line of level warn or above arrives (the logger flushes on those), at flush(), and
/// otherwise at most kFlushAfter after the first line pending, by a thread that sleeps until there is something
/// to write. One write(2) per batch instead of a write and a flush per line: at `info` the access log writes a
/// line per request, which cost about a tenth of the proxy's throughput. Order is kept (one buffer).
class BatchingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static constexpr std::size_t kBatchBytes = 64 * 1024;
  static constexpr std::chrono::milliseconds kFlushAfter{100};

  /// Writes to `fd`, closing it at the end if `owned`.
  BatchingSink(int fd, bool owned) : fd_(fd), owned_(owned), flusher_([this] { run(); }) {}

  ~BatchingSink() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    flusher_.join();  // writes what is pending on its way out
    if (owned_) ::close(fd_);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    pending_.append(formatted.data(), formatted.size());
    written_or_scheduled(false);  // the logger flushes on warn and above itself
  }

  void flush_() override { write_pending(); }

 public:
  /// Adds a line already formatted (JSON mode: the pattern is the bare message), without spdlog's message and
  /// formatter; `urgent` (warn and above) writes it at once with the lines before it, as the logger's flush_on.
  void add_line(std::string_view line, bool urgent) {
    std::lock_guard lock(mutex_);
    pending_.append(line.data(), line.size());
    pending_.push_back('\n');
    written_or_scheduled(urgent);
  }

 private:
  /// Called with mutex_ held, after a line was added: writes the batch now if `urgent` or full, else makes sure
  /// the flusher will within kFlushAfter.
  void written_or_scheduled(bool urgent) {
    if (urgent || pending_.size() >= kBatchBytes) {
      write_pending();
    } else if (!scheduled_) {
      scheduled_ = true;
      wake_.notify_one();
    }
  }

 private:
  /// Called with mutex_ held. A failed write (a closed pipe, a full disk) drops the batch: logging never stops
  /// the server.
  void write_pending() {
    std::string_view rest = pending_;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    pending_.clear();
    if (pending_.capacity() > 4 * kBatchBytes) pending_.shrink_to_fit();
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || scheduled_; });
      if (stop_) break;
      // Let the lines of the next few milliseconds join this batch.
      wake_.wait_for(lock, kFlushAfter, [this] { return stop_; });
      write_pending();
      scheduled_ = false;
    }
    write_pending();
  }

  int fd_;
  bool owned_;
  std::string pending_;
  bool scheduled_ = false;  // the flusher will write pending_ within kFlushAfter
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread flusher_;  // last: started once everything above is initialised
};

}  // namespace

void setup(std::string_view level, Format format, const std::string& file) {
  const bool json = format == Format::json;
  std::shared_ptr<BatchingSink> sink;
  if (file.empty()) {
    sink = std::make_shared<BatchingSink>(STDOUT_FILENO, false);
  } else {
    std::error_code ignored;  // a directory that cannot be made shows up as the open's error
    const auto parent = std::filesystem::path(file).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open LOG_FILE \"" + file + "\": " + std::strerror(errno));
    sink = std::make_shared<BatchingSink>(fd, true);
  }
  auto logger = std::make_shared<spdlog::logger>("llm-proxy", sink);
  // The time and level are rendered by us in JSON mode, so the pattern is the bare message.
  logger->set_pattern(json ? "%v" : "%Y-%m-%dT%H:%M:%S.%fZ [%l] %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(std::string(level)));
  // Warnings and errors are written at once, with every line before them; other lines within
  // BatchingSink::kFlushAfter (so `tail -f` of stdout or LOG_FILE lags by at most that).
  logger->flush_on(spdlog::level::warn);
  g_json = json;
  spdlog::set_default_logger(std::move(logger));
  g_sink = std::move(sink);
}

namespace {

/// Writes a finished line: a JSON line straight into the sink, a console line through spdlog (its pattern adds
/// the time and level).
void emit(spdlog::logger* logger, spdlog::level::level_enum lvl, std::string_view line) {
  if (g_json && g_sink) {
    g_sink->add_line(line, lvl >= spdlog::level::warn);
  } else {
    logger->log(lvl, spdlog::string_view_t(line.data(), line.size()));
  }
}

}  // namespace

bool enabled(Level level) { return spdlog::default_logger_raw()->should_log(to_spdlog(level)); }

void write(Level level, std::string_view event, const nlohmann::json& fields) {
  auto* logger = spdlog::default_logger_raw();
  const auto lvl = to_spdlog(level);
  if (!logger->should_log(lvl)) return;
  std::string line;
  if (g_json) {
    // Ordered so every line starts with time, level, event: easier to read and to grep.
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    obj["time"] = util::format_time(util::now());
    obj["level"] = level_name(level);
    obj["event"] = event;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) obj[it.key()] = it.value();
    }
    line = obj.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  } else {
    line = std::string(event);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        line += ' ';
        line += it.key();
        line += '=';
        line += console_value(it.value());
      }
    }
  }
  emit(logger, lvl, line);
}

void write(Level level, std::string_view event) { write(level, event, nlohmann::json()); }

void write(Level level, std::string_view event, std::span<const Field> fields) {
  auto* logger = spdlog::default_logger_raw();
  const auto lvl = to_spdlog(level);
  if (!logger->should_log(lvl)) return;
  // Built in a buffer the thread keeps (one line per request at `info`: no allocation once it has grown).
  thread_local std::string line;
  line.clear();
  line.reserve(512);
  const auto put = [](std::string_view piece) { line.append(piece.data(), piece.size()); };
  const auto put_value = [&put](const Field::Value& value, bool json) {
    std::visit(
        [&put, json](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            if (json) {
              append_json_string(line, v);
            } else {
              put(v);
            }
          } else if constexpr (std::is_same_v<T, double>) {
            append_fixed3(line, v);
          } else {
            append_number(line, v);
          }
        },
        value);
  };
  if (g_json) {
    put("{\"time\":\"");
    put(util::format_time(util::now()));
    put("\",\"level\":\"");
    put(level_name(level));
    put("\",\"event\":");
    append_json_string(line, event);
    for (const auto& f : fields) {
      put(",\"");
      put(f.key);
      put("\":");
      put_value(f.value, true);
    }
    line.push_back('}');
  } else {
    put(event);
    for (const auto& f : fields) {
      put(" ");
      put(f.key);
      put("=");
      put_value(f.value, false);
    }
  }
  emit(logger, lvl, line);
}

void flush() { spdlog::default_logger_raw()->flush(); }

}  // namespace llmproxy::log
