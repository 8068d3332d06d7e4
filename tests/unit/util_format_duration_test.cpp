// util/time: format_duration, the one duration formatter (boot log, error messages naming a setting).
#include <catch2/catch.hpp>

#include "llmproxy/util/time.hpp"

using llmproxy::util::format_duration;
using std::chrono::milliseconds;

TEST_CASE("format_duration writes the configuration's syntax, largest units first", "[util][duration]") {
  CHECK(format_duration(milliseconds(0)) == "0s");
  CHECK(format_duration(milliseconds(500)) == "500ms");
  CHECK(format_duration(milliseconds(30'000)) == "30s");
  CHECK(format_duration(milliseconds(90'000)) == "1m30s");
  CHECK(format_duration(milliseconds(5'400'000)) == "1h30m");
  CHECK(format_duration(milliseconds(3'600'000)) == "1h");
  CHECK(format_duration(milliseconds(1'500)) == "1s500ms");
  CHECK(format_duration(milliseconds(-2'000)) == "-2s");
}
