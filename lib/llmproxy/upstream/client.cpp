#include "llmproxy/upstream/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "llmproxy/log/log.hpp"
#include "llmproxy/server/http_parser.hpp"
#include "llmproxy/server/try_send.hpp"
#include "llmproxy/upstream/detail/connection.hpp"
#include "llmproxy/upstream/detail/pool.hpp"
#include "llmproxy/upstream/detail/request_head.hpp"

namespace llmproxy::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using detail::kUseTuple;
using namespace std::chrono_literals;

namespace {

/// read_all's cap: far above any JSON answer, low enough that a runaway upstream cannot exhaust memory.
constexpr std::size_t kMaxReadAllBytes = std::size_t{256} * 1024 * 1024;
/// Response header limit (Beast's default of 8 KiB is tight for providers that send many rate-limit headers).
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
/// How long a resolved host name is reused. Bursts of new connections then cost one lookup, not one each.
constexpr auto kResolveTtl = 30s;

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::end_of_stream).category();
}

/// The peer went away (or a pooled connection turned out dead): the kinds of failure a retry can fix.
bool is_peer_gone(const beast::error_code& ec) {
  return ec == net::error::eof || ec == http::error::end_of_stream || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted || ec == ssl::error::stream_truncated;
}

ErrorKind kind_of(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return ErrorKind::timeout;
  if (is_peer_gone(ec) || ec == http::error::partial_message) return ErrorKind::closed;
  if (is_http_error(ec)) return ErrorKind::protocol;
  if (ec.category() == net::error::get_ssl_category()) return ErrorKind::tls;
  return ErrorKind::closed;
}

/// Why a TLS handshake failed, with OpenSSL's verification reason when there is one.
std::string describe_tls_failure(const beast::error_code& ec, SSL* ssl) {
  std::string what = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) what.append(": ").append(X509_verify_cert_error_string(verify));
  return what;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

/// Why ConnectionResponse::start failed, and whether a fresh connection may try again.
struct Failure {
  ErrorKind kind;
  std::string message;
  bool retryable;
};

/// The part of the client that responses need after send() returned: they return connections to the pool.
struct Shared {
  Shared(std::size_t max_idle, std::chrono::milliseconds idle_timeout, std::string label, int io_threads)
      : pool(max_idle, idle_timeout), label(std::move(label)), io_threads(io_threads) {}
  detail::Pool pool;
  std::string label;  // "host:port", the only upstream detail error messages carry
  int io_threads;     // ClientOptions::io_threads
};

/// The Response of one request sent on one connection: start() sends the request and reads the header, the body
/// is read through it. Owns the connection until destroyed.
class ConnectionResponse final : public Response {
 public:
  ConnectionResponse(std::shared_ptr<Shared> shared, std::unique_ptr<detail::Connection> conn)
      : shared_(std::move(shared)), conn_(std::move(conn)) {}

  ~ConnectionResponse() override {
    if (!conn_) return;
    if (state_ == State::complete && parser_->keep_alive() && conn_->buffer().size() == 0) {
      // No deadline while pooled. With one I/O thread the timer's wait stays for the next request to reuse.
      if (shared_->io_threads > 1) {
        conn_->deadline().stop();
      } else {
        conn_->deadline().expires_never();
      }
      shared_->pool.put(std::move(conn_));
    } else {
      conn_->close();
    }
  }

  ConnectionResponse(const ConnectionResponse&) = delete;
  ConnectionResponse& operator=(const ConnectionResponse&) = delete;

  /// Sends the request and reads the response header within `header_timeout`. Returns the failure, if any.
  net::awaitable<std::optional<Failure>> start(const Request& request, std::string_view host_header,
                                               std::chrono::milliseconds header_timeout) {
    auto& conn = *conn_;
    detail::write_request_head(request, host_header, conn.head());
    // One deadline for writing and for the header: a provider that stops reading our body is as stuck as one
    // that never answers.
    conn.deadline().expires_after(header_timeout);
    beast::error_code ec;
    const std::array<net::const_buffer, 2> buffers{net::buffer(conn.head()), net::buffer(request.body)};
    // Over plain TCP the socket usually takes the whole request at once: then nothing is written asynchronously.
    const std::size_t sent = conn.is_tls() ? 0 : server::try_send(conn.tcp().native_handle(), buffers, ec);
    if (!ec && sent < net::buffer_size(buffers)) {
      beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(buffers);
      rest.consume(sent);
      std::tie(ec, std::ignore) = co_await conn.write(rest);
    }
    ec = conn.timeout_or(ec);
    if (ec) {
      state_ = State::broken;
      co_return Failure{kind_of(ec), shared_->label + ": sending the request: " + ec.message(), is_peer_gone(ec)};
    }

    const bool head = request.method == "HEAD";
    headers.reserve(16);
    for (;;) {
      parser_.emplace(server::HttpParser::Kind::response, headers);
      parser_->header_limit(kHeaderLimit);
      // Bodies are capped where they are collected (read_all); a relayed stream has no size limit.
      parser_->skip(head);
      ec = co_await pump(Until::header, nullptr);
      if (ec) {
        state_ = State::broken;
        const bool nothing_received = !parser_->got_some() && conn.buffer().size() == 0;
        co_return Failure{kind_of(ec), shared_->label + ": reading the response header: " + ec.message(),
                          nothing_received && is_peer_gone(ec)};
      }
      const int code = parser_->status();
      // Interim responses (100 Continue, 103 Early Hints) precede the real one; 101 would end HTTP altogether.
      if (code >= 100 && code < 200 && code != 101) {
        headers = server::Headers{};
        continue;
      }
      break;
    }

    status = parser_->status();
    streaming = parser_->chunked() || parser_->need_eof() || is_event_stream();
    state_ = parser_->is_done() ? State::complete : State::body;
    co_return std::nullopt;
  }

