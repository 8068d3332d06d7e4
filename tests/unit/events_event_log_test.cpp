// events::EventLog (lib/llmproxy/events/event_log.hpp): the EVENT_LOG_FILE JSON-lines writer. Real files, a real
// FIFO nobody reads to hold the writer still, no sleeps.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmproxy/events/event_log.hpp"

namespace {

namespace fs = std::filesystem;
using llmproxy::events::EventLog;
using llmproxy::events::Options;
using llmproxy::events::RequestEvent;
using Json = nlohmann::ordered_json;

/// A fresh temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "llmproxy-events-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> read_log_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

RequestEvent sample_event(std::string id) {
  RequestEvent e;
  e.time = llmproxy::util::TimePoint(std::chrono::microseconds(1'767'323'045'123'456));  // 2026-01-02T03:04:05.123456Z
  e.request_id = std::move(id);
  e.project_id = "proj-1";
  e.token_id = "tok-1";
  e.method = "POST";
  e.path = "/v1/chat/completions";
  e.model = "gpt-4o";
  e.cache_status = "miss";
  e.status = 200;
  e.duration_ms = 12.3456789;
  e.upstream_ms = 10.5;
  e.usage = llmproxy::usage::Usage{9, 2, 11, true};
  return e;
}

}  // namespace

TEST_CASE("event log writes one JSON line per event with the documented keys in order and mode 0600") {
  TempDir dir;
  const fs::path file = dir.path / "events.jsonl";
  {
    EventLog log(Options{.path = file.string()});
    REQUIRE(log.push(sample_event("req-1")));
    RequestEvent hit;  // a cache hit refused nothing upstream, most fields unknown
    hit.request_id = "req-2";
    hit.status = 200;
    hit.cache_status = "hit";
    hit.request_body = "never written: bodies are off by default";
    hit.response_body = "never written";
    REQUIRE(log.push(std::move(hit)));
    log.stop();
    CHECK(log.stats().written == 2);
  }
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  const auto lines = read_log_lines(file);
  REQUIRE(lines.size() == 2);
  const Json first = Json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& [k, v] : first.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"time", "request_id", "project_id", "token_id", "method", "path", "model",
                                          "status", "duration_ms", "upstream_ms", "usage", "cache"});
  CHECK(first["time"] == "2026-01-02T03:04:05.123456Z");
  CHECK(first["request_id"] == "req-1");
  CHECK(first["project_id"] == "proj-1");
  CHECK(first["token_id"] == "tok-1");
  CHECK(first["method"] == "POST");
  CHECK(first["path"] == "/v1/chat/completions");
  CHECK(first["model"] == "gpt-4o");
  CHECK(first["status"] == 200);
  CHECK(first["duration_ms"] == 12.346);
  CHECK(first["upstream_ms"] == 10.5);
  CHECK(first["usage"] == Json{{"prompt_tokens", 9}, {"completion_tokens", 2}, {"total_tokens", 11}});
  CHECK(first["cache"] == "miss");

  const Json second = Json::parse(lines[1]);
  CHECK(second.size() == 12);  // no body keys with bodies off
  CHECK(second["project_id"].is_null());
  CHECK(second["model"].is_null());
  CHECK(second["upstream_ms"].is_null());
  CHECK(second["usage"].is_null());
  CHECK(second["cache"] == "hit");
}

TEST_CASE("event log writes bodies when enabled, cut at a UTF-8 boundary with a flag, invalid UTF-8 replaced") {
  TempDir dir;
  const fs::path file = dir.path / "events.jsonl";
  EventLog log(Options{.path = file.string(), .bodies = true, .max_body_bytes = 10});
  RequestEvent e = sample_event("req-1");
  e.request_body = "aaaaaaaaa\xe2\x82\xac tail";  // 9 bytes, then a 3-byte euro sign across the 10-byte cut
  e.response_body = "\xff\xfeok";
  REQUIRE(log.push(std::move(e)));
  RequestEvent short_bodies = sample_event("req-2");
  short_bodies.request_body = "{\"a\":1}";
  REQUIRE(log.push(std::move(short_bodies)));
  log.stop();

  const auto lines = read_log_lines(file);
  REQUIRE(lines.size() == 2);
  const Json cut = Json::parse(lines[0]);
  CHECK(cut["request_body"] == "aaaaaaaaa");
  CHECK(cut["request_body_truncated"] == true);
  CHECK(cut["response_body"] == "\xef\xbf\xbd\xef\xbf\xbdok");
  CHECK_FALSE(cut.contains("response_body_truncated"));
  const Json whole = Json::parse(lines[1]);
  CHECK(whole["request_body"] == "{\"a\":1}");
  CHECK_FALSE(whole.contains("request_body_truncated"));
  CHECK_FALSE(whole.contains("response_body"));
  CHECK(llmproxy::events::utf8_cut("ab\xc3\xa9", 3) == 2);
  CHECK(llmproxy::events::utf8_cut("ab\xc3\xa9", 4) == 4);
}

