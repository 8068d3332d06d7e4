#include "support/http_client.hpp"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <deque>
#include <functional>
#include <set>

namespace llmproxy::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMaxResponseBody = 1ULL << 30;

/// Runs one asynchronous operation on a private io_context, bounded by `timeout`. On expiry the socket's
/// pending operations are cancelled (the socket stays open and usable) and net::error::timed_out is returned.
/// `initiate` receives the completion handler to pass to the operation.
template <class Initiate>
beast::error_code run_bounded(net::io_context& ioc, tcp::socket& socket, Clock::duration timeout,
                              Initiate&& initiate) {
  std::optional<beast::error_code> result;
  initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run_for(std::max(timeout, Clock::duration::zero()));
  if (result) return *result;
  beast::error_code ignored;
  socket.cancel(ignored);
  ioc.restart();
  ioc.run();
  // The operation may have completed in the same instant as the deadline; then its result stands.
  if (result && *result != net::error::operation_aborted) return *result;
  return net::error::timed_out;
}

void connect(net::io_context& ioc, tcp::socket& socket, const std::string& host, int port,
             std::chrono::milliseconds timeout) {
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) throw HttpError("resolve " + host + ": " + ec.message());
  ec = run_bounded(ioc, socket, timeout,
                   [&](auto handler) { net::async_connect(socket, endpoints, std::move(handler)); });
  if (ec) throw HttpError("connect " + host + ":" + std::to_string(port) + ": " + ec.message());
  socket.set_option(tcp::no_delay(true), ec);
}

http::request<http::string_body> build_request(std::string_view method, std::string_view target,
                                               std::string_view body, const RequestHeaders& headers,
                                               const std::string& host_header) {
  http::request<http::string_body> req;
  req.version(11);
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(target);
  req.set(http::field::host, host_header);
  req.body() = std::string(body);
  req.prepare_payload();
  // The first occurrence of a name replaces what was computed above; later ones add repeated fields.
  std::set<std::string, CaseInsensitiveLess> seen;
  for (const auto& [name, value] : headers) {
    if (seen.insert(name).second) {
      req.set(name, value);
    } else {
      req.insert(name, value);
    }
  }
  return req;
}

