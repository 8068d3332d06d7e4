#include "llmproxy/server/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "llmproxy/log/log.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// One accepted connection, registered so stop() can close idle ones. `in_exchange` is written on the
/// connection's strand and read by stop() from another thread, hence atomic.
struct Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::atomic<bool> in_exchange{false};
};

}  // namespace

/// State shared by the server and every session coroutine. Sessions hold a shared_ptr, so a coroutine frame
/// destroyed late (inside ~io_context) still finds it alive. The connection set is guarded by `mu`.
struct Shared {
  ServerOptions opts;
  Handler handler;
  ServerHooks hooks;
  std::mutex mu;
  std::unordered_set<std::shared_ptr<Conn>> conns;
  std::atomic<bool> stopping{false};
  std::function<void()> on_empty;  // set by stop(); called once when the last connection leaves
};

namespace {

class ConnGuard {
 public:
  ConnGuard(std::shared_ptr<Shared> shared, std::shared_ptr<Conn> conn)
      : shared_(std::move(shared)), conn_(std::move(conn)) {
    std::lock_guard lock(shared_->mu);
    shared_->conns.insert(conn_);
  }
  ~ConnGuard() {
    std::function<void()> notify;
    {
      std::lock_guard lock(shared_->mu);
      shared_->conns.erase(conn_);
      if (shared_->conns.empty() && shared_->stopping) notify = std::move(shared_->on_empty);
    }
    if (notify) notify();
  }
  ConnGuard(const ConnGuard&) = delete;
  ConnGuard& operator=(const ConnGuard&) = delete;

 private:
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Conn> conn_;
};

class SessionExchange final : public Exchange {
 public:
  SessionExchange(Conn& conn, const ServerOptions& opts, bool keep_alive, const std::atomic<bool>& stopping)
      : conn_(conn), opts_(opts), keep_alive_(keep_alive), stopping_(stopping) {}

  net::awaitable<void> respond(Response response) override {
    if (responded_) throw std::logic_error("respond() after a response was started");
    responded_ = true;
    status_ = response.status;
    http::response<http::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(response.status));
    for (const auto& f : response.headers) res.insert(f.name, f.value);
    add_common(res);
    res.keep_alive(keep_alive_ && !conn_closing());
    bytes_ = response.body.size();
    res.body() = std::move(response.body);
    res.prepare_payload();
    conn_.stream.expires_after(opts_.body_read_timeout);
    auto [ec, n] = co_await http::async_write(conn_.stream, res, kUseTuple);
    if (ec) client_gone_ = true;
    close_after_ = !res.keep_alive();
  }

  net::awaitable<bool> begin_stream(int status, Headers headers) override {
    if (responded_) throw std::logic_error("begin_stream() after a response was started");
    responded_ = true;
    streaming_ = true;
    status_ = status;
    http::response<http::empty_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(status));
    for (const auto& f : headers) res.insert(f.name, f.value);
    add_common(res);
    res.keep_alive(keep_alive_ && !conn_closing());
    close_after_ = !res.keep_alive();
    res.chunked(true);
    http::response_serializer<http::empty_body> sr(res);
    conn_.stream.expires_after(opts_.body_read_timeout);
    auto [ec, n] = co_await http::async_write_header(conn_.stream, sr, kUseTuple);
    if (ec) client_gone_ = true;
    co_return !client_gone_;
  }

  net::awaitable<bool> write_chunk(std::string_view data) override {
    if (client_gone_) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end the body
    conn_.stream.expires_after(opts_.body_read_timeout);
    auto [ec, n] = co_await net::async_write(conn_.stream, http::make_chunk(net::const_buffer(data.data(), data.size())),
                                             kUseTuple);
    if (ec) {
      client_gone_ = true;
      co_return false;
    }
    bytes_ += data.size();
    co_return true;
  }

  net::awaitable<bool> end_stream() override {
    if (client_gone_) co_return false;
    conn_.stream.expires_after(opts_.body_read_timeout);
    auto [ec, n] = co_await net::async_write(conn_.stream, http::make_chunk_last(), kUseTuple);
    if (ec) client_gone_ = true;
    stream_ended_ = !client_gone_;
    co_return !client_gone_;
  }

  bool responded() const override { return responded_; }
  net::any_io_executor executor() const override { return conn_.stream.get_executor(); }

  int status() const { return status_; }
  std::uint64_t bytes() const { return bytes_; }
  /// The connection cannot carry another request.
  bool must_close() const { return client_gone_ || close_after_ || (streaming_ && !stream_ended_); }

 private:
  template <class Res>
  void add_common(Res& res) const {
    res.set("X-Request-ID", request.request_id);
    res.set("X-Proxy", "llm-proxy");
  }
  /// A graceful stop began: tell the client this connection ends with the current response.
  bool conn_closing() const { return stopping_.load(std::memory_order_relaxed); }

  Conn& conn_;
  const ServerOptions& opts_;
  bool keep_alive_;
  const std::atomic<bool>& stopping_;
  bool responded_ = false;
  bool streaming_ = false;
  bool stream_ended_ = false;
  bool client_gone_ = false;
  bool close_after_ = false;
  int status_ = 0;
  std::uint64_t bytes_ = 0;
};