TEST_CASE("event log drops and counts past its queue bounds without blocking while the writer is stuck") {
  TempDir dir;
  const fs::path fifo = dir.path / "events.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Open the reading end first (the log's open would wait for a reader), then never read until the end: once the
  // pipe buffer is full the writer thread is stuck in write(), and the queue fills up.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);

  const bool by_bytes = GENERATE(false, true);
  INFO((by_bytes ? "bound by bytes" : "bound by events"));
  Options options{.path = fifo.string(), .bodies = true};
  if (by_bytes) {
    options.max_queue_bytes = 256 * 1024;
  } else {
    options.max_queue_events = 8;
  }
  EventLog log(options);
  std::size_t pushed = 0, refused = 0;
  for (int i = 0; i < 10000 && refused < 3; ++i) {
    RequestEvent e = sample_event("req-" + std::to_string(i));
    e.response_body = std::string(32 * 1024, 'x');
    (log.push(std::move(e)) ? pushed : refused) += 1;
  }
  REQUIRE(refused == 3);
  const auto stuck = log.stats();
  CHECK(stuck.dropped == 3);
  // Held events (queued or in the stuck batch) never exceed the bound: 8 events, or 256 KiB of 32 KiB bodies.
  CHECK(stuck.queued <= (by_bytes ? 7u : 8u));
  CHECK(stuck.queued + stuck.written == pushed);

  // Unstick the writer: read everything until the log closes its end.
  REQUIRE(::fcntl(reader, F_SETFL, 0) == 0);
  std::string received;
  std::thread drain([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;) received.append(buf, static_cast<std::size_t>(n));
  });
  log.stop();
  drain.join();
  ::close(reader);
  const auto end = log.stats();
  CHECK(end.written == pushed);
  CHECK(end.dropped == 3);
  CHECK(end.write_errors == 0);
  CHECK(end.queued == 0);
  CHECK(static_cast<std::size_t>(std::count(received.begin(), received.end(), '\n')) == pushed);
}

TEST_CASE("event log reopen writes to a new file at the path after a rename") {
  TempDir dir;
  const fs::path file = dir.path / "events.jsonl";
  const fs::path rotated = dir.path / "events.jsonl.1";
  EventLog log(Options{.path = file.string()});
  REQUIRE(log.push(sample_event("before")));
  fs::rename(file, rotated);  // logrotate renames, then signals
  log.reopen();
  REQUIRE(log.push(sample_event("after")));
  log.stop();

  const auto old_lines = read_log_lines(rotated);
  REQUIRE(old_lines.size() == 1);
  CHECK(Json::parse(old_lines[0])["request_id"] == "before");
  const auto new_lines = read_log_lines(file);
  REQUIRE(new_lines.size() == 1);
  CHECK(Json::parse(new_lines[0])["request_id"] == "after");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(log.stats().reopen_errors == 0);
}

TEST_CASE("event log stop writes everything queued and later pushes are refused") {
  TempDir dir;
  const fs::path file = dir.path / "events.jsonl";
  EventLog log(Options{.path = file.string()});
  for (int i = 0; i < 500; ++i) REQUIRE(log.push(sample_event("req-" + std::to_string(i))));
  log.stop();
  log.stop();  // idempotent
  CHECK(read_log_lines(file).size() == 500);
  CHECK(log.stats().written == 500);
  CHECK_FALSE(log.push(sample_event("late")));
  CHECK(log.stats().dropped == 1);
}

TEST_CASE("event log takes pushes from 4 threads at once and writes every line whole") {
  TempDir dir;
  const fs::path file = dir.path / "events.jsonl";
  constexpr int kThreads = 4, kEach = 100;
  {
    EventLog log(Options{.path = file.string()});
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kEach; ++i) log.push(sample_event(std::to_string(t) + "-" + std::to_string(i)));
      });
    }
    for (auto& th : threads) th.join();
  }  // the destructor stops and writes what is queued
  const auto lines = read_log_lines(file);
  REQUIRE(lines.size() == kThreads * kEach);
  std::set<std::string> ids;
  for (const auto& line : lines) ids.insert(Json::parse(line)["request_id"].get<std::string>());
  CHECK(ids.size() == kThreads * kEach);
}

TEST_CASE("event log names the path when it cannot open the file") {
  TempDir dir;
  const std::string missing = (dir.path / "no-such-dir" / "events.jsonl").string();
  try {
    EventLog log(Options{.path = missing});
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(missing));
  }
}
