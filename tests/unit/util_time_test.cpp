// util/time.hpp: the one timestamp format of the API and the database, and what parse_time accepts.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "llmproxy/util/time.hpp"

namespace util = llmproxy::util;

// A named namespace keeps the using-directive out of the files compiled after this one (unity build).
namespace util_time_test {
using namespace std::chrono;

namespace {

/// The time point of a UTC calendar date and time, built without the code under test.
util::TimePoint utc(int y, unsigned mo, unsigned d, int h, int mi, int s, long long us = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} + microseconds{us};
}

}  // namespace

TEST_CASE("format_time is fixed width with six fraction digits", "[util][time]") {
  CHECK(util::format_time(utc(2026, 1, 2, 3, 4, 5, 123456)) == "2026-01-02T03:04:05.123456Z");
  CHECK(util::format_time(utc(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z");
  CHECK(util::format_time(utc(1999, 12, 31, 23, 59, 59, 999999)) == "1999-12-31T23:59:59.999999Z");
  CHECK(util::format_time(util::TimePoint{}) == "1970-01-01T00:00:00.000000Z");
  CHECK(util::format_time(utc(2024, 2, 29, 0, 0, 0, 1)) == "2024-02-29T00:00:00.000001Z");
  // Before the epoch the fraction must still count forward from the second, not backwards.
  CHECK(util::format_time(util::TimePoint{microseconds{-1}}) == "1969-12-31T23:59:59.999999Z");
  CHECK(util::format_time(utc(2026, 11, 30, 12, 0, 0)).size() == 27);
  // Years past the four digits the fast path writes still format (as snprintf's %04d would).
  CHECK(util::format_time(utc(12345, 6, 7, 8, 9, 10)) == "12345-06-07T08:09:10.000000Z");
  CHECK(util::format_time(utc(0, 1, 1, 0, 0, 0)) == "0000-01-01T00:00:00.000000Z");
}

TEST_CASE("format_day is the UTC date part of format_time", "[util][time]") {
  CHECK(util::format_day(utc(2026, 12, 4, 23, 59, 59, 999999)) == "2026-12-04");
  CHECK(util::format_day(utc(2026, 12, 5, 0, 0, 0)) == "2026-12-05");
  CHECK(util::format_day(util::TimePoint{microseconds{-1}}) == "1969-12-31");
  CHECK(util::format_day(utc(2024, 2, 29, 12, 0, 0)) == "2024-02-29");
  CHECK(util::format_day(utc(12345, 6, 7, 8, 9, 10)) == "12345-06-07");
}

TEST_CASE("format_time output sorts like the time points", "[util][time]") {
  const auto a = utc(2026, 1, 2, 3, 4, 5, 9);
  const auto b = utc(2026, 1, 2, 3, 4, 5, 10);
  const auto c = utc(2026, 10, 1, 0, 0, 0);
  CHECK(util::format_time(a) < util::format_time(b));
  CHECK(util::format_time(b) < util::format_time(c));
}

TEST_CASE("now is truncated to microseconds and round-trips exactly", "[util][time]") {
  const auto before = time_point_cast<microseconds>(system_clock::now()) - seconds{1};
  const auto t = util::now();
  CHECK(t >= before);
  CHECK(t <= time_point_cast<microseconds>(system_clock::now()) + seconds{1});
  const auto parsed = util::parse_time(util::format_time(t));
  REQUIRE(parsed.has_value());
  CHECK(*parsed == t);
}

TEST_CASE("format then parse round-trips to the microsecond", "[util][time]") {
  for (const auto t : {utc(2026, 1, 2, 3, 4, 5, 123456), utc(2000, 2, 29, 23, 59, 59, 999999),
                       utc(1970, 1, 1, 0, 0, 0, 1), utc(9999, 12, 31, 23, 59, 59, 999999)}) {
    const auto parsed = util::parse_time(util::format_time(t));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == t);
  }
}

TEST_CASE("parse_time accepts RFC 3339 forms", "[util][time]") {
  const auto base = utc(2026, 1, 2, 3, 4, 5);
  struct Case {
    const char* text;
    util::TimePoint expected;
  };
  const Case cases[] = {
      {"2026-01-02T03:04:05Z", base},
      {"2026-01-02t03:04:05z", base},
      {"2026-01-02 03:04:05Z", base},
      {"2026-01-02T03:04:05.1Z", base + microseconds{100000}},
      {"2026-01-02T03:04:05.123Z", base + microseconds{123000}},
      {"2026-01-02T03:04:05.123456Z", base + microseconds{123456}},
      // Digits beyond microseconds are truncated, never rounded up.
      {"2026-01-02T03:04:05.123456999Z", base + microseconds{123456}},
      {"2026-01-02T05:04:05+02:00", base},
      {"2026-01-01T22:34:05-04:30", base},
      {"2026-01-02T03:04:05.5+00:00", base + microseconds{500000}},
      // An offset can move the instant across a day and a year boundary.
      {"2025-12-31T23:59:59-03:04", utc(2026, 1, 1, 3, 3, 59)},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto parsed = util::parse_time(c.text);
    REQUIRE(parsed.has_value());
    CHECK(util::format_time(*parsed) == util::format_time(c.expected));
  }
}

TEST_CASE("parse_time accepts PostgreSQL text output", "[util][time]") {
  const auto base = utc(2026, 1, 2, 3, 4, 5, 123456);
  CHECK(util::parse_time("2026-01-02 03:04:05.123456+00") == base);
  CHECK(util::parse_time("2026-01-02 08:34:05.123456+05:30") == base);
  CHECK(util::parse_time("2026-01-02 08:34:05.123456+0530") == base);
  CHECK(util::parse_time("2026-01-01 22:04:05.123456-05") == base);
  CHECK(util::parse_time("2026-01-02 03:04:05+00") == utc(2026, 1, 2, 3, 4, 5));
}

TEST_CASE("parse_time rejects everything else", "[util][time]") {
  const char* bad[] = {
      "",
      "2026-01-02",
      "2026-01-02T03:04Z",             // no seconds
      "2026-01-02T03:04:05",           // no zone
      "2026-13-02T03:04:05Z",          // month 13
      "2026-00-02T03:04:05Z",          // month 0
      "2026-02-30T03:04:05Z",          // no such day
      "2025-02-29T03:04:05Z",          // not a leap year
      "2026-01-00T03:04:05Z",          // day 0
      "2026-01-02T24:00:00Z",          // hour 24
      "2026-01-02T03:60:05Z",          // minute 60
      "2026-01-02T03:04:60Z",          // leap second
      "2026-01-02T03:04:05.Z",         // empty fraction
      "2026-01-02T03:04:05.1234567890Z",  // ten fraction digits
      "2026-01-02T03:04:05Zjunk",      // trailing garbage
      "2026-01-02T03:04:05Z ",         // trailing space
      " 2026-01-02T03:04:05Z",         // leading space
      "2026-01-02X03:04:05Z",          // bad separator
      "2026-1-02T03:04:05Z",           // short month
      "26-01-02T03:04:05Z",            // short year
      "2026-01-02T03:04:05+5:30",      // short offset hour
      "2026-01-02T03:04:05+24:00",     // offset hour out of range
      "2026-01-02T03:04:05+05:60",     // offset minute out of range
      "2026-01-02T03:04:05+05:3",      // truncated offset
      "2026-01-02T03:04:05UTC",
      "2026/01/02T03:04:05Z",
      "abcd-ef-ghTij:kl:mnZ",
  };
  for (const char* text : bad) {
    INFO(text);
    CHECK_FALSE(util::parse_time(text).has_value());
  }
}

TEST_CASE("format_duration writes the configuration's syntax, largest units first", "[util][time]") {
  CHECK(util::format_duration(milliseconds(0)) == "0s");
  CHECK(util::format_duration(milliseconds(500)) == "500ms");
  CHECK(util::format_duration(milliseconds(30'000)) == "30s");
  CHECK(util::format_duration(milliseconds(90'000)) == "1m30s");
  CHECK(util::format_duration(milliseconds(5'400'000)) == "1h30m");
  CHECK(util::format_duration(milliseconds(3'600'000)) == "1h");
  CHECK(util::format_duration(milliseconds(1'500)) == "1s500ms");
  CHECK(util::format_duration(milliseconds(-2'000)) == "-2s");
}

}  // namespace util_time_test