/// Writes a complete error response outside any handler (parse errors, 413, 431) and reports whether it went out.
net::awaitable<bool> write_plain_error(Conn& conn, const ServerOptions& opts, int status, std::string_view code,
                                       std::string_view message, std::string request_id) {
  Response r = Response::error(status, code, message);
  http::response<http::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(status));
  for (const auto& f : r.headers) res.insert(f.name, f.value);
  res.set("X-Request-ID", request_id);
  res.set("X-Proxy", "llm-proxy");
  res.keep_alive(false);
  res.body() = std::move(r.body);
  res.prepare_payload();
  conn.stream.expires_after(opts.header_read_timeout);
  auto [ec, n] = co_await http::async_write(conn.stream, res, kUseTuple);
  co_return !ec;
}

void log_access(const Request& req, const AccessInfo& access, int status, double ms, std::uint64_t bytes) {
  if (!log::enabled(log::Level::info)) return;
  nlohmann::json f = {{"request_id", req.request_id}, {"method", req.method},    {"path", std::string(req.path())},
                      {"status", status},             {"duration_ms", ms},        {"bytes", bytes},
                      {"client_ip", req.client_ip}};
  if (access.upstream_ms >= 0) f["upstream_ms"] = access.upstream_ms;
  if (!access.token_hint.empty()) f["token_hint"] = access.token_hint;
  if (!access.project_id.empty()) f["project_id"] = access.project_id;
  log::write(log::Level::info, "access", f);
}

