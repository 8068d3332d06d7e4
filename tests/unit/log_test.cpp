// log/log.hpp: the lines as written to a real file (LOG_FILE), JSON and console. What an operator depends on:
// every line parses, strings are escaped (control bytes, quotes, invalid UTF-8), durations read as milliseconds
// with three decimals, warnings reach the file at once with every line before them, the rest soon after.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/log/log.hpp"
#include "support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
namespace log = llmproxy::log;

std::string log_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> log_lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// A LOG_FILE in a temporary directory, installed for the test and replaced by stdout afterwards.
struct LogFile {
  llmproxy::test::TempDir dir;
  std::string path = dir.file("logs/test.log");  // the directory is made by setup()
  explicit LogFile(log::Format format = log::Format::json) { log::setup("info", format, path); }
  ~LogFile() { log::setup("warn", log::Format::json, ""); }
  std::vector<std::string> flushed_lines() {
    log::flush();
    return log_lines_of(log_file_text(path));
  }
};

}  // namespace

TEST_CASE("log: access-style lines escape every string and stay valid JSON", "[log]") {
  LogFile f;
  // Runs longer than 16 bytes with the byte to escape at the edges of a 16-byte block, and bytes of every kind.
  const std::vector<std::string> values = {
      "plain ascii value that is longer than thirty-two bytes",
      std::string(15, 'a') + "\"" + std::string(20, 'b'),
      std::string(16, 'a') + "\\" + std::string(16, 'b'),
      std::string(31, 'c') + "\n",
      "tab\there, cr\r, nul" + std::string(1, '\0') + ", bell\x07, del\x7f",
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 and " + std::string(20, 'x'),  // valid UTF-8 passes as is
      std::string(17, 'y') + "\xFF\xC3" + std::string(3, 'z'),                  // invalid bytes: U+FFFD each
  };
  const std::vector<std::string> expected = {
      values[0], values[1], values[2], values[3], values[4], values[5],
      std::string(17, 'y') + "\xEF\xBF\xBD\xEF\xBF\xBD" + std::string(3, 'z'),
  };
  for (const auto& v : values) {
    const std::array<log::Field, 2> fields{{{"value", std::string_view(v)}, {"n", std::int64_t{-42}}}};
    log::write(log::Level::info, "escape_check", fields);
  }
  const auto lines = f.flushed_lines();
  REQUIRE(lines.size() == values.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    const auto j = nlohmann::json::parse(lines[i]);
    CHECK(j["level"] == "info");
    CHECK(j["event"] == "escape_check");
    CHECK(j["value"].get<std::string>() == expected[i]);
    CHECK(j["n"] == -42);
    CHECK(lines[i].find('\t') == std::string::npos);  // control bytes are escaped, not written raw
  }
}

TEST_CASE("log: doubles are milliseconds with three decimals", "[log]") {
  LogFile f;
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0.000"},       {0.0004, "0.000"},    {0.0005, "0.001"},  {12.3456, "12.346"},
      {999.9996, "1000.000"}, {86400000.25, "86400000.250"}, {1e13, "1e+13"}, {-1.5, "-1.5"},
  };
  for (const auto& [v, text] : cases) {
    const std::array<log::Field, 1> fields{{{"duration_ms", v}}};
    log::write(log::Level::info, "double_check", fields);
  }
  const auto lines = f.flushed_lines();
  REQUIRE(lines.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO(lines[i]);
    CHECK(lines[i].ends_with(",\"duration_ms\":" + cases[i].second + "}"));
    CHECK_NOTHROW(nlohmann::json::parse(lines[i]));
  }
}

TEST_CASE("log: a warning reaches the file at once, after the lines before it, and the rest follows soon", "[log]") {
  LogFile f;
  const std::array<log::Field, 1> fields{{{"i", std::int64_t{1}}}};
  log::write(log::Level::info, "first_info", fields);
  log::write(log::Level::info, "second_info");
  log::write(log::Level::warn, "a_warning", nlohmann::json{{"k", "v"}});
  // No flush: the warning was written with the two lines before it, in order.
  auto lines = log_lines_of(log_file_text(f.path));
  REQUIRE(lines.size() == 3);
  CHECK(nlohmann::json::parse(lines[0])["event"] == "first_info");
  CHECK(nlohmann::json::parse(lines[1])["event"] == "second_info");
  CHECK(nlohmann::json::parse(lines[2])["event"] == "a_warning");
  CHECK(nlohmann::json::parse(lines[2])["k"] == "v");

  // An info line alone is written by the batching thread shortly after, with no flush asked for.
  log::write(log::Level::info, "later_info");
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (log_lines_of(log_file_text(f.path)).size() < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  lines = log_lines_of(log_file_text(f.path));
  REQUIRE(lines.size() == 4);
  CHECK(nlohmann::json::parse(lines[3])["event"] == "later_info");
}

TEST_CASE("log: many lines from several threads are all written, whole", "[log]") {
  LogFile f;
  constexpr int kThreads = 4;
  constexpr int kLines = 5000;  // several 64 KiB batches
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) {
        const std::array<log::Field, 3> fields{
            {{"thread", std::int64_t{t}}, {"i", std::int64_t{i}}, {"pad", std::string_view("0123456789abcdef")}}};
        log::write(log::Level::info, "load", fields);
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto lines = f.flushed_lines();
  REQUIRE(lines.size() == static_cast<std::size_t>(kThreads * kLines));
  std::vector<int> next(kThreads, 0);
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line);
    const int t = j["thread"].get<int>();
    CHECK(j["i"].get<int>() == next[static_cast<std::size_t>(t)]);  // each thread's lines in its order
    ++next[static_cast<std::size_t>(t)];
  }
}

TEST_CASE("log: the console format writes key=value lines", "[log]") {
  LogFile f(log::Format::console);
  const std::array<log::Field, 3> fields{
      {{"path", std::string_view("/v1/chat/completions")}, {"status", std::int64_t{200}}, {"duration_ms", 1.25}}};
  log::write(log::Level::info, "access", fields);
  const auto lines = f.flushed_lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].ends_with("[info] access path=/v1/chat/completions status=200 duration_ms=1.250"));
}

TEST_CASE("log: a LOG_FILE that cannot be opened is an error naming it", "[log]") {
  llmproxy::test::TempDir dir;
  const std::string blocked = dir.file("not-a-directory");
  { std::ofstream(blocked) << "x"; }
  const std::string path = blocked + "/test.log";
  CHECK_THROWS_WITH(log::setup("info", log::Format::json, path), Catch::Contains("cannot open LOG_FILE \"" + path + "\""));
}
