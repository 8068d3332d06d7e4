/// mock-upstream: the project's only fake, a stand-in for an OpenAI-compatible LLM provider.
///
///   mock-upstream [--port N]      (default 0 = ephemeral; binds 127.0.0.1; first stdout line is `PORT <n>`)
///
/// `/v1/*` requests are recorded and answered like OpenAI (JSON with usage 5 + 3, or SSE when the body has
/// `"stream": true`, ending with a usage chunk when it also has `"stream_options": {"include_usage": true}`).
/// Request headers steer the answer: X-Mock-Status, X-Mock-Chunks, X-Mock-Delay-Ms, X-Mock-Stall-Ms,
/// X-Mock-Body-Bytes, X-Mock-Close, X-Mock-Header (`Name: value`, repeatable: a field added to the response
/// as one more header line; with an `ETag` named so, a request whose If-None-Match equals it gets 304). `GET|DELETE /__mock/requests` and `GET /__mock/stats` inspect it.
/// One io_context on one thread, so all state below is confined to that thread and needs no locking.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::ordered_json;  // keeps the field order OpenAI uses, which some tests compare textually

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::uint64_t kMaxRequestBody = 256ULL * 1024 * 1024;
constexpr int kDefaultChunks = 3;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct Stats {
  std::uint64_t connections_opened = 0;
  std::uint64_t connections_closed = 0;
  std::uint64_t streams_started = 0;
  std::uint64_t streams_completed = 0;
  std::uint64_t streams_aborted = 0;
  std::uint64_t stalls_aborted = 0;  // X-Mock-Stall-Ms waits cut short because the client closed the connection
};

/// Everything the mock remembers. Confined to the single io_context thread.
struct State {
  json requests = json::array();
  Stats stats;
  std::uint64_t next_connection_id = 1;
};

/// Counts a connection as closed however its coroutine ends (including destruction at shutdown).
class ConnectionCount {
 public:
  explicit ConnectionCount(State& state) : state_(state) { ++state_.stats.connections_opened; }
  ~ConnectionCount() { ++state_.stats.connections_closed; }
  ConnectionCount(const ConnectionCount&) = delete;
  ConnectionCount& operator=(const ConnectionCount&) = delete;

 private:
  State& state_;
};

/// Integer knob from a request header; nullopt when absent or not a number.
std::optional<long long> knob(const Request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  std::string_view v = it->value();
  long long out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || end != v.data() + v.size()) return std::nullopt;
  return out;
}

std::chrono::milliseconds knob_ms(const Request& req, std::string_view name) {
  auto v = knob(req, name);
  return std::chrono::milliseconds(v && *v > 0 ? *v : 0);
}

/// Appends one field per `X-Mock-Header: Name: value` request header (e.g. a Connection line naming a header).
template <class Message>
void add_mock_headers(const Request& req, Message& res) {
  for (auto it = req.find("X-Mock-Header"); it != req.end(); ++it) {
    if (!beast::iequals(it->name_string(), "X-Mock-Header")) continue;
    const std::string_view v = it->value();
    const std::size_t colon = v.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view value = v.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    res.insert(v.substr(0, colon), value);
  }
}

json parse_body(const Request& req) {
  return json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
}

json record_of(const Request& req, std::uint64_t connection) {
  json headers = json::object();
  for (const auto& field : req) {
    const std::string_view name = field.name_string();
    const std::string value(field.value());
    // A repeated field joins the first one under its spelling, whatever case the repeat uses.
    bool joined = false;
    for (auto& [key, existing] : headers.items()) {
      if (beast::iequals(key, name)) {
        existing = existing.get<std::string>() + ", " + value;
        joined = true;
        break;
      }
    }
    if (!joined) headers[std::string(name)] = value;
  }
  return json{{"method", std::string(req.method_string())},
              {"target", std::string(req.target())},
              {"headers", std::move(headers)},
              {"body", req.body()},
              {"connection", connection}};
}