net::awaitable<void> run_session(std::shared_ptr<Shared> shared, std::shared_ptr<Conn> conn) {
  ConnGuard guard(shared, conn);
  const ServerOptions& opts = shared->opts;
  if (shared->hooks.connection_opened_closed) shared->hooks.connection_opened_closed(1);
  struct ClosedHook {
    Shared& s;
    ~ClosedHook() {
      if (s.hooks.connection_opened_closed) s.hooks.connection_opened_closed(-1);
    }
  } closed_hook{*shared};

  std::string client_ip;
  {
    beast::error_code ec;
    auto ep = conn->stream.socket().remote_endpoint(ec);
    if (!ec) client_ip = ep.address().to_string();
  }
  beast::flat_buffer buffer;
  for (;;) {
    if (shared->stopping) break;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
    parser.body_limit(opts.max_request_size);
    conn->stream.expires_after(opts.header_read_timeout);
    auto [ec, n] = co_await http::async_read_header(conn->stream, buffer, parser, kUseTuple);
    if (ec) {
      // End of stream, timeout (slow client), reset or cancellation at shutdown: just close.
      // Request ids are built before each co_await: GCC 12 mishandles some temporaries in co_await expressions.
      std::string error_id = util::uuid_v4();
      if (ec == http::error::header_limit) {
        co_await write_plain_error(*conn, opts, 431, "request_header_too_large", "request header fields too large",
                                   error_id);
      } else if (ec == http::error::body_limit) {
        // A declared Content-Length above MAX_REQUEST_SIZE: Beast compares it with body_limit() as soon as the
        // header is complete, so the body is never read; the connection cannot be reused since it is in flight.
        co_await write_plain_error(*conn, opts, 413, "request_too_large", "request body too large", error_id);
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != net::error::operation_aborted &&
                 ec != net::error::connection_reset && ec != net::error::eof && buffer.size() > 0) {
        co_await write_plain_error(*conn, opts, 400, "bad_request", "malformed HTTP request", error_id);
      }
      break;
    }
    conn->in_exchange = true;
    const auto started = std::chrono::steady_clock::now();
    auto& hreq = parser.get();
    std::string request_id(hreq["X-Request-ID"]);
    if (!valid_request_id(request_id)) request_id = util::uuid_v4();

    if (beast::iequals(hreq[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      auto [wec, wn] = co_await http::async_write(conn->stream, cont, kUseTuple);
      if (wec) break;
    }
    if (!parser.is_done()) {
      conn->stream.expires_after(opts.body_read_timeout);
      auto [bec, bn] = co_await http::async_read(conn->stream, buffer, parser, kUseTuple);
      if (bec == http::error::body_limit) {
        co_await write_plain_error(*conn, opts, 413, "request_too_large", "request body too large", request_id);
        break;
      }
      if (bec) {
        if (bec != beast::error::timeout && bec != http::error::end_of_stream && bec != net::error::eof &&
            bec != net::error::connection_reset)
          co_await write_plain_error(*conn, opts, 400, "bad_request", "malformed HTTP request body", request_id);
        break;
      }
    }
    conn->stream.expires_never();

    const bool keep_alive = hreq.keep_alive() && !shared->stopping;
    SessionExchange ex(*conn, opts, keep_alive, shared->stopping);
    ex.request.method = std::string(hreq.method_string());
    ex.request.target = std::string(hreq.target());
    for (const auto& field : hreq) ex.request.headers.add(field.name_string(), field.value());
    ex.request.body = std::move(hreq.body());
    ex.request.request_id = std::move(request_id);
    ex.request.client_ip = client_ip;

    if (shared->hooks.request_in_flight) shared->hooks.request_in_flight(1);
    bool failed = false;
    try {
      co_await shared->handler(ex);
    } catch (const std::exception& e) {
      failed = true;
      log::write(log::Level::error, "handler_exception",
                 {{"request_id", ex.request.request_id}, {"error", e.what()}});
    }
    if (!ex.responded()) {
      Response internal = Response::error(500, "internal_error", "internal server error");
      co_await ex.respond(std::move(internal));
    }
    if (shared->hooks.request_in_flight) shared->hooks.request_in_flight(-1);

    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    log_access(ex.request, ex.access, ex.status(), ms, ex.bytes());
    if (shared->hooks.request_done) shared->hooks.request_done(ex.request, ex.access, ex.status(), ms, ex.bytes());
    conn->in_exchange = false;
    if (failed || ex.must_close() || !keep_alive) break;
  }
  beast::error_code ignored;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  conn->stream.socket().close(ignored);
}

}  // namespace

struct Server::Impl {
  // Declared first so it is destroyed last: every I/O object below belongs to it.
  net::io_context io;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  tcp::acceptor acceptor{io};
  net::steady_timer shutdown_timer{io};
  std::atomic<bool> stop_requested{false};

  explicit Impl(int threads) : io(threads) {}

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(io), kUseTuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        log::write(log::Level::warn, "accept_failed", {{"error", ec.message()}});
        net::steady_timer t(io, 50ms);
        co_await t.async_wait(kUseTuple);
        continue;
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto conn = std::make_shared<Conn>(std::move(socket));
      auto ex = conn->stream.get_executor();
      net::co_spawn(ex, run_session(shared, std::move(conn)), net::detached);
    }
  }
};

Server::Server(ServerOptions options, Handler handler, ServerHooks hooks)
    : impl_(std::make_unique<Impl>(std::max(1, options.io_threads))) {
  impl_->shared->opts = std::move(options);
  impl_->shared->handler = std::move(handler);
  impl_->shared->hooks = std::move(hooks);
}

Server::~Server() = default;

net::io_context& Server::io() { return impl_->io; }