  net::awaitable<std::optional<std::string>> read_some(std::chrono::milliseconds idle_timeout) override {
    if (state_ == State::complete) co_return std::nullopt;
    check_readable();
    conn_->deadline().expires_after(idle_timeout);
    std::optional<std::string> out(std::in_place);
    if (auto ec = co_await pump(Until::some_body, &*out)) fail(ec);
    if (parser_->is_done()) state_ = State::complete;
    if (out->empty()) co_return std::nullopt;
    co_return out;
  }

  net::awaitable<std::string> read_all(std::chrono::milliseconds timeout) override {
    if (state_ == State::complete) co_return std::string();
    check_readable();
    std::string out = body_buffer();
    conn_->deadline().expires_after(timeout);
    if (auto ec = co_await pump(Until::done, &out)) fail(ec);
    state_ = State::complete;
    co_return out;
  }

  std::optional<std::string> read_received() override {
    if (!body_received()) return std::nullopt;
    if (state_ == State::complete) return std::string();
    check_readable();
    // A Content-Length body whose last byte is buffered: one pass of the parser, as pump() would make.
    std::string out = body_buffer();
    parser_->sink(&out);
    beast::error_code ec;
    put_buffered(ec);
    if (ec == http::error::need_more) ec = {};
    if (!ec && !parser_->is_done()) ec = http::error::partial_message;
    if (!ec && out.size() > kMaxReadAllBytes) ec = http::error::body_limit;
    if (ec) fail(ec);
    state_ = State::complete;
    return out;
  }

  void abort() override {
    state_ = State::broken;
    if (conn_) conn_->close();
  }

  bool body_received() const override {
    if (state_ == State::complete) return true;
    if (state_ != State::body || parser_->chunked()) return false;
    const auto remaining = parser_->content_length_remaining();
    return remaining && *remaining <= conn_->buffer().size();
  }

 private:
  enum class State { header, body, complete, broken };
  enum class Until { header, some_body, done };

  bool is_event_stream() const {
    constexpr std::string_view kType = "text/event-stream";
    const auto type = headers.get("content-type");
    return type.size() >= kType.size() && server::iequals(type.substr(0, kType.size()), kType);
  }

  /// Gives the parser what the connection has buffered and drops what it took. Returns the bytes taken.
  std::size_t put_buffered(beast::error_code& ec) {
    auto& buffer = conn_->buffer();
    const auto data = buffer.data();
    const std::size_t used = parser_->put(std::string_view(static_cast<const char*>(data.data()), data.size()), ec);
    buffer.consume(used);
    return used;
  }

  /// An empty string with room for the rest of a Content-Length body (within what read_all() accepts).
  std::string body_buffer() const {
    std::string out;
    if (const auto length = parser_->content_length_remaining(); length && *length <= kMaxReadAllBytes) {
      out.reserve(static_cast<std::size_t>(*length));
    }
    return out;
  }

  void check_readable() const {
    if (state_ != State::body) throw Error(ErrorKind::closed, shared_->label + ": response body no longer readable");
  }

  [[noreturn]] void fail(const beast::error_code& ec) {
    state_ = State::broken;
    conn_->close();
    if (ec == http::error::body_limit) {
      throw Error(ErrorKind::protocol, shared_->label + ": response body larger than the client accepts");
    }
    throw Error(kind_of(ec), shared_->label + ": reading the response body: " + ec.message());
  }

