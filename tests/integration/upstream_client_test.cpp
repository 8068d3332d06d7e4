// The upstream client (lib/llmproxy/upstream) against real sockets: the mock provider, small scripted servers
// run in the test's own io_context, and `openssl s_server` for TLS.
// Requests with header lists are built in their own statement: GCC 12 cannot keep the array temporaries of a
// braced list alive across a co_await in the same full-expression ("array used as initializer").
#include "llmproxy/upstream/client.hpp"
#include "support/mock_upstream.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace net = boost::asio;
namespace up = llmproxy::upstream;
using llmproxy::test::MockUpstream;
using llmproxy::test::Process;
using llmproxy::test::run_command;
using llmproxy::test::TempDir;
using nlohmann::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const std::string kChatBody = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
const std::string kStreamBody = R"({"model":"gpt-4o-mini","stream":true,"messages":[]})";

std::string sse_chunk(int i) {
  return R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok)" +
         std::to_string(i) + "\"}}]}\n\n";
}

up::Request chat(const std::vector<std::pair<std::string, std::string>>& extra = {},
                 const std::string& body = kChatBody) {
  up::Request r;
  r.method = "POST";
  r.target = "/v1/chat/completions";
  r.headers.add("Content-Type", "application/json");
  r.headers.add("Authorization", "Bearer sk-upstream-secret");
  for (const auto& [name, value] : extra) r.headers.add(name, value);
  r.body = body;
  return r;
}

up::Endpoint local(int port, std::string scheme = "http", std::string host = "127.0.0.1") {
  return up::Endpoint{std::move(scheme), std::move(host), static_cast<std::uint16_t>(port)};
}

/// Runs the coroutine `fn` to completion on `io` (this thread), then rethrows whatever it threw.
template <class Fn>
void run(net::io_context& io, Fn fn) {
  std::exception_ptr error;
  net::co_spawn(io, std::move(fn), [&](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
}

/// The kind of up::Error `operation` throws, or nullopt if it throws none. Also checks the message carries no
/// secret from the request headers.
template <class Operation>
net::awaitable<std::optional<up::ErrorKind>> error_of(Operation operation) {
  try {
    co_await operation();
  } catch (const up::Error& e) {
    CHECK(std::string(e.what()).find("sk-upstream-secret") == std::string::npos);
    co_return e.kind;
  }
  co_return std::nullopt;
}

net::awaitable<void> sleep_for(Clock::duration d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  co_await timer.async_wait(net::use_awaitable);
}

/// A TCP server inside the test's io_context that hands every accepted connection to `script(socket, index)`.
/// stop() closes the listener so the io_context can run dry.
class ScriptedServer {
 public:
  using Script = std::function<net::awaitable<void>(tcp::socket, int)>;

  ScriptedServer(net::io_context& io, Script script)
      : acceptor_(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)), script_(std::move(script)) {
    net::co_spawn(io, accept_loop(), net::detached);
  }

  int port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_; }
  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      net::co_spawn(acceptor_.get_executor(), script_(std::move(socket), accepted_++), net::detached);
    }
  }

  tcp::acceptor acceptor_;
  Script script_;
  int accepted_ = 0;
};

/// Reads one request (head and Content-Length body) from `socket`; "" if the peer closed first.
net::awaitable<std::string> read_request(tcp::socket& socket, std::string& buffer) {
  auto [ec, n] = co_await net::async_read_until(socket, net::dynamic_buffer(buffer), "\r\n\r\n",
                                                net::as_tuple(net::use_awaitable));
  if (ec) co_return std::string();
  std::size_t length = 0;
  static const std::regex kLength(R"(content-length: *(\d+))", std::regex::icase);
  std::smatch m;
  const std::string head = buffer.substr(0, n);
  if (std::regex_search(head, m, kLength)) length = std::stoul(m[1]);
  while (buffer.size() < n + length) {
    char chunk[4096];
    auto [rec, got] = co_await socket.async_read_some(net::buffer(chunk), net::as_tuple(net::use_awaitable));
    if (rec) co_return std::string();
    buffer.append(chunk, got);
  }
  std::string request = buffer.substr(0, n + length);
  buffer.erase(0, n + length);
  co_return request;
}

