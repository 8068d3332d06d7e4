#pragma once
/// Structured logging on spdlog. LOG_FORMAT=json writes one JSON object per line
/// (`{"time":...,"level":...,"event":...,<fields>}`); console writes `time [level] event key=value ...`.
/// Thread-safe; any thread. Never pass secrets in fields. Lines are written in batches: warnings and errors at
/// once (with every line before them), others within 100 ms (see log.cpp's BatchingSink).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

namespace llmproxy::log {

enum class Level { trace, debug, info, warn, error };

/// How a line looks: one JSON object, or `time [level] event key=value ...` for a terminal.
enum class Format { json, console };

/// Installs the process-wide sink: stdout, or `file` (appended) when not empty. `level` is one of
/// trace/debug/info/warn/error. Throws std::runtime_error if the file cannot be opened. Call once, before any
/// other thread logs.
void setup(std::string_view level, Format format, const std::string& file);

/// True if a message of this level would be written (skip building fields when false).
bool enabled(Level level);

/// Writes one line: `event` plus the members of `fields` (a JSON object, may be null).
void write(Level level, std::string_view event, const nlohmann::json& fields);
void write(Level level, std::string_view event);

/// One field of a line written without building a JSON document.
struct Field {
  using Value = std::variant<std::string_view, std::int64_t, std::uint64_t, double>;
  std::string_view key;  // a plain identifier (not escaped)
  Value value;           // a double is written with three decimals (milliseconds to the microsecond)
};

/// Writes one line like write(level, event, json) but from flat fields, in their order, with no JSON document
/// built: for the per-request access line. Strings are escaped (invalid UTF-8 becomes U+FFFD, as in write()).
void write(Level level, std::string_view event, std::span<const Field> fields);

/// Writes every pending line now (at shutdown, before exiting).
void flush();

}  // namespace llmproxy::log