Response json_response(const Request& req, http::status status, const json& body) {
  Response res{status, req.version()};
  res.set(http::field::server, "mock-upstream");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

json completion_body(const std::string& model, std::size_t pad_to) {
  json body = {
      {"id", "chatcmpl-mock"},
      {"object", "chat.completion"},
      {"created", 1700000000},
      {"model", model},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", "Hello from mock"}}},
                                {"finish_reason", "stop"}}})},
      {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}}}};
  const std::size_t base = body.dump().size();
  constexpr std::size_t kPaddingOverhead = std::string_view(R"(,"padding":"")").size();
  if (pad_to > base + kPaddingOverhead) body["padding"] = std::string(pad_to - base - kPaddingOverhead, 'x');
  return body;
}

std::string sse_event(int index) {
  json chunk = {{"id", "chatcmpl-mock"},
                {"object", "chat.completion.chunk"},
                {"choices", json::array({{{"index", 0}, {"delta", {{"content", "tok" + std::to_string(index)}}}}})}};
  return "data: " + chunk.dump() + "\n\n";
}

/// The final chunk OpenAI sends when the request asks for `"stream_options": {"include_usage": true}`: no
/// choices, the usage of the whole stream (prompt 7, one completion token per content chunk).
std::string sse_usage_event(const std::string& model, int chunks) {
  json chunk = {{"id", "chatcmpl-mock"},
                {"object", "chat.completion.chunk"},
                {"model", model},
                {"choices", json::array()},
                {"usage", {{"prompt_tokens", 7}, {"completion_tokens", chunks}, {"total_tokens", 7 + chunks}}}};
  return "data: " + chunk.dump() + "\n\n";
}

/// The stream's usage event, when the request body asks for one.
std::optional<std::string> usage_event_for(const Request& req, int chunks) {
  const json body = json::parse(req.body(), nullptr, false);
  if (!body.is_object()) return std::nullopt;
  const auto options = body.find("stream_options");
  if (options == body.end() || !options->is_object() || options->value("include_usage", false) != true) {
    return std::nullopt;
  }
  const std::string model = body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>()
                                                                                 : std::string("gpt-mock");
  return sse_usage_event(model, chunks);
}

/// Notices the peer closing while a stream waits between events, without consuming request bytes: a pending
/// `wait_read` completes on EOF/reset (or on pipelined data, which ends the watch and is left in the socket).
struct PeerWatch {
  bool active = true;
  bool peer_closed = false;
  net::steady_timer* timer = nullptr;  // the stream's delay timer, cancelled to wake the stream early

  static void arm(const std::shared_ptr<PeerWatch>& watch, tcp::socket& socket) {
    socket.async_wait(tcp::socket::wait_read, [watch, &socket](beast::error_code ec) {
      if (!watch->active) return;  // the stream finished; socket and timer may be gone
      if (!ec) {
        beast::error_code avail_ec;
        const std::size_t available = socket.available(avail_ec);
        if (!avail_ec && available > 0) return;  // pipelined data, not a close
      }
      watch->peer_closed = true;
      if (watch->timer != nullptr) watch->timer->cancel();
    });
  }
};

/// Deactivates the watch before the timer it points to goes away, whatever way the stream ends.
class WatchGuard {
 public:
  WatchGuard(std::shared_ptr<PeerWatch> watch, tcp::socket& socket) : watch_(std::move(watch)), socket_(socket) {}
  ~WatchGuard() {
    watch_->active = false;
    beast::error_code ec;
    socket_.cancel(ec);
  }
  WatchGuard(const WatchGuard&) = delete;
  WatchGuard& operator=(const WatchGuard&) = delete;

 private:
  std::shared_ptr<PeerWatch> watch_;
  tcp::socket& socket_;
};

