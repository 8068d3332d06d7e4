#include "llmproxy/util/time.hpp"

#include <cstdint>
#include <cstdio>

namespace llmproxy::util {

namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_days;

/// A forward-only reader over the text being parsed. Every accessor fails (returns false) instead of reading
/// past the end, so the grammar below never needs its own bounds checks.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }

  /// Consumes `c` if it is next.
  bool eat(char c) {
    if (peek() != c || done()) return false;
    ++pos_;
    return true;
  }

  /// Reads exactly `width` decimal digits.
  bool digits(int width, int& out) {
    int value = 0;
    for (int i = 0; i < width; ++i) {
      if (done() || !is_digit(text_[pos_])) return false;
      value = value * 10 + (text_[pos_] - '0');
      ++pos_;
    }
    out = value;
    return true;
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

/// Reads `.f{1,9}` if present and returns it as microseconds; digits past the sixth are dropped (truncation,
/// the same rounding direction as now()).
bool parse_fraction(Cursor& in, microseconds& out) {
  out = microseconds{0};
  if (!in.eat('.')) return true;
  int count = 0;
  std::int64_t micros = 0;
  while (Cursor::is_digit(in.peek())) {
    int d = 0;
    in.digits(1, d);
    if (count < 6) micros = micros * 10 + d;
    ++count;
    if (count > 9) return false;
  }
  if (count == 0) return false;
  for (int i = count; i < 6; ++i) micros *= 10;
  out = microseconds{micros};
  return true;
}

/// Reads the zone designator: `Z`/`z`, `+hh:mm`, `+hhmm` or `+hh` (the last two are PostgreSQL's output forms).
/// Returns the offset east of UTC.
bool parse_offset(Cursor& in, minutes& out) {
  if (in.eat('Z') || in.eat('z')) {
    out = minutes{0};
    return true;
  }
  int sign = 0;
  if (in.eat('+')) {
    sign = 1;
  } else if (in.eat('-')) {
    sign = -1;
  } else {
    return false;
  }
  int hh = 0;
  int mm = 0;
  if (!in.digits(2, hh)) return false;
  if (in.eat(':')) {
    if (!in.digits(2, mm)) return false;
  } else if (Cursor::is_digit(in.peek())) {
    if (!in.digits(2, mm)) return false;
  }
  if (hh > 23 || mm > 59) return false;
  out = minutes{sign * (hh * 60 + mm)};
  return true;
}

}  // namespace

TimePoint now() { return floor<microseconds>(std::chrono::system_clock::now()); }

namespace {

/// Writes `v` as exactly `width` decimal digits (zero-padded) at `out`; `v` must fit.
char* put_digits(char* out, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return out + width;
}

/// `YYYY-MM-DD` of `day` at `out` (10 bytes), or false for a year outside 0..9999.
bool put_day(char* out, sys_days day) {
  const std::chrono::year_month_day ymd{day};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return false;
  out = put_digits(out, static_cast<unsigned>(year), 4);
  *out++ = '-';
  out = put_digits(out, static_cast<unsigned>(ymd.month()), 2);
  *out++ = '-';
  put_digits(out, static_cast<unsigned>(ymd.day()), 2);
  return true;
}

}  // namespace

// Digits are written by hand: these run for every request (the usage day) and every JSON row, and snprintf
// costs ten times as much.
std::string format_time(TimePoint t) {
  // floor (not duration_cast) so instants before 1970 land on the right calendar day.
  const auto day = floor<days>(t);
  const std::chrono::hh_mm_ss<microseconds> hms{t - day};
  char buf[40];
  if (!put_day(buf, day)) {
    const std::chrono::year_month_day ymd{day};
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<long long>(hms.subseconds().count()));
    return buf;
  }
  char* out = buf + 10;
  *out++ = 'T';
  out = put_digits(out, static_cast<unsigned>(hms.hours().count()), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<unsigned>(hms.minutes().count()), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<unsigned>(hms.seconds().count()), 2);
  *out++ = '.';
  out = put_digits(out, static_cast<unsigned>(hms.subseconds().count()), 6);
  *out++ = 'Z';
  return std::string(buf, static_cast<std::size_t>(out - buf));
}

std::string format_day(TimePoint t) {
  const auto day = floor<days>(t);
  char buf[16];
  if (!put_day(buf, day)) {
    const std::string full = format_time(t);
    return full.substr(0, full.find('T'));
  }
  return std::string(buf, 10);
}

std::optional<TimePoint> parse_time(std::string_view text) {
  Cursor in{text};
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!in.digits(4, year) || !in.eat('-') || !in.digits(2, month) || !in.eat('-') || !in.digits(2, day)) {
    return std::nullopt;
  }
  if (!(in.eat('T') || in.eat('t') || in.eat(' '))) return std::nullopt;
  if (!in.digits(2, hour) || !in.eat(':') || !in.digits(2, minute) || !in.eat(':') || !in.digits(2, second)) {
    return std::nullopt;
  }
  microseconds fraction{0};
  minutes offset{0};
  if (!parse_fraction(in, fraction) || !parse_offset(in, offset) || !in.done()) return std::nullopt;

  const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  // Leap seconds (:60) are rejected: system_clock cannot represent them and no database we talk to emits them.
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;

  const TimePoint local = sys_days{ymd} + hours{hour} + minutes{minute} + seconds{second} + fraction;
  return local - offset;
}

std::string format_duration(std::chrono::milliseconds d) {
  constexpr std::int64_t kSecond = 1000, kMinute = 60 * kSecond, kHour = 60 * kMinute;
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  const std::int64_t h = ms / kHour;
  const std::int64_t m = ms % kHour / kMinute;
  const std::int64_t s = ms % kMinute / kSecond;
  const std::int64_t rest = ms % kSecond;
  if (h != 0) out += std::to_string(h) + "h";
  if (m != 0) out += std::to_string(m) + "m";
  if (s != 0) out += std::to_string(s) + "s";
  if (rest != 0) out += std::to_string(rest) + "ms";
  return out;
}

}  // namespace llmproxy::util
