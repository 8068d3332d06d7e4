#include "llmproxy/log/log.hpp"

#include <charconv>
#include <type_traits>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "llmproxy/util/time.hpp"
#include "llmproxy/util/utf8.hpp"

namespace llmproxy::log {
namespace {

// Set once in setup() before any other thread starts; read-only afterwards.
std::atomic<bool> g_json{true};

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

/// Appends `v` as a JSON string literal.
void append_json_string(std::string& out, std::string_view v) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out.push_back('"');
  while (!v.empty()) {
    // The common case, a run of printable ASCII that needs no escape, is appended in one piece.
    std::size_t plain = 0;
    while (plain < v.size()) {
      const auto c = static_cast<unsigned char>(v[plain]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++plain;
    }
    out.append(v.substr(0, plain));
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

}  // namespace

void setup(std::string_view level, Format format, const std::string& file) {
  const bool json = format == Format::json;
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty()) {
    logger = spdlog::stdout_logger_mt("llm-proxy");
  } else {
    try {
      logger = spdlog::basic_logger_mt("llm-proxy", file);
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("cannot open LOG_FILE \"" + file + "\": " + e.what());
    }
  }
  // The time and level are rendered by us in JSON mode, so the pattern is the bare message.
  logger->set_pattern(json ? "%v" : "%Y-%m-%dT%H:%M:%S.%fZ [%l] %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(std::string(level)));
  // stdout's sink flushes every line; a file's would hold lines in its buffer until a warning, so a
  // `tail -f` of LOG_FILE (`server --log-file`) would show nothing: every line is flushed there too.
  logger->flush_on(file.empty() ? spdlog::level::warn : spdlog::level::trace);
  g_json = json;
  spdlog::set_default_logger(logger);
}

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
  logger->log(lvl, "{}", line);
}

void write(Level level, std::string_view event) { write(level, event, nlohmann::json()); }

void write(Level level, std::string_view event, std::span<const Field> fields) {
  auto* logger = spdlog::default_logger_raw();
  const auto lvl = to_spdlog(level);
  if (!logger->should_log(lvl)) return;
  std::string line;
  line.reserve(320);
  if (g_json) {
    line.append("{\"time\":\"").append(util::format_time(util::now())).append("\",\"level\":\"");
    line.append(level_name(level)).append("\",\"event\":");
    append_json_string(line, event);
    for (const auto& f : fields) {
      line.append(",\"").append(f.key).append("\":");
      std::visit(
          [&line](const auto& v) {
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string_view>) {
              append_json_string(line, v);
            } else {
              append_number(line, v);
            }
          },
          f.value);
    }
    line.push_back('}');
  } else {
    line.append(event);
    for (const auto& f : fields) {
      line.append(" ").append(f.key).push_back('=');
      std::visit(
          [&line](const auto& v) {
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string_view>) {
              line.append(v);
            } else {
              append_number(line, v);
            }
          },
          f.value);
    }
  }
  logger->log(lvl, "{}", line);
}

void flush() { spdlog::default_logger_raw()->flush(); }

}  // namespace llmproxy::log