/// Streams N SSE events and [DONE]. Returns whether the connection may be reused.
net::awaitable<bool> send_stream(beast::tcp_stream& stream, const Request& req, bool keep_alive, State& state) {
  const int chunks = static_cast<int>(std::clamp(knob(req, "X-Mock-Chunks").value_or(kDefaultChunks), 0LL, 1000000LL));
  const auto delay = knob_ms(req, "X-Mock-Delay-Ms");

  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::server, "mock-upstream");
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Upstream-Header", "yes");
  add_mock_headers(req, res);
  res.keep_alive(keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  if (auto [ec, n] = co_await http::async_write_header(stream, serializer, kUseTuple); ec) co_return false;

  ++state.stats.streams_started;
  net::steady_timer timer(stream.get_executor());
  auto watch = std::make_shared<PeerWatch>();
  watch->timer = &timer;
  WatchGuard guard(watch, stream.socket());
  PeerWatch::arm(watch, stream.socket());

  auto abort = [&]() {
    ++state.stats.streams_aborted;
    beast::error_code ec;
    stream.socket().close(ec);
    return false;
  };

  const std::optional<std::string> usage_event = usage_event_for(req, chunks);
  for (int i = 0; i <= chunks; ++i) {
    if (i > 0 && delay.count() > 0) {
      timer.expires_after(delay);
      co_await timer.async_wait(kUseTuple);
    }
    if (watch->peer_closed) co_return abort();
    // Named, not a temporary in the co_await expression: GCC 12 mishandles those (double destruction).
    std::string event = i < chunks ? sse_event(i) : std::string("data: [DONE]\n\n");
    if (i == chunks && usage_event) event = *usage_event + event;
    const auto chunk = http::make_chunk(net::buffer(event));
    auto [ec, n] = co_await net::async_write(stream, chunk, kUseTuple);
    if (ec || watch->peer_closed) co_return abort();
  }
  const auto last = http::make_chunk_last();
  if (auto [ec, n] = co_await net::async_write(stream, last, kUseTuple); ec) co_return abort();
  ++state.stats.streams_completed;
  co_return keep_alive;
}

/// Writes a complete response. Returns whether the connection may be reused.
net::awaitable<bool> send(beast::tcp_stream& stream, Response res) {
  auto [ec, n] = co_await http::async_write(stream, res, kUseTuple);
  co_return !ec && res.keep_alive();
}