net::awaitable<void> write_text(tcp::socket& socket, const std::string& text) {
  co_await net::async_write(socket, net::buffer(text), net::as_tuple(net::use_awaitable));
}

std::string ok_response(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("upstream client reads JSON answers over one kept-alive connection", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      const auto request = chat({{"OpenAI-Organization", "org-1"}});
      auto res = co_await client.send(request, 5s);
      CHECK(res->status == 200);
      CHECK_FALSE(res->streaming);
      CHECK(res->headers.get("content-type") == "application/json");
      CHECK(res->headers.get("X-Upstream-Header") == "yes");
      const std::string body = co_await res->read_all(5s);
      CHECK(json::parse(body)["choices"][0]["message"]["content"] == "Hello from mock");
      const auto after_end = co_await res->read_some(1s);
      CHECK_FALSE(after_end.has_value());
    }
  });
  CHECK(client.idle_connections() == 1);
  // Our one connection plus the one asking for the stats.
  CHECK(mock.stats()["connections_opened"] == 2);

  const auto requests = mock.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0]["connection"] == requests[1]["connection"]);
  CHECK(requests[1]["connection"] == requests[2]["connection"]);
  const auto& r = requests[0];
  CHECK(r["method"] == "POST");
  CHECK(r["target"] == "/v1/chat/completions");
  CHECK(r["body"] == kChatBody);
  CHECK(MockUpstream::header(r, "Authorization") == "Bearer sk-upstream-secret");
  CHECK(MockUpstream::header(r, "OpenAI-Organization") == "org-1");
  CHECK(MockUpstream::header(r, "Host") == "127.0.0.1:" + std::to_string(mock.port()));
  CHECK(MockUpstream::header(r, "Content-Length") == std::to_string(kChatBody.size()));
}

TEST_CASE("upstream client passes error statuses through with their bodies", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    const auto request = chat({{"X-Mock-Status", "503"}});
    auto res = co_await client.send(request, 5s);
    CHECK(res->status == 503);
    const std::string body = co_await res->read_all(5s);
    CHECK(json::parse(body)["error"]["message"] == "mock error");
  });
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("upstream client relays SSE events as they arrive", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  std::vector<std::string> pieces;
  std::vector<Clock::time_point> times;
  run(io, [&]() -> net::awaitable<void> {
    const auto request = chat({{"X-Mock-Chunks", "3"}, {"X-Mock-Delay-Ms", "200"}}, kStreamBody);
    auto res = co_await client.send(request, 5s);
    CHECK(res->status == 200);
    CHECK(res->streaming);
    CHECK(res->headers.get("Content-Type") == "text/event-stream");
    CHECK(res->headers.get("Transfer-Encoding") == "chunked");  // headers as received; the caller filters
    while (auto piece = co_await res->read_some(5s)) {
      pieces.push_back(std::move(*piece));
      times.push_back(Clock::now());
    }
    const auto after_end = co_await res->read_some(1s);
    CHECK_FALSE(after_end.has_value());
  });
  std::string joined;
  for (const auto& p : pieces) joined += p;
  CHECK(joined == sse_chunk(0) + sse_chunk(1) + sse_chunk(2) + "data: [DONE]\n\n");
  // Each event is its own piece (200 ms apart, nothing coalesced), chunk framing removed.
  REQUIRE(pieces.size() == 4);
  CHECK(pieces[0] == sse_chunk(0));
  CHECK(pieces[3] == "data: [DONE]\n\n");
  for (std::size_t i = 1; i < times.size(); ++i) CHECK(times[i] - times[i - 1] >= 150ms);
  // A stream read to its end leaves the connection reusable.
  CHECK(client.idle_connections() == 1);
  CHECK(mock.wait_for_stats([](const json& s) { return s["streams_completed"] == 1; }, 2s));
}