  /// Feeds buffered and then newly received bytes to the parser until `until` holds. Body bytes go to `out`.
  /// Never waits for more once the condition holds: a piece of body is returned as soon as it is decoded.
  net::awaitable<beast::error_code> pump(Until until, std::string* out) {
    auto& parser = *parser_;
    auto& buffer = conn_->buffer();
    parser.sink(out);
    const auto reached = [&] {
      switch (until) {
        case Until::header: return parser.is_header_done();
        case Until::some_body: return parser.is_done() || !out->empty();
        case Until::done: return parser.is_done();
      }
      return true;
    };
    for (;;) {
      if (buffer.size() > 0) {
        beast::error_code ec;
        const std::size_t used = put_buffered(ec);
        if (ec && ec != http::error::need_more) co_return ec;
        if (reached()) co_return beast::error_code{};
        if (until == Until::done && out->size() > kMaxReadAllBytes) co_return http::error::body_limit;
        if (!ec && used > 0 && buffer.size() > 0) continue;
      }
      auto [read_ec, n] = co_await conn_->read_some();
      buffer.commit(n);
      const beast::error_code ec = conn_->timeout_or(read_ec);
      if (!ec) continue;
      // End of input completes a body delimited by the close (TLS peers often skip close_notify); anywhere
      // else it is a truncated message.
      if ((ec == net::error::eof || ec == ssl::error::stream_truncated) && parser.got_some() && buffer.size() == 0) {
        beast::error_code eof_ec;
        parser.put_eof(eof_ec);
        co_return eof_ec;
      }
      co_return ec;
    }
  }

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<detail::Connection> conn_;
  std::optional<server::HttpParser> parser_;
  State state_ = State::header;
};

}  // namespace

struct Client::Impl : Shared {
  Impl(net::io_context& io_, Endpoint endpoint_, ClientOptions options_)
      : Shared(static_cast<std::size_t>(std::max(0, options_.max_idle_connections)), options_.idle_timeout, "",
               options_.io_threads),
        io(io_),
        endpoint(std::move(endpoint_)),
        options(std::move(options_)) {
    if (endpoint.scheme != "http" && endpoint.scheme != "https") {
      throw std::invalid_argument("upstream scheme must be http or https, not '" + endpoint.scheme + "'");
    }
    tls = endpoint.scheme == "https";
    if (endpoint.port == 0) endpoint.port = tls ? 443 : 80;
    // Bare host for resolving, SNI and verification; brackets only where a URL or Host header needs them.
    if (endpoint.host.size() > 2 && endpoint.host.front() == '[' && endpoint.host.back() == ']') {
      endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
    }
    if (endpoint.host.empty()) throw std::invalid_argument("upstream host is empty");
    ip_literal = is_ip_literal(endpoint.host);
    const bool v6 = endpoint.host.find(':') != std::string::npos;
    host_header = v6 ? "[" + endpoint.host + "]" : endpoint.host;
    label = host_header + ":" + std::to_string(endpoint.port);
    if (endpoint.port != (tls ? 443 : 80)) host_header = label;
    port_string = std::to_string(endpoint.port);

    if (ip_literal) {
      resolved = std::make_shared<const std::vector<tcp::endpoint>>(
          1, tcp::endpoint(net::ip::make_address(endpoint.host), endpoint.port));
      resolved_until = Clock::time_point::max();
    }
    if (tls) {
      ssl_ctx.emplace(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ssl_ctx->native_handle(), TLS1_2_VERSION);
      ssl_ctx->set_default_verify_paths();
      if (!options.ca_file.empty()) ssl_ctx->load_verify_file(options.ca_file);
      ssl_ctx->set_verify_mode(options.verify_tls ? ssl::verify_peer : ssl::verify_none);
    }
  }

  using Clock = std::chrono::steady_clock;
  using Endpoints = std::shared_ptr<const std::vector<tcp::endpoint>>;

  /// The host's addresses, from the cache while fresh. Throws Error{connect}.
  net::awaitable<Endpoints> resolve() {
    {
      std::lock_guard lock(resolve_mu);
      if (resolved && Clock::now() < resolved_until) co_return resolved;
    }
    tcp::resolver resolver(io.get_executor());
    auto [ec, results] = co_await resolver.async_resolve(endpoint.host, port_string, kUseTuple);
    if (ec) throw Error(ErrorKind::connect, label + ": resolving the host failed: " + ec.message());
    auto list = std::make_shared<std::vector<tcp::endpoint>>();
    list->reserve(results.size());
    for (const auto& entry : results) list->push_back(entry.endpoint());
    Endpoints fresh = std::move(list);
    std::lock_guard lock(resolve_mu);
    resolved = fresh;
    resolved_until = Clock::now() + kResolveTtl;
    co_return fresh;
  }

  /// After a failed connect the addresses may be what changed: look them up again next time.
  void forget_addresses() {
    if (ip_literal) return;
    std::lock_guard lock(resolve_mu);
    resolved.reset();
  }

