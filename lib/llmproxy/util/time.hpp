#pragma once
/// Time points as the application and both databases see them: UTC, microsecond precision.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace llmproxy::util {

using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

/// The current wall-clock time, truncated to microseconds. Any thread.
TimePoint now();

/// Fixed-width UTC form `YYYY-MM-DDTHH:MM:SS.ffffffZ` (sorts as text; the SQLite storage form, valid RFC 3339).
std::string format_time(TimePoint t);

/// The UTC calendar day of `t`, `YYYY-MM-DD` (the date part of format_time()).
std::string format_day(TimePoint t);

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`, optional fraction up to 9 digits, `Z` or `+hh:mm`/`-hh:mm`)
/// and PostgreSQL's text form (`2026-01-02 03:04:05.123456+00`). Returns nullopt on anything else.
std::optional<TimePoint> parse_time(std::string_view text);

/// A duration in the syntax the configuration accepts, largest units first: `1h30m`, `30s`, `1s500ms`, `0s`
/// (negative: a leading `-`). Messages that name a setting use it, so the value can be pasted back.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace llmproxy::util