TEST_CASE("upstream client times out waiting for the response header", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  const auto start = Clock::now();
  run(io, [&]() -> net::awaitable<void> {
    auto kind = co_await error_of([&]() -> net::awaitable<void> {
      const auto request = chat({{"X-Mock-Stall-Ms", "5000"}});
      co_await client.send(request, 300ms);
    });
    CHECK(kind == up::ErrorKind::timeout);
  });
  const auto elapsed = Clock::now() - start;
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 3s);
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("upstream client keeps a pooled connection past the deadlines of the request before it", "[upstream]") {
  // Deadlines are armed lazily (the timer's wait outlives the request that set it): pooling must clear the
  // deadline, and a wait that fires during a later request must wait again for that request's own deadline.
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    {
      const auto request = chat();
      auto res = co_await client.send(request, 300ms);
      CHECK(res->status == 200);
      const std::string body = co_await res->read_all(300ms);
      CHECK(body.find("Hello from mock") != std::string::npos);
    }
    co_await sleep_for(500ms);  // idle in the pool well past that request's deadline
    {
      const auto request = chat();
      auto res = co_await client.send(request, 300ms);
      CHECK(res->status == 200);
      const std::string body = co_await res->read_all(300ms);
      CHECK(body.find("Hello from mock") != std::string::npos);
    }
    co_await sleep_for(150ms);
    {
      // Answered 250 ms after it was sent: past the 300 ms the timer still waits for from the request before
      // (150 ms ago), within this request's own 1 s.
      const auto request = chat({{"X-Mock-Stall-Ms", "250"}});
      auto res = co_await client.send(request, 1s);
      CHECK(res->status == 200);
      const std::string body = co_await res->read_all(1s);
      CHECK(body.find("Hello from mock") != std::string::npos);
    }
  });
  const auto requests = mock.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0]["connection"] == requests[1]["connection"]);
  CHECK(requests[1]["connection"] == requests[2]["connection"]);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("upstream client times out a silent stream", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    const auto request = chat({{"X-Mock-Chunks", "2"}, {"X-Mock-Delay-Ms", "5000"}}, kStreamBody);
    auto res = co_await client.send(request, 5s);
    const auto first = co_await res->read_some(5s);
    CHECK(first == sse_chunk(0));
    const auto start = Clock::now();
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await res->read_some(300ms); });
    CHECK(kind == up::ErrorKind::timeout);
    CHECK(Clock::now() - start < 3s);
    // The stream is dead after a failure, and says so.
    kind = co_await error_of([&]() -> net::awaitable<void> { co_await res->read_some(1s); });
    CHECK(kind == up::ErrorKind::closed);
  });
  CHECK(client.idle_connections() == 0);
  CHECK(mock.wait_for_stats([](const json& s) { return s["streams_aborted"] == 1; }, 3s));
}

TEST_CASE("upstream client reports a refused connection as a connect error", "[upstream]") {
  const int port = llmproxy::test::free_port();
  net::io_context io;
  up::Client client(io, local(port), {});
  run(io, [&]() -> net::awaitable<void> {
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await client.send(chat(), 5s); });
    CHECK(kind == up::ErrorKind::connect);
  });
}

TEST_CASE("upstream client does not pool a connection the upstream closes", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    {
      const auto request = chat({{"X-Mock-Close", "1"}});
      auto res = co_await client.send(request, 5s);
      CHECK(res->headers.get("Connection") == "close");
      co_await res->read_all(5s);
    }
    CHECK(client.idle_connections() == 0);
    auto res = co_await client.send(chat(), 5s);
    CHECK(res->status == 200);
    co_await res->read_all(5s);
  });
  const auto requests = mock.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0]["connection"] != requests[1]["connection"]);
}

TEST_CASE("upstream client drops pooled connections the upstream closed while idle", "[upstream]") {
  net::io_context io;
  // Answers once per connection with keep-alive, then closes: the pooled connection is dead by the next request.
  ScriptedServer server(io, [](tcp::socket socket, int index) -> net::awaitable<void> {
    std::string buffer;
    if (!(co_await read_request(socket, buffer)).empty()) {
      co_await write_text(socket, ok_response("answer " + std::to_string(index)));
    }
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      auto res = co_await client.send(chat(), 5s);
      const std::string body = co_await res->read_all(5s);
      CHECK(body == "answer " + std::to_string(i));
      res.reset();
      co_await sleep_for(100ms);  // let the server's close arrive
    }
    server.stop();
  });
  CHECK(server.accepted() == 2);
}