  /// A new connection, connected (and TLS-handshaken) within connect_timeout. Throws Error.
  net::awaitable<std::unique_ptr<detail::Connection>> connect() {
    const Endpoints addresses = co_await resolve();
    // On the caller's io_context (the server runs one per I/O thread), so the socket's operations complete on
    // the thread that awaits them.
    const net::any_io_executor user = co_await net::this_coro::executor;
    net::io_context& home = context_of(user);
    auto conn = tls ? std::make_unique<detail::Connection>(home.get_executor(), *ssl_ctx)
                    : std::make_unique<detail::Connection>(home.get_executor());
    if (options.io_threads > 1) conn->deadline().run_on(user);
    conn->deadline().expires_after(options.connect_timeout);  // covers the TLS handshake too
    auto [ec, peer] = co_await net::async_connect(conn->tcp(), *addresses, kUseTuple);
    if (ec) {
      forget_addresses();
      throw Error(conn->deadline().expired() ? ErrorKind::timeout : ErrorKind::connect,
                  label + ": connect failed: " + (conn->deadline().expired() ? "timed out" : ec.message()));
    }
    // Requests go out in one write, but small interactive writes (TLS handshake) must not wait for ACKs.
    beast::error_code ignored;
    conn->tcp().set_option(tcp::no_delay(true), ignored);
    if (tls) co_await handshake(*conn);
    co_return conn;
  }

  /// The io_context behind `ex` (a strand's too), or the client's own for an executor of another kind.
  net::io_context& context_of(const net::any_io_executor& ex) {
    if (const auto* plain = ex.target<net::io_context::executor_type>()) return plain->context();
    if (const auto* strand = ex.target<net::strand<net::io_context::executor_type>>()) {
      return strand->get_inner_executor().context();
    }
    return io;
  }

  net::awaitable<void> handshake(detail::Connection& conn) {
    SSL* native = conn.tls().native_handle();
    // SNI carries host names only (RFC 6066); certificates for IP addresses are checked against the address.
    if (!ip_literal && SSL_set_tlsext_host_name(native, endpoint.host.c_str()) != 1) {
      throw Error(ErrorKind::tls, label + ": setting SNI failed");
    }
    if (options.verify_tls) {
      const bool ok = ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), endpoint.host.c_str()) == 1
                                 : SSL_set1_host(native, endpoint.host.c_str()) == 1;
      if (!ok) throw Error(ErrorKind::tls, label + ": setting the expected certificate name failed");
      SSL_set_hostflags(native, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    auto [ec] = co_await conn.tls().async_handshake(ssl::stream_base::client, kUseTuple);
    if (ec) {
      if (conn.deadline().expired()) throw Error(ErrorKind::timeout, label + ": TLS handshake failed: timed out");
      throw Error(ErrorKind::tls, label + ": TLS handshake failed: " + describe_tls_failure(ec, native));
    }
  }

  net::io_context& io;
  Endpoint endpoint;
  ClientOptions options;
  bool tls = false;
  bool ip_literal = false;
  std::string host_header;  // Host value when the caller sets none: host, plus :port when not the default
  std::string port_string;
  std::optional<ssl::context> ssl_ctx;  // shared by every TLS connection (SSL_CTX is safe to share)

  std::mutex resolve_mu;  // guards the two fields below
  Endpoints resolved;
  Clock::time_point resolved_until{};
};

Client::Client(net::io_context& io, Endpoint endpoint, ClientOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(endpoint), std::move(options))) {}

Client::~Client() { impl_->pool.shut(); }

net::awaitable<std::unique_ptr<Response>> Client::send(const Request& request,
                                                       std::chrono::milliseconds header_timeout) {
  // Keeps the client's state alive across suspensions even if the Client object goes away meanwhile.
  const std::shared_ptr<Impl> impl = impl_;
  const net::any_io_executor user = co_await net::this_coro::executor;
  net::execution_context& home = impl->context_of(user);
  auto conn = impl->pool.take(&home);
  bool fresh = conn == nullptr;
  // With several I/O threads a pooled connection's last user may have run on another one: its deadline (stopped
  // when pooled) now expires on this coroutine's executor.
  if (conn && impl->options.io_threads > 1) conn->deadline().run_on(user);
  for (;;) {
    if (!conn) conn = co_await impl->connect();
    auto response = std::make_unique<ConnectionResponse>(impl, std::move(conn));
    auto failure = co_await response->start(request, impl->host_header, header_timeout);
    if (!failure) co_return response;
    // Only a pooled connection that died before answering is retried: the upstream most likely closed it while
    // idle, so it never saw the request. Anything else may have been processed already.
    if (fresh || !failure->retryable) throw Error(failure->kind, std::move(failure->message));
    if (log::enabled(log::Level::debug)) {
      log::write(log::Level::debug, "upstream_retry", {{"upstream", impl->label}, {"error", failure->message}});
    }
    fresh = true;
  }
}

std::size_t Client::idle_connections() const { return impl_->pool.size(); }

}  // namespace llmproxy::upstream
