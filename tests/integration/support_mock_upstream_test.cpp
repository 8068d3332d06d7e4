// The mock upstream and the test-support helpers, exercised through each other. If these fail, every other
// integration test is suspect.
#include "support/http_client.hpp"
#include "support/mock_upstream.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using llmproxy::test::HttpConnection;
using llmproxy::test::HttpError;
using llmproxy::test::http_request;
using llmproxy::test::MockUpstream;
using llmproxy::test::Process;
using llmproxy::test::raw_exchange;
using llmproxy::test::run_command;
using llmproxy::test::StreamingResponse;
using nlohmann::json;

namespace {

const std::string kMockChatBody = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
const std::string kMockStreamBody = R"({"model":"gpt-4o-mini","stream":true,"messages":[]})";

std::string mock_sse_chunk(int i) {
  return R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok)" +
         std::to_string(i) + "\"}}]}\n\n";
}

}  // namespace

TEST_CASE("mock upstream answers a chat completion like OpenAI", "[mock]") {
  MockUpstream mock;
  auto res = http_request(mock.port(), "POST", "/v1/chat/completions", kMockChatBody,
                          {{"Content-Type", "application/json"}});
  CHECK(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK(res.header("X-Upstream-Header") == "yes");
  auto body = json::parse(res.body);
  CHECK(body["id"] == "chatcmpl-mock");
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "gpt-4o-mini");
  CHECK(body["choices"][0]["message"]["content"] == "Hello from mock");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["total_tokens"] == 8);

  auto no_model = json::parse(http_request(mock.port(), "GET", "/v1/models").body);
  CHECK(no_model["model"] == "gpt-mock");
  CHECK(mock.base_url() == "http://127.0.0.1:" + std::to_string(mock.port()));
}

TEST_CASE("mock upstream records requests with their original header names", "[mock]") {
  MockUpstream mock;
  http_request(mock.port(), "POST", "/v1/chat/completions?x=1", kMockChatBody,
               {{"Authorization", "Bearer sk-upstream"}, {"OpenAI-Organization", "org-1"}, {"X-Custom", "a"},
                {"x-custom", "b"}});
  auto requests = mock.requests();
  REQUIRE(requests.size() == 1);
  const auto& r = requests[0];
  CHECK(r["method"] == "POST");
  CHECK(r["target"] == "/v1/chat/completions?x=1");
  CHECK(r["body"] == kMockChatBody);
  CHECK(r["headers"]["Authorization"] == "Bearer sk-upstream");
  CHECK(r["headers"]["OpenAI-Organization"] == "org-1");
  CHECK(r["headers"]["X-Custom"] == "a, b");
  CHECK(MockUpstream::header(r, "openai-organization") == "org-1");
  CHECK_FALSE(MockUpstream::header(r, "X-Absent").has_value());
  CHECK(r["headers"]["Content-Length"] == std::to_string(kMockChatBody.size()));
  CHECK(r["connection"].is_number_integer());

  // Inspection endpoints are not recorded; unknown paths are 404 and not recorded either.
  CHECK(http_request(mock.port(), "GET", "/elsewhere").status == 404);
  CHECK(mock.requests().size() == 1);
  mock.clear();
  CHECK(mock.requests().empty());
}

TEST_CASE("mock upstream keeps connections alive unless told to close", "[mock]") {
  MockUpstream mock;
  HttpConnection conn("127.0.0.1", mock.port());
  CHECK(conn.request("POST", "/v1/chat/completions", kMockChatBody).status == 200);
  CHECK(conn.request("POST", "/v1/chat/completions", kMockChatBody).status == 200);
  CHECK(conn.is_open());
  auto closing = conn.request("POST", "/v1/chat/completions", kMockChatBody, {{"X-Mock-Close", "1"}});
  CHECK(closing.status == 200);
  CHECK(closing.header("Connection") == "close");
  CHECK_FALSE(conn.is_open());
  CHECK_THROWS_AS(conn.request("GET", "/v1/models"), HttpError);

  auto requests = mock.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0]["connection"] == requests[1]["connection"]);
  CHECK(requests[1]["connection"] == requests[2]["connection"]);
  CHECK(mock.wait_for_stats([](const json& s) { return s["connections_closed"] >= 1; }, 2s));
}

TEST_CASE("mock upstream streams SSE events as separate chunks spaced by the delay", "[mock]") {
  MockUpstream mock;
  StreamingResponse stream(mock.port(), "POST", "/v1/chat/completions", kMockStreamBody,
                           {{"Content-Type", "application/json"}, {"X-Mock-Chunks", "3"}, {"X-Mock-Delay-Ms", "150"}});
  CHECK(stream.status() == 200);
  CHECK(stream.header("Content-Type") == "text/event-stream");
  CHECK(stream.header("Transfer-Encoding") == "chunked");
  CHECK(stream.header("X-Upstream-Header") == "yes");

  std::vector<std::string> chunks;
  std::vector<StreamingResponse::Clock::time_point> times;
  while (auto chunk = stream.next_chunk(5s)) {
    chunks.push_back(*chunk);
    times.push_back(stream.last_chunk_time());
  }
  CHECK(stream.finished());
  CHECK(stream.error().empty());
  REQUIRE(chunks.size() == 4);
  for (int i = 0; i < 3; ++i) CHECK(chunks[static_cast<std::size_t>(i)] == mock_sse_chunk(i));
  CHECK(chunks[3] == "data: [DONE]\n\n");
  for (std::size_t i = 1; i < times.size(); ++i) {
    CHECK(times[i] - times[i - 1] >= 120ms);  // 150 ms asked; generous for clock granularity
  }
  CHECK(mock.wait_for_stats([](const json& s) { return s["streams_completed"] == 1; }, 2s));
  CHECK(mock.stats()["streams_started"] == 1);
  CHECK(mock.stats()["streams_aborted"] == 0);
}