TEST_CASE("upstream client retries once when a pooled connection dies before answering", "[upstream]") {
  net::io_context io;
  int requests_seen = 0;
  ScriptedServer server(io, [&](tcp::socket socket, int index) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    ++requests_seen;
    co_await write_text(socket, ok_response(index == 0 ? "first" : "second"));
    if (index != 0) co_return;
    // The race a retry exists for: the upstream closes the idle connection just as the next request arrives.
    if (!(co_await read_request(socket, buffer)).empty()) ++requests_seen;
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto first = co_await client.send(chat(), 5s);
    const std::string first_body = co_await first->read_all(5s);
    CHECK(first_body == "first");
    first.reset();
    CHECK(client.idle_connections() == 1);
    auto second = co_await client.send(chat(), 5s);
    CHECK(second->status == 200);
    const std::string second_body = co_await second->read_all(5s);
    CHECK(second_body == "second");
    server.stop();
  });
  CHECK(server.accepted() == 2);
  CHECK(requests_seen == 3);
}

TEST_CASE("upstream client does not retry once response bytes arrived", "[upstream]") {
  net::io_context io;
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, ok_response("first"));
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, "HTTP/1.1 200 OK\r\nContent-Le");
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto first = co_await client.send(chat(), 5s);
    co_await first->read_all(5s);
    first.reset();
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await client.send(chat(), 5s); });
    CHECK(kind == up::ErrorKind::closed);
    server.stop();
  });
  CHECK(server.accepted() == 1);
}

TEST_CASE("upstream client does not retry a fresh connection", "[upstream]") {
  net::io_context io;
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    co_await read_request(socket, buffer);  // and close without answering
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await client.send(chat(), 5s); });
    CHECK(kind == up::ErrorKind::closed);
    server.stop();
  });
  CHECK(server.accepted() == 1);
}

TEST_CASE("upstream client reports malformed responses as protocol errors", "[upstream]") {
  net::io_context io;
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    co_await read_request(socket, buffer);  // until the client gives up and closes
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto res = co_await client.send(chat(), 5s);
    CHECK(res->streaming);
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await res->read_some(5s); });
    CHECK(kind == up::ErrorKind::protocol);
    server.stop();
  });
}

TEST_CASE("upstream client reports a body cut short as closed", "[upstream]") {
  net::io_context io;
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto res = co_await client.send(chat(), 5s);
    CHECK_FALSE(res->streaming);
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await res->read_all(5s); });
    CHECK(kind == up::ErrorKind::closed);
    server.stop();
  });
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("upstream client hands over a body that came with its header without waiting, and only then",
          "[upstream]") {
  net::io_context io;
  // First answer: head and body in one write. Second: the body 100 ms after the head.
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, ok_response("all at once"));
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    co_await sleep_for(100ms);
    co_await write_text(socket, "later");
  });
  up::Client client(io, local(server.port()), {});
  run(io, [&]() -> net::awaitable<void> {
    auto first = co_await client.send(chat(), 5s);
    if (!first->body_received()) co_await sleep_for(50ms);  // the head and body travel together on loopback
    REQUIRE(first->body_received());
    const std::optional<std::string> whole = first->read_received();
    REQUIRE(whole.has_value());
    CHECK(*whole == "all at once");
    CHECK(first->read_received() == std::optional<std::string>(""));  // nothing more: the body is complete
    first.reset();
    CHECK(client.idle_connections() == 1);  // read to its end: back in the pool

    auto second = co_await client.send(chat(), 5s);
    CHECK_FALSE(second->body_received());
    CHECK_FALSE(second->read_received().has_value());  // not there yet, and nothing consumed
    const std::string later = co_await second->read_all(5s);
    CHECK(later == "later");
    server.stop();
  });
}