std::uint16_t Server::listen() {
  const auto& opts = impl_->shared->opts;
  const std::string shown = (opts.host.empty() ? std::string() : opts.host) + ":" + std::to_string(opts.port);
  try {
    tcp::endpoint ep;
    if (opts.host.empty()) {
      ep = tcp::endpoint(tcp::v6(), opts.port);
    } else {
      tcp::resolver resolver(impl_->io);
      auto results = resolver.resolve(opts.host, std::to_string(opts.port), tcp::resolver::passive);
      if (results.empty()) throw std::runtime_error("cannot resolve host");
      ep = results.begin()->endpoint();
    }
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol());
    if (ep.protocol() == tcp::v6() && opts.host.empty()) {
      // Dual-stack: ":8080" means every IPv4 and IPv6 interface.
      boost::system::error_code ignored;
      acc.set_option(net::ip::v6_only(false), ignored);
    }
    acc.set_option(tcp::acceptor::reuse_address(true));
    acc.bind(ep);
    acc.listen(net::socket_base::max_listen_connections);
    return acc.local_endpoint().port();
  } catch (const std::exception& e) {
    if (impl_->acceptor.is_open()) {
      boost::system::error_code ignored;
      impl_->acceptor.close(ignored);
    }
    // system_error::what() carries Boost's source location; the code's message is what an operator needs.
    const auto* se = dynamic_cast<const boost::system::system_error*>(&e);
    throw std::runtime_error("cannot listen on " + shown + " (LISTEN_ADDR): " + (se ? se->code().message() : e.what()));
  }
}

void Server::run() {
  net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
  auto work = net::make_work_guard(impl_->io);
  const int n = std::max(1, impl_->shared->opts.io_threads);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n - 1));
  for (int i = 1; i < n; ++i) threads.emplace_back([this] { impl_->io.run(); });
  // The work guard keeps run() alive while idle; stop() ends it with io.stop() once drained.
  impl_->io.run();
  for (auto& t : threads) t.join();
}

void Server::stop(std::function<void()> on_drained) {
  if (impl_->stop_requested.exchange(true)) return;
  net::post(impl_->io, [this, on_drained = std::move(on_drained)]() mutable {
    auto shared = impl_->shared;
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    auto finish = [this, on_drained]() {
      net::post(impl_->io, [this, on_drained] {
        impl_->shutdown_timer.cancel();
        if (on_drained) on_drained();
        impl_->io.stop();
      });
    };
    std::vector<std::shared_ptr<Conn>> idle;
    bool empty = false;
    {
      std::lock_guard lock(shared->mu);
      shared->stopping = true;
      shared->on_empty = finish;
      empty = shared->conns.empty();
      for (const auto& c : shared->conns) idle.push_back(c);
    }
    if (empty) {
      std::function<void()> f;
      {
        std::lock_guard lock(shared->mu);
        f = std::move(shared->on_empty);
      }
      if (f) f();
      return;
    }
    // Idle keep-alive connections are closed now; busy ones close after their current exchange.
    for (auto& c : idle) {
      net::post(c->stream.get_executor(), [c] {
        if (!c->in_exchange) c->stream.cancel();
      });
    }
    impl_->shutdown_timer.expires_after(shared->opts.shutdown_timeout);
    impl_->shutdown_timer.async_wait([this, shared](boost::system::error_code ec) {
      if (ec) return;
      log::write(log::Level::warn, "shutdown_timeout", {{"open_connections", [&] {
                                                          std::lock_guard lock(shared->mu);
                                                          return shared->conns.size();
                                                        }()}});
      std::vector<std::shared_ptr<Conn>> all;
      {
        std::lock_guard lock(shared->mu);
        all.assign(shared->conns.begin(), shared->conns.end());
      }
      for (auto& c : all) {
        net::post(c->stream.get_executor(), [c] {
          beast::error_code ignored2;
          c->stream.socket().close(ignored2);
        });
      }
      // Give the closed sessions a moment to unwind, then stop regardless.
      auto t = std::make_shared<net::steady_timer>(impl_->io, 200ms);
      t->async_wait([this, t](boost::system::error_code) { impl_->io.stop(); });
    });
  });
}

void Server::abort() { impl_->io.stop(); }

}  // namespace llmproxy::server