/// Answers one request. Returns whether the connection may be reused.
net::awaitable<bool> handle(beast::tcp_stream& stream, const Request& req, std::uint64_t connection, State& state) {
  const std::string_view target = req.target();

  if (target == "/__mock/requests" && req.method() == http::verb::get) {
    Response res = json_response(req, http::status::ok, state.requests);
    co_return co_await send(stream, std::move(res));
  }
  if (target == "/__mock/requests" && req.method() == http::verb::delete_) {
    state.requests = json::array();
    // Built outside the co_await expression: GCC 12 cannot keep an initializer_list array in a coroutine frame.
    Response res = json_response(req, http::status::ok, json{{"cleared", true}});
    co_return co_await send(stream, std::move(res));
  }
  if (target == "/__mock/stats" && req.method() == http::verb::get) {
    const Stats& s = state.stats;
    json body = {{"connections_opened", s.connections_opened},
                 {"connections_closed", s.connections_closed},
                 {"active_connections", s.connections_opened - s.connections_closed},
                 {"streams_started", s.streams_started},
                 {"streams_completed", s.streams_completed},
                 {"streams_aborted", s.streams_aborted},
                 {"stalls_aborted", s.stalls_aborted}};
    Response res = json_response(req, http::status::ok, body);
    co_return co_await send(stream, std::move(res));
  }
  if (target != "/v1" && !target.starts_with("/v1/") && !target.starts_with("/v1?")) {
    json body = {{"error", {{"message", "mock: no such path"}, {"type", "mock"}, {"code", 404}}}};
    Response res = json_response(req, http::status::not_found, body);
    co_return co_await send(stream, std::move(res));
  }

  state.requests.push_back(record_of(req, connection));
  const bool keep_alive = req.keep_alive() && knob(req, "X-Mock-Close").value_or(0) != 1;

  if (auto stall = knob_ms(req, "X-Mock-Stall-Ms"); stall.count() > 0) {
    net::steady_timer timer(stream.get_executor(), stall);
    // A client (the proxy) closing meanwhile ends the stall at once and is counted: tests measure how fast an
    // abandoned request is cancelled upstream.
    auto watch = std::make_shared<PeerWatch>();
    watch->timer = &timer;
    {
      WatchGuard guard(watch, stream.socket());
      PeerWatch::arm(watch, stream.socket());
      co_await timer.async_wait(kUseTuple);
    }
    if (watch->peer_closed) {
      ++state.stats.stalls_aborted;
      co_return false;
    }
  }

  if (auto status = knob(req, "X-Mock-Status"); status && *status >= 100 && *status <= 599) {
    json body = {{"error", {{"message", "mock error"}, {"type", "mock"}, {"code", *status}}}};
    Response res = json_response(req, http::status::ok, body);
    res.result(static_cast<unsigned>(*status));
    res.set("X-Upstream-Header", "yes");
    res.keep_alive(keep_alive);
    add_mock_headers(req, res);
    co_return co_await send(stream, std::move(res));
  }

  const json request_body = parse_body(req);
  bool streaming = false;
  if (request_body.is_object()) {
    auto it = request_body.find("stream");
    streaming = it != request_body.end() && it->is_boolean() && it->get<bool>();
  }
  if (streaming) co_return co_await send_stream(stream, req, keep_alive, state);

  std::string model = "gpt-mock";
  if (request_body.is_object() && request_body.contains("model") && request_body["model"].is_string()) {
    model = request_body["model"].get<std::string>();
  }
  const auto pad_to = static_cast<std::size_t>(std::max(0LL, knob(req, "X-Mock-Body-Bytes").value_or(0)));
  Response res = json_response(req, http::status::ok, completion_body(model, pad_to));
  res.set("X-Upstream-Header", "yes");
  res.keep_alive(keep_alive);
  add_mock_headers(req, res);
  // A conditional request naming the ETag given with X-Mock-Header gets 304 without a body (cache revalidation).
  const auto etag = res.find(http::field::etag);
  const auto condition = req.find(http::field::if_none_match);
  if (etag != res.end() && condition != req.end() && condition->value() == etag->value()) {
    res.result(http::status::not_modified);
    res.body().clear();
    res.erase(http::field::content_type);
    res.prepare_payload();
  }
  co_return co_await send(stream, std::move(res));
}

net::awaitable<void> session(tcp::socket socket, State& state) {
  ConnectionCount count(state);
  const std::uint64_t connection = state.next_connection_id++;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  try {
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxRequestBody);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (ec) break;  // peer closed, reset or sent garbage: the mock has nothing to say
      if (!co_await handle(stream, parser.get(), connection, state)) break;
    }
  } catch (const std::exception& e) {
    std::cerr << "mock-upstream: connection " << connection << ": " << e.what() << std::endl;
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

net::awaitable<void> accept_loop(tcp::acceptor acceptor, State& state) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. EMFILE or a connection reset before accept: keep serving
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(acceptor.get_executor(), session(std::move(socket), state), net::detached);
  }
}

int usage() {
  std::cerr << "usage: mock-upstream [--port N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "--port" && i + 1 < argc) {
      value = argv[++i];
    } else if (arg.starts_with("--port=")) {
      value = arg.substr(7);
    } else {
      return usage();
    }
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
    if (ec != std::errc{} || end != value.data() + value.size()) return usage();
  }

  try {
    State state;  // declared before the io_context: coroutine frames destroyed with it still count into it
    net::io_context ioc{1};
    // Handlers go in before the PORT line: a test may send SIGTERM as soon as it reads that line.
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    std::cout << "PORT " << acceptor.local_endpoint().port() << std::endl;
    net::co_spawn(ioc, accept_loop(std::move(acceptor), state), net::detached);
    ioc.run();
  } catch (const std::exception& e) {
    std::cerr << "mock-upstream: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