TEST_CASE("upstream client reads a body delimited by the connection closing", "[upstream]") {
  net::io_context io;
  ScriptedServer server(io, [](tcp::socket socket, int) -> net::awaitable<void> {
    std::string buffer;
    if ((co_await read_request(socket, buffer)).empty()) co_return;
    co_await write_text(socket, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ");
    co_await sleep_for(50ms);
    co_await write_text(socket, "world");
  });
  up::Client client(io, local(server.port()), {});
  std::string body;
  run(io, [&]() -> net::awaitable<void> {
    auto res = co_await client.send(chat(), 5s);
    CHECK(res->streaming);
    while (auto piece = co_await res->read_some(5s)) body += *piece;
    server.stop();
  });
  CHECK(body == "hello world");
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("aborting or dropping a response closes the upstream stream promptly", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::Client client(io, local(mock.port()), {});
  const auto slow_stream = chat({{"X-Mock-Chunks", "5"}, {"X-Mock-Delay-Ms", "10000"}}, kStreamBody);
  run(io, [&]() -> net::awaitable<void> {
    auto res = co_await client.send(slow_stream, 5s);
    const auto first = co_await res->read_some(5s);
    CHECK(first == sse_chunk(0));
    res->abort();
    auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await res->read_some(1s); });
    CHECK(kind == up::ErrorKind::closed);
  });
  CHECK(mock.wait_for_stats(
      [](const json& s) { return s["streams_aborted"] == 1 && s["active_connections"] == 1; }, 2s));

  run(io, [&]() -> net::awaitable<void> {
    auto res = co_await client.send(slow_stream, 5s);
    const auto first = co_await res->read_some(5s);
    CHECK(first == sse_chunk(0));
    // Destroyed mid-body without abort(): same effect.
  });
  CHECK(mock.wait_for_stats(
      [](const json& s) { return s["streams_aborted"] == 2 && s["active_connections"] == 1; }, 2s));
  CHECK(client.idle_connections() == 0);
  CHECK(mock.stats()["streams_completed"] == 0);
}

TEST_CASE("upstream client expires idle pooled connections and caps the pool", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::ClientOptions options;
  options.idle_timeout = 200ms;
  options.max_idle_connections = 2;
  up::Client client(io, local(mock.port()), options);
  run(io, [&]() -> net::awaitable<void> {
    // Three exchanges open at once need three connections; only two stay.
    auto a = co_await client.send(chat(), 5s);
    auto b = co_await client.send(chat(), 5s);
    auto c = co_await client.send(chat(), 5s);
    for (auto* res : {&a, &b, &c}) co_await (*res)->read_all(5s);
    a.reset();
    b.reset();
    c.reset();
    CHECK(client.idle_connections() == 2);
    co_await sleep_for(300ms);
    auto d = co_await client.send(chat(), 5s);  // both idle ones are too old: a new connection
    co_await d->read_all(5s);
  });
  CHECK(client.idle_connections() == 1);
  CHECK(mock.stats()["connections_opened"] == 5);  // 4 + the stats request
}

TEST_CASE("upstream client pools a connection for users on its own io_context only", "[upstream]") {
  // The server runs one io_context per I/O thread: a connection used from another one would have every
  // operation cross between threads (its socket is registered with the first one's reactor).
  MockUpstream mock;
  net::io_context first;
  net::io_context second;
  up::Client client(first, local(mock.port()), {});
  auto exchange = [&]() -> net::awaitable<void> {
    // Short deadlines: run() returns once the pooled connection's deadline wait has fired.
    auto res = co_await client.send(chat(), 2s);
    const std::string body = co_await res->read_all(2s);
    CHECK(res->status == 200);
    CHECK(body.find("Hello from mock") != std::string::npos);
  };
  run(first, exchange);
  CHECK(client.idle_connections() == 1);
  run(second, exchange);  // the idle one belongs to `first`: a new connection
  CHECK(client.idle_connections() == 2);
  run(first, exchange);   // `first` finds its own again
  run(second, exchange);
  CHECK(client.idle_connections() == 2);
  CHECK(mock.stats()["connections_opened"] == 3);  // 2 + the stats request
  CHECK(mock.requests().size() == 4);
}