Headers headers_of(const http::response_header<>& header) {
  Headers out;
  for (const auto& field : header) {
    std::string name(field.name_string());
    auto [it, inserted] = out.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  return out;
}

/// Non-blocking look at whether the peer has closed (or reset) the connection.
bool peer_still_there(tcp::socket& socket) {
  if (!socket.is_open()) return false;
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

void close_socket(tcp::socket& socket) {
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace

// --- CaseInsensitiveLess, HttpResponse -------------------------------------------------------------------

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

// --- HttpConnection --------------------------------------------------------------------------------------

struct HttpConnection::Impl {
  net::io_context ioc{1};
  tcp::socket socket{ioc};
  beast::flat_buffer buffer;
  std::string host_header;
  std::chrono::milliseconds timeout;
};

HttpConnection::HttpConnection(std::string host, int port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host_header = host + ":" + std::to_string(port);
  impl_->timeout = timeout;
  connect(impl_->ioc, impl_->socket, host, port, timeout);
}

HttpConnection::~HttpConnection() = default;

HttpResponse HttpConnection::request(std::string_view method, std::string_view target, std::string_view body,
                                     const RequestHeaders& headers) {
  Impl& c = *impl_;
  if (!c.socket.is_open()) throw HttpError("request on a closed connection");
  auto req = build_request(method, target, body, headers, c.host_header);
  const auto deadline = Clock::now() + c.timeout;

  beast::error_code ec = run_bounded(c.ioc, c.socket, deadline - Clock::now(), [&](auto handler) {
    http::async_write(c.socket, req, std::move(handler));
  });
  if (ec) {
    close_socket(c.socket);
    throw HttpError("write " + std::string(method) + " " + std::string(target) + ": " + ec.message());
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  if (req.method() == http::verb::head) parser.skip(true);
  ec = run_bounded(c.ioc, c.socket, deadline - Clock::now(), [&](auto handler) {
    http::async_read(c.socket, c.buffer, parser, std::move(handler));
  });
  if (ec) {
    close_socket(c.socket);
    throw HttpError("read response to " + std::string(method) + " " + std::string(target) + ": " + ec.message());
  }

  auto res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.headers = headers_of(res.base());
  out.body = std::move(res.body());
  if (!res.keep_alive()) close_socket(c.socket);
  return out;
}

bool HttpConnection::is_open() const { return peer_still_there(impl_->socket); }

void HttpConnection::close() { close_socket(impl_->socket); }

HttpResponse http_request(int port, std::string_view method, std::string_view target, std::string_view body,
                          const RequestHeaders& headers, std::chrono::milliseconds timeout) {
  HttpConnection connection("127.0.0.1", port, timeout);
  return connection.request(method, target, body, headers);
}

// --- StreamingResponse -----------------------------------------------------------------------------------

struct StreamingResponse::Impl {
  struct Chunk {
    std::string data;
    Clock::time_point arrived;
  };

  net::io_context ioc{1};
  tcp::socket socket{ioc};
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  // Beast keeps a reference to this callback, so it lives next to the parser.
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> on_chunk_body;

  int status = 0;
  Headers headers;
  std::string partial;           // the chunk being received
  std::deque<Chunk> ready;       // complete chunks not yet handed out
  std::size_t plain_taken = 0;   // bytes of a non-chunked body already handed out
  Clock::time_point last_time{};
  bool finished = false;
  bool timed_out = false;
  std::string error;

  /// Moves newly read bytes of a body that is not chunked into `ready` (a chunked body goes through the callback).
  void take_plain_body() {
    if (parser.chunked()) return;
    const std::string& body = parser.get().body();
    if (body.size() > plain_taken) {
      ready.push_back({body.substr(plain_taken), Clock::now()});
      plain_taken = body.size();
    }
  }
};

StreamingResponse::StreamingResponse(int port, std::string_view method, std::string_view target,
                                     std::string_view body, const RequestHeaders& headers,
                                     std::chrono::milliseconds header_timeout)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  const auto deadline = Clock::now() + header_timeout;
  connect(s.ioc, s.socket, "127.0.0.1", port, header_timeout);
  auto req = build_request(method, target, body, headers, "127.0.0.1:" + std::to_string(port));

  beast::error_code ec = run_bounded(s.ioc, s.socket, deadline - Clock::now(), [&](auto handler) {
    http::async_write(s.socket, req, std::move(handler));
  });
  if (ec) throw HttpError("write streaming request: " + ec.message());

  s.parser.body_limit(kMaxResponseBody);
  if (req.method() == http::verb::head) s.parser.skip(true);
  s.on_chunk_body = [&s](std::uint64_t remain, std::string_view data, beast::error_code&) -> std::size_t {
    s.partial.append(data);
    if (data.size() == remain) {
      s.ready.push_back({std::move(s.partial), Clock::now()});
      s.partial.clear();
    }
    return data.size();
  };
  s.parser.on_chunk_body(s.on_chunk_body);

  ec = run_bounded(s.ioc, s.socket, deadline - Clock::now(), [&](auto handler) {
    http::async_read_header(s.socket, s.buffer, s.parser, std::move(handler));
  });
  if (ec) {
    close_socket(s.socket);
    throw HttpError("read streaming response headers: " + ec.message());
  }
  s.status = static_cast<int>(s.parser.get().result_int());
  s.headers = headers_of(s.parser.get().base());
  s.finished = s.parser.is_done();
}

StreamingResponse::~StreamingResponse() = default;

int StreamingResponse::status() const { return impl_->status; }
const Headers& StreamingResponse::headers() const { return impl_->headers; }

std::string StreamingResponse::header(std::string_view name) const {
  auto it = impl_->headers.find(name);
  return it == impl_->headers.end() ? std::string() : it->second;
}

std::optional<std::string> StreamingResponse::next_chunk(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  s.timed_out = false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!s.ready.empty()) {
      Impl::Chunk chunk = std::move(s.ready.front());
      s.ready.pop_front();
      s.last_time = chunk.arrived;
      return std::move(chunk.data);
    }
    if (s.finished || !s.error.empty()) return std::nullopt;
    if (!s.socket.is_open()) {
      s.error = "closed by the client";
      return std::nullopt;
    }
    if (Clock::now() >= deadline) {
      s.timed_out = true;
      return std::nullopt;
    }
    const beast::error_code ec = run_bounded(s.ioc, s.socket, deadline - Clock::now(), [&](auto handler) {
      http::async_read_some(s.socket, s.buffer, s.parser, std::move(handler));
    });
    s.take_plain_body();
    if (ec == net::error::timed_out) continue;  // hand out what arrived, else report the timeout above
    if (ec) {
      s.error = ec.message();
      close_socket(s.socket);
    } else if (s.parser.is_done()) {
      s.finished = true;
    }
  }
}

StreamingResponse::Clock::time_point StreamingResponse::last_chunk_time() const { return impl_->last_time; }

std::string StreamingResponse::read_rest(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (auto chunk = next_chunk(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
    out += *chunk;
  }
  return out;
}

bool StreamingResponse::finished() const { return impl_->finished && impl_->ready.empty(); }
bool StreamingResponse::timed_out() const { return impl_->timed_out; }
std::string StreamingResponse::error() const { return impl_->error; }
void StreamingResponse::close() { close_socket(impl_->socket); }

// --- raw_exchange ----------------------------------------------------------------------------------------

std::string raw_exchange(int port, std::string_view bytes, std::chrono::milliseconds timeout, bool* peer_closed) {
  net::io_context ioc{1};
  tcp::socket socket(ioc);
  const auto deadline = Clock::now() + timeout;
  connect(ioc, socket, "127.0.0.1", port, timeout);
  if (peer_closed != nullptr) *peer_closed = false;

  // A server may answer and close before taking all of it (e.g. oversized headers); the reply still counts.
  run_bounded(ioc, socket, deadline - Clock::now(), [&](auto handler) {
    net::async_write(socket, net::buffer(bytes.data(), bytes.size()), std::move(handler));
  });

  std::string out;
  char piece[16 * 1024];
  for (;;) {
    std::size_t got = 0;
    const beast::error_code ec = run_bounded(ioc, socket, deadline - Clock::now(), [&](auto handler) {
      socket.async_read_some(net::buffer(piece), [&got, handler = std::move(handler)](beast::error_code e,
                                                                                       std::size_t n) mutable {
        got = n;
        handler(e);
      });
    });
    out.append(piece, got);
    if (!ec) continue;
    if (peer_closed != nullptr && ec != net::error::timed_out) *peer_closed = true;
    break;
  }
  close_socket(socket);
  return out;
}

}  // namespace llmproxy::test