TEST_CASE("mock upstream defaults to three chunks without delay", "[mock]") {
  MockUpstream mock;
  StreamingResponse stream(mock.port(), "POST", "/v1/chat/completions", kMockStreamBody);
  std::string body = stream.read_rest(5s);
  CHECK(stream.finished());
  CHECK(body == mock_sse_chunk(0) + mock_sse_chunk(1) + mock_sse_chunk(2) + "data: [DONE]\n\n");
}

TEST_CASE("a streaming read that times out can be resumed", "[mock]") {
  MockUpstream mock;
  StreamingResponse stream(mock.port(), "POST", "/v1/chat/completions", kMockStreamBody,
                           {{"X-Mock-Chunks", "1"}, {"X-Mock-Delay-Ms", "400"}});
  CHECK(stream.next_chunk(5s) == mock_sse_chunk(0));
  CHECK_FALSE(stream.next_chunk(50ms).has_value());
  CHECK(stream.timed_out());
  CHECK(stream.next_chunk(5s) == "data: [DONE]\n\n");
  CHECK_FALSE(stream.next_chunk(5s).has_value());
  CHECK(stream.finished());
}

TEST_CASE("mock upstream counts a stream the client drops as aborted, promptly", "[mock]") {
  MockUpstream mock;
  StreamingResponse stream(mock.port(), "POST", "/v1/chat/completions", kMockStreamBody,
                           {{"X-Mock-Chunks", "5"}, {"X-Mock-Delay-Ms", "10000"}});
  REQUIRE(stream.next_chunk(5s) == mock_sse_chunk(0));
  stream.close();
  // Well before the next event is due: the mock notices the close while it waits. (The one active connection
  // left is the stats request itself.)
  CHECK(mock.wait_for_stats(
      [](const json& s) { return s["streams_aborted"] == 1 && s["active_connections"] == 1; }, 2s));
  CHECK(mock.stats()["streams_completed"] == 0);
}

TEST_CASE("mock upstream returns the status X-Mock-Status asks for", "[mock]") {
  MockUpstream mock;
  auto res = http_request(mock.port(), "POST", "/v1/chat/completions", kMockStreamBody, {{"X-Mock-Status", "503"}});
  CHECK(res.status == 503);
  CHECK(res.header("Content-Type") == "application/json");
  auto body = json::parse(res.body);
  CHECK(body["error"]["message"] == "mock error");
  CHECK(body["error"]["code"] == 503);
  CHECK(mock.requests().size() == 1);
}

TEST_CASE("mock upstream stalls before answering and pads bodies on request", "[mock]") {
  MockUpstream mock;
  const auto start = std::chrono::steady_clock::now();
  CHECK(http_request(mock.port(), "POST", "/v1/chat/completions", kMockChatBody, {{"X-Mock-Stall-Ms", "300"}}).status ==
        200);
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  CHECK_THROWS_AS(http_request(mock.port(), "POST", "/v1/chat/completions", kMockChatBody,
                               {{"X-Mock-Stall-Ms", "2000"}}, 100ms),
                  HttpError);

  auto big = http_request(mock.port(), "POST", "/v1/chat/completions", kMockChatBody, {{"X-Mock-Body-Bytes", "300000"}});
  CHECK(big.status == 200);
  CHECK(big.body.size() >= 299000);
  CHECK(big.body.size() <= 301000);
  CHECK(json::parse(big.body)["choices"][0]["message"]["content"] == "Hello from mock");
}

TEST_CASE("raw_exchange returns what a server sends before closing", "[mock]") {
  MockUpstream mock;
  bool closed = false;
  auto reply = raw_exchange(mock.port(), "GET /__mock/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s,
                            &closed);
  CHECK(reply.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(reply.find("connections_opened") != std::string::npos);
  CHECK(closed);

  auto garbage = raw_exchange(mock.port(), "NOT HTTP AT ALL\r\n\r\n", 5s, &closed);
  CHECK(garbage.empty());
  CHECK(closed);

  auto partial = raw_exchange(mock.port(), "GET /v1/models HTTP/1.1\r\nHost:", 200ms, &closed);
  CHECK(partial.empty());
  CHECK_FALSE(closed);
}

TEST_CASE("processes get exactly the environment given and report exit codes", "[mock][process]") {
  auto [code, out] = run_command({"sh", "-c", "echo \"$FOO|$HOME|${PATH:+path}\"; echo err >&2; exit 3"},
                                 {{"FOO", "bar"}});
  CHECK(code == 3);
  CHECK(out.find("bar||path\n") != std::string::npos);
  CHECK(out.find("err\n") != std::string::npos);

  auto [timeout_code, _] = run_command({"sleep", "10"}, {}, 100ms);
  CHECK(timeout_code == -1);

  CHECK_THROWS(Process("/nonexistent/binary", {}));
  CHECK(llmproxy::test::free_port() > 0);

  MockUpstream mock;
  CHECK(mock.process().running());
  mock.process().signal(SIGTERM);
  CHECK(mock.process().wait_exit(5s) == 0);
  CHECK_FALSE(mock.process().running());

  Process sleeper("sh", {"-c", "echo ready; exec sleep 30"});
  CHECK(sleeper.wait_for_line("ready", 5s) == "ready");
  CHECK_FALSE(sleeper.wait_for_line(std::regex("^never$"), 50ms).has_value());
  sleeper.signal(SIGKILL);
  CHECK(sleeper.wait_exit(5s) == 128 + SIGKILL);
}
