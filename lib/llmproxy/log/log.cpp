#include "llmproxy/log/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "llmproxy/util/time.hpp"

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
  logger->flush_on(spdlog::level::warn);
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

void flush() { spdlog::default_logger_raw()->flush(); }

}  // namespace llmproxy::log