TEST_CASE("upstream client serves many coroutines on several threads", "[upstream]") {
  MockUpstream mock;
  net::io_context io;
  up::ClientOptions options;
  options.max_idle_connections = 4;
  options.io_threads = 2;  // pooled connections change threads: their deadline waits are stopped and rebound
  up::Client client(io, local(mock.port()), options);
  constexpr int kWorkers = 8;
  constexpr int kRounds = 5;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  for (int w = 0; w < kWorkers; ++w) {
    net::co_spawn(
        net::make_strand(io),
        [&, w]() -> net::awaitable<void> {
          for (int i = 0; i < kRounds; ++i) {
            const bool stream = (w + i) % 2 == 0;
            const auto request = stream ? chat({}, kStreamBody) : chat();  // GCC 12: no ?: temporaries in co_await
            auto res = co_await client.send(request, 10s);
            std::string body;
            while (auto piece = co_await res->read_some(10s)) body += *piece;
            const bool good = res->status == 200 && (stream ? body.ends_with("data: [DONE]\n\n")
                                                            : body.find("Hello from mock") != std::string::npos);
            ++(good ? ok : failed);
          }
        },
        [&](std::exception_ptr e) {
          if (e) ++failed;
        });
  }
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  CHECK(failed == 0);
  CHECK(ok == kWorkers * kRounds);
  CHECK(client.idle_connections() <= 4);
  CHECK(mock.requests().size() == kWorkers * kRounds);
}

TEST_CASE("upstream client fails TLS against a server that does not speak it", "[upstream][tls]") {
  MockUpstream mock;
  net::io_context io;
  for (const bool verify : {true, false}) {
    up::ClientOptions options;
    options.verify_tls = verify;
    options.connect_timeout = 5s;
    up::Client client(io, local(mock.port(), "https"), options);
    run(io, [&]() -> net::awaitable<void> {
      auto kind = co_await error_of([&]() -> net::awaitable<void> { co_await client.send(chat(), 5s); });
      CHECK(kind == up::ErrorKind::tls);
    });
  }
}

TEST_CASE("upstream client verifies certificates and host names", "[upstream][tls]") {
  // A throwaway self-signed certificate for "localhost" only, made now and removed at the end.
  const TempDir dir;
  const std::string cert = dir.file("cert.pem");
  const std::string key = dir.file("key.pem");
  auto [code, out] = run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days",
                                  "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"});
  REQUIRE(code == 0);

  // s_server -www answers each GET with an HTTP/1.0 page and closes: one connection at a time, which is all the
  // cases below need.
  Process server("openssl", {"s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-www"});
  const auto line = server.wait_for_line(std::regex(R"(ACCEPT 127\.0\.0\.1:\d+)"), 10s);
  REQUIRE(line);
  const int port = std::stoi(line->substr(line->rfind(':') + 1));

  net::io_context io;
  up::Request get;
  get.method = "GET";
  get.target = "/";
  const auto attempt = [&](const std::string& host, bool verify, const std::string& ca) {
    up::ClientOptions options;
    options.verify_tls = verify;
    options.ca_file = ca;
    up::Client client(io, local(port, "https", host), options);
    std::optional<up::ErrorKind> kind;
    std::string body;
    run(io, [&]() -> net::awaitable<void> {
      kind = co_await error_of([&]() -> net::awaitable<void> {
        auto res = co_await client.send(get, 5s);
        CHECK(res->status == 200);
        CHECK(res->streaming);  // HTTP/1.0 without a length: delimited by the close
        body = co_await res->read_all(5s);
      });
    });
    if (!kind) CHECK(body.find("HTML") != std::string::npos);
    return kind;
  };

  CHECK(attempt("localhost", true, cert) == std::nullopt);
  CHECK(attempt("localhost", true, "") == up::ErrorKind::tls);        // not signed by a trusted CA
  CHECK(attempt("127.0.0.1", true, cert) == up::ErrorKind::tls);      // trusted, but not issued for this name
  CHECK(attempt("127.0.0.1", false, "") == std::nullopt);             // verification off (tests only)
}
