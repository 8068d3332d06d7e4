#include "llmproxy/server/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/this_coro.hpp>
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

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "llmproxy/log/log.hpp"
#include "llmproxy/server/head_writer.hpp"
#include "llmproxy/server/http_parser.hpp"
#include "llmproxy/server/socket_deadline.hpp"
#include "llmproxy/server/try_send.hpp"
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

/// How long and how much a connection keeps reading (and dropping) after an error response before it closes.
constexpr auto kLingerTime = 1s;
constexpr std::size_t kLingerBytes = 256 * 1024;
/// At most one "connections refused" warning per this period (the metric counts every one).
constexpr auto kRejectLogPeriod = 10s;

/// Why a request head is refused before any handler sees it.
struct Refusal {
  int status;
  std::string_view code;
  std::string_view message;
};

/// The request target in origin form (path + query). Absolute form (`http://authority/path?q`, what a client
/// talking to a forward proxy sends) is accepted as its path and query; its authority must be non-empty and
/// is otherwise ignored (routing never depends on Host). Anything else but `*` is refused.
std::optional<std::string> origin_form(std::string_view target) {
  if (target.starts_with('/') || target == "*") return std::string(target);
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const auto scheme = target.substr(0, scheme_end);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return std::nullopt;
  std::string_view rest = target.substr(scheme_end + 3);
  const auto path_start = rest.find_first_of("/?");
  const auto authority = rest.substr(0, path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  if (path_start == std::string_view::npos) return std::string("/");
  std::string out(rest.substr(path_start));
  if (out.front() == '?') out.insert(out.begin(), '/');
  return out;
}

/// A request being read: HttpParser writes the head straight into what the session hands the handler (method,
/// target, Headers) and the body into a string, so a request costs no intermediate message. The parser does the
/// syntax, the header and body limits and chunked decoding; check_head() decides which framing is accepted, from
/// what the parser tallied as the fields arrived.
struct RequestParser {
  Headers headers;
  std::string body;
  HttpParser http{HttpParser::Kind::request, headers};

  RequestParser() {
    headers.reserve(16);
    http.sink(&body);
  }
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;
  bool is_head() const { return http.method() == "HEAD"; }
};

/// The framing and header rules (RFC 9112 §6.1, §6.3, §3.2), decided like nginx from what the parser tallied:
/// exactly one Host on HTTP/1.1; Transfer-Encoding only as a single `chunked`; at most one Content-Length, a plain
/// number (`5, 5` and identical repeats are refused too, although harmless), never with Transfer-Encoding; at most
/// max_header_count fields.
std::optional<Refusal> check_head(const RequestParser& parsed, const ServerOptions& opts) {
  const HttpParser::Tally& req = parsed.http.tally();
  if (req.fields > opts.max_header_count) {
    return Refusal{431, "request_header_too_large", "too many request header fields"};
  }
  if (req.hosts > 1) return Refusal{400, "bad_request", "more than one Host header"};
  if (req.hosts == 0 && parsed.http.version() >= 11) return Refusal{400, "bad_request", "missing Host header"};
  if (req.encodings > 1 ||
      (req.encodings == 1 && !iequals(trim_ows(parsed.headers[req.encoding_at].value), "chunked"))) {
    return Refusal{400, "bad_request", "unsupported Transfer-Encoding (only chunked is accepted)"};
  }
  if (req.encodings > 0 && req.lengths > 0) {
    return Refusal{400, "bad_request", "both Content-Length and Transfer-Encoding"};
  }
  if (req.lengths > 1) return Refusal{400, "bad_request", "more than one Content-Length header"};
  if (req.lengths == 1) {
    const auto v = trim_ows(parsed.headers[req.length_at].value);
    if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) {
      return Refusal{400, "bad_request", "invalid Content-Length"};
    }
  }
  return std::nullopt;
}

/// How a response body is delimited on the wire.
enum class Framing { length, chunked, until_close, none };

bool is_framing_field(std::string_view name) {
  return iequals(name, "Connection") || iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "X-Request-ID") || iequals(name, "X-Proxy");
}

/// 1xx, 204 and 304 responses carry no body and no framing field (RFC 9110 §6.4.1).
bool bodiless(int status) { return status < 200 || status == 204 || status == 304; }

/// Serialises a response head into `out` (cleared first; its capacity is reused across a connection's
/// responses) so the head and the body leave in one write. The server owns the framing fields: a handler's
/// Connection, Content-Length or Transfer-Encoding is replaced by what this response really uses, and
/// X-Request-ID / X-Proxy are always the session's. `length` is used with Framing::length.
void serialize_head(std::string& out, unsigned version, int status, const Headers& headers,
                    std::string_view request_id, std::string_view correlation_id, Framing framing,
                    std::uint64_t length, bool keep_alive) {
  std::size_t bound = request_id.size() + correlation_id.size() + 256;  // the fixed parts and the status line
  for (const auto& f : headers) bound += f.name.size() + f.value.size() + 4;
  HeadWriter w(out, bound);
  char digits[24];
  auto number = [&digits](std::uint64_t n) {
    return std::string_view(digits, static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, n).ptr - digits));
  };
  w.put(version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ").put(number(static_cast<unsigned>(status))).put(" ");
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  if (!reason.starts_with('<')) w.put(std::string_view(reason.data(), reason.size()));  // "<unknown-status>": none
  w.put("\r\n");
  for (const auto& f : headers) {
    if (is_framing_field(f.name) || (!correlation_id.empty() && iequals(f.name, "X-Correlation-ID"))) continue;
    w.put(f.name).put(": ").put(f.value).put("\r\n");
  }
  w.put("X-Request-ID: ").put(request_id).put("\r\nX-Proxy: llm-proxy\r\n");
  if (!correlation_id.empty()) w.put("X-Correlation-ID: ").put(correlation_id).put("\r\n");
  if (!bodiless(status)) {
    if (framing == Framing::length) {
      w.put("Content-Length: ").put(number(length)).put("\r\n");
    } else if (framing == Framing::chunked) {
      w.put("Transfer-Encoding: chunked\r\n");
    }
  }
  if (framing == Framing::until_close || (!keep_alive && version >= 11)) {
    w.put("Connection: close\r\n");
  } else if (keep_alive && version < 11) {
    w.put("Connection: keep-alive\r\n");
  }
  w.put("\r\n");
}

/// One accepted connection, registered so stop() can close idle ones. `in_exchange` is written on the
/// connection's strand and read by stop() from another thread, hence atomic. Everything else is used on the
/// strand only.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor(), socket) {}
  tcp::socket socket;
  /// Bounds each read and write (HEADER_READ_TIMEOUT, WRITE_TIMEOUT): closes the socket when it passes.
  SocketDeadline deadline;
  std::atomic<bool> in_exchange{false};
  /// Bound to the session coroutine's cancellation slot: emitted (on the strand) when the client leaves while a
  /// handler's work runs (SessionExchange::unless_client_leaves). The session's completion handler owns the
  /// Conn, so the signal outlives the coroutine's use of it.
  net::cancellation_signal cancel;
  /// Bytes read and not parsed yet: the start of the next request (read by the departure watch, or pipelined).
  beast::flat_buffer buffer;

  /// The departure watch: one read of the client's next bytes, started by unless_client_leaves() while a
  /// handler's work runs. A failure while watching means the client left. When the work ends first with nothing
  /// buffered (the usual case) the read is left pending (no cancellation, no wait) and becomes the first read of
  /// the next request: the session waits for it instead of starting another. The buffer is never consumed or
  /// prepared while a read is pending (flat_buffer moves its contents), so with bytes buffered the read is
  /// cancelled and waited for instead.
  struct Watch {
    explicit Watch(const net::any_io_executor& ex) : settled(ex, net::steady_timer::time_point::max()) {}
    bool pending = false;   // a watch read is outstanding
    bool watching = false;  // a handler's work runs under unless_client_leaves()
    bool gone = false;      // the read failed while watching: the client left
    /// The read failed while nobody watched (EOF, reset, the socket closed by the deadline or at shutdown):
    /// the next request's read fails with this.
    boost::system::error_code ended;
    std::size_t limit = 0;  // stop reading once this many bytes are buffered (the header limit)
    /// Woken (cancelled) when a read finishes, for a session waiting for it before it reads the next request.
    /// Made once per connection; its wait never expires by itself.
    net::steady_timer settled;
    bool waiting = false;  // the session waits on `settled`
  } watch{socket.get_executor()};

  /// Starts a watch read into `buffer`, unless the header limit is buffered already (memory stays bounded; the
  /// rest then waits in the socket).
  void start_watch();
  void on_watch(boost::system::error_code ec, std::size_t n);
};

void Conn::start_watch() {
  if (buffer.size() >= watch.limit) return;
  auto space = buffer.prepare(std::min<std::size_t>(4096, watch.limit - buffer.size()));
  watch.pending = true;
  // The completion holds the connection: the read may outlive the exchange, and the session too.
  socket.async_read_some(space, [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
    self->on_watch(ec, n);
  });
}

void Conn::on_watch(boost::system::error_code ec, std::size_t n) {
  watch.pending = false;
  if (!ec) {
    buffer.commit(n);
    if (watch.watching) start_watch();
  } else if (watch.watching) {
    // Cancelled (a forced close at shutdown) is not a departure; EOF, reset and other failures are.
    if (ec != net::error::operation_aborted) {
      watch.gone = true;
      cancel.emit(net::cancellation_type::terminal);
    }
  } else {
    watch.ended = ec;
  }
  if (!watch.pending && watch.waiting) watch.settled.cancel();
}

}  // namespace

/// State shared by the server and every session coroutine. Sessions hold a shared_ptr, so a coroutine frame
/// destroyed late (inside ~io_context) still finds it alive. The connection set is guarded by `mu`.
struct Shared {
  ServerOptions opts;
  Handler handler;
  ServerHooks hooks;
  std::mutex mu;
  std::unordered_set<std::shared_ptr<Conn>> conns;
  std::atomic<int> open{0};  // accepted and not yet closed; counted by the accept loop, so the cap is exact
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
    shared_->open.fetch_sub(1, std::memory_order_relaxed);
    if (notify) notify();
  }
  ConnGuard(const ConnGuard&) = delete;
  ConnGuard& operator=(const ConnGuard&) = delete;

 private:
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Conn> conn_;
};

/// Cancels the connection's pending I/O when a deadline passes: socket.cancel(), not close, so the session
/// can still answer (408). Runs on the connection's strand; disarmed when destroyed.
class CancelAt {
 public:
  CancelAt(const std::shared_ptr<Conn>& conn, std::chrono::milliseconds after)
      : state_(std::make_shared<State>()), timer_(conn->socket.get_executor()) {
    timer_.expires_after(after);
    timer_.async_wait([state = state_, conn](boost::system::error_code ec) {
      if (ec || !state->armed) return;
      state->fired = true;
      boost::system::error_code ignored;
      conn->socket.cancel(ignored);
    });
  }
  ~CancelAt() {
    state_->armed = false;
    timer_.cancel();
  }
  CancelAt(const CancelAt&) = delete;
  CancelAt& operator=(const CancelAt&) = delete;

  bool fired() const { return state_->fired; }

 private:
  struct State {
    bool armed = true;
    bool fired = false;
  };
  std::shared_ptr<State> state_;
  net::steady_timer timer_;
};

class SessionExchange final : public Exchange {
 public:
  SessionExchange(Conn& conn, std::string& scratch, const ServerOptions& opts,
                  unsigned version, bool keep_alive, bool head, const std::atomic<bool>& stopping)
      : conn_(conn),
        scratch_(scratch),
        opts_(opts),
        version_(version),
        keep_alive_(keep_alive),
        head_(head),
        stopping_(stopping) {}

  net::awaitable<void> respond(Response response) override {
    start("respond()", response.status);
    const bool keep_alive = keep_alive_ && !conn_closing();
    close_after_ = !keep_alive;
    if (bodiless(response.status)) response.body.clear();
    serialize_head(scratch_, version_, response.status, response.headers, request.request_id, request.correlation_id,
                   Framing::length, response.body.size(), keep_alive);
    conn_.deadline.expires_after(opts_.write_timeout);
    // HEAD: Content-Length states what GET would send; no body byte follows (RFC 9110 §9.3.2).
    if (!head_) bytes_ = response.body.size();
    const std::array<net::const_buffer, 2> wire{net::buffer(scratch_), net::buffer(response.body.data(), bytes_)};
    // Usually the socket takes it all at once: then nothing is written asynchronously.
    beast::error_code ec;
    const std::size_t sent = try_send(conn_.socket.native_handle(), wire, ec);
    if (!ec && sent < net::buffer_size(wire)) {
      beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(wire);
      rest.consume(sent);
      std::tie(ec, std::ignore) = co_await net::async_write(conn_.socket, rest, kUseTuple);
    }
    if (ec) client_gone_ = true;
  }

  net::awaitable<bool> begin_stream(int status, Headers headers) override {
    start("begin_stream()", status);
    bool keep_alive = keep_alive_ && !conn_closing();
    Framing framing = Framing::chunked;
    if (head_) {
      mode_ = Mode::no_body;
      framing = Framing::none;
    } else if (version_ < 11) {
      // HTTP/1.0 has no chunked coding: the body ends when the connection does.
      mode_ = Mode::until_close;
      framing = Framing::until_close;
      keep_alive = false;
    } else {
      mode_ = Mode::chunked;
    }
    serialize_head(scratch_, version_, status, headers, request.request_id, request.correlation_id, framing, 0,
                   keep_alive);
    co_return co_await write_head(keep_alive);
  }

  net::awaitable<bool> begin_sized(int status, Headers headers, std::uint64_t content_length) override {
    start("begin_sized()", status);
    const bool keep_alive = keep_alive_ && !conn_closing();
    serialize_head(scratch_, version_, status, headers, request.request_id, request.correlation_id, Framing::length,
                   content_length, keep_alive);
    mode_ = head_ ? Mode::no_body : Mode::sized;
    expected_ = content_length;
    co_return co_await write_head(keep_alive);
  }

  net::awaitable<bool> write_chunk(std::string_view data) override {
    if (client_gone_ || mode_ == Mode::no_body || mode_ == Mode::none) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end the body
    if (mode_ == Mode::sized && data.size() > expected_ - bytes_) co_return false;  // more than announced
    conn_.deadline.expires_after(opts_.write_timeout);
    beast::error_code ec;
    if (mode_ == Mode::chunked) {
      // chunk-size CRLF data CRLF, in one write.
      std::array<char, 24> size_line{};
      const auto [end, err] = std::to_chars(size_line.data(), size_line.data() + 16, data.size(), 16);
      static_cast<void>(err);  // 16 hex digits hold any size_t
      end[0] = '\r';
      end[1] = '\n';
      const std::array<net::const_buffer, 3> chunk{
          net::buffer(size_line.data(), static_cast<std::size_t>(end + 2 - size_line.data())),
          net::buffer(data.data(), data.size()), net::buffer("\r\n", 2)};
      std::tie(ec, std::ignore) = co_await net::async_write(conn_.socket, chunk, kUseTuple);
    } else {
      std::tie(ec, std::ignore) = co_await net::async_write(conn_.socket, net::buffer(data), kUseTuple);
    }
    if (ec) {
      client_gone_ = true;
      co_return false;
    }
    bytes_ += data.size();
    co_return true;
  }

  net::awaitable<bool> end_stream() override {
    if (client_gone_) co_return false;
    switch (mode_) {
      case Mode::chunked: {
        conn_.deadline.expires_after(opts_.write_timeout);
        auto [ec, n] = co_await net::async_write(conn_.socket, net::buffer("0\r\n\r\n", 5), kUseTuple);
        if (ec) client_gone_ = true;
        stream_ended_ = !client_gone_;
        break;
      }
      case Mode::sized: stream_ended_ = bytes_ == expected_; break;
      case Mode::until_close:
      case Mode::no_body: stream_ended_ = true; break;
      case Mode::none: break;
    }
    co_return !client_gone_;
  }

  net::awaitable<bool> unless_client_leaves(net::awaitable<void> work) override {
    // The watch is a plain read with a callback, not a second coroutine raced with `work`: racing two
    // coroutines (awaitable operators) cost about 2,700 more instructions per request (bench/instructions.sh). A
    // departure is signalled through the session coroutine's own cancellation slot, which cancels whatever `work`
    // awaits. When the work ends first the read stays pending for the next request (Conn::Watch).
    auto& watch = conn_.watch;
    watch.watching = true;
    watch.limit = opts_.max_header_size;
    if (!watch.pending) conn_.start_watch();
    std::exception_ptr failure;
    try {
      co_await std::move(work);
    } catch (...) {
      failure = std::current_exception();
    }
    watch.watching = false;
    if (watch.pending && conn_.buffer.size() > 0) {
      // A pipelined request is buffered and the read goes on after it. The session must not parse (consume)
      // while a read may still write into the buffer, and that read may never finish (the client waits for
      // answers): stop it and wait until it has. Without buffered bytes the read is left for the session.
      boost::system::error_code ignored;
      conn_.socket.cancel(ignored);
      watch.waiting = true;
      while (watch.pending) co_await watch.settled.async_wait(kUseTuple);
      watch.waiting = false;
      if (watch.ended == net::error::operation_aborted) watch.ended = {};
    }
    if (watch.gone) {
      client_gone_ = true;
      // The departure left the cancellation recorded in this coroutine's state (its next operation would throw).
      co_await net::this_coro::reset_cancellation_state();
      co_return false;
    }
    if (failure) std::rethrow_exception(failure);
    co_return true;
  }

  bool responded() const override { return mode_ != Mode::none || responded_; }

  net::any_io_executor executor() const override { return conn_.socket.get_executor(); }

  int status() const override { return status_ == 0 && client_gone_ ? 499 : status_; }
  std::uint64_t bytes() const { return bytes_; }
  /// The client was seen leaving (a failed write, or the watch of unless_client_leaves()).
  bool peer_gone() const { return client_gone_; }
  /// The connection cannot carry another request.
  bool must_close() const {
    const bool body_open = mode_ != Mode::none && !stream_ended_;
    return client_gone_ || close_after_ || body_open;
  }

 private:
  /// none: respond() or nothing yet; the others: how a body begun with begin_stream/begin_sized is framed.
  enum class Mode { none, chunked, sized, until_close, no_body };

  void start(const char* what, int status) {
    if (responded()) throw std::logic_error(std::string(what) + " after a response was started");
    responded_ = true;
    status_ = status;
  }

  /// Sends the head serialised into scratch_ by begin_stream()/begin_sized().
  net::awaitable<bool> write_head(bool keep_alive) {
    close_after_ = !keep_alive || mode_ == Mode::until_close;
    if (mode_ == Mode::no_body) stream_ended_ = true;
    conn_.deadline.expires_after(opts_.write_timeout);
    auto [ec, n] = co_await net::async_write(conn_.socket, net::buffer(scratch_), kUseTuple);
    if (ec) client_gone_ = true;
    co_return !client_gone_ && mode_ != Mode::no_body;
  }

  /// A graceful stop began: tell the client this connection ends with the current response.
  bool conn_closing() const { return stopping_.load(std::memory_order_relaxed); }

  Conn& conn_;
  std::string& scratch_;  // the serialised response head; the session's, reused across its requests
  const ServerOptions& opts_;
  unsigned version_;
  bool keep_alive_;
  bool head_;
  const std::atomic<bool>& stopping_;
  Mode mode_ = Mode::none;
  bool responded_ = false;
  bool stream_ended_ = false;
  bool client_gone_ = false;
  bool close_after_ = false;
  int status_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t expected_ = 0;
};

/// What an error the session answers itself is about: the ids to echo, and once a head was parsed, its target
/// and Origin (for ServerHooks::shape_error) and whether it was a HEAD.
struct ErrorContext {
  std::string request_id;
  std::string correlation_id;
  std::string target;
  std::string origin;
  bool head = false;
};

/// The error response the session sends itself: ServerHooks::shape_error's when it gives one, else the default.
Response session_error(const Shared& shared, int status, std::string_view code, std::string_view message,
                       std::string_view target, std::string_view origin) {
  if (shared.hooks.shape_error && !target.empty()) {
    if (auto shaped = shared.hooks.shape_error(target, origin, status, code, message)) return std::move(*shaped);
  }
  return Response::error(status, code, message);
}

/// The client's X-Request-ID when valid, else a new UUID.
std::string request_id_of(const RequestParser& req) {
  std::string id(req.headers.get("X-Request-ID"));
  if (!valid_request_id(id)) id = util::uuid_v4();
  return id;
}

/// The client's X-Correlation-ID when valid (same rule as X-Request-ID), else empty: none is invented.
std::string correlation_id_of(const RequestParser& req) {
  std::string id(req.headers.get("X-Correlation-ID"));
  if (!valid_request_id(id)) id.clear();
  return id;
}

/// The context of an error answered after `req`'s head was parsed (copies made on error paths only).
ErrorContext error_context(const RequestParser& req, std::string request_id, std::string correlation_id) {
  const std::optional<std::string> target = origin_form(req.http.target());
  return ErrorContext{std::move(request_id), std::move(correlation_id), target.value_or(std::string{}),
                      std::string(req.headers.get("Origin")), req.is_head()};
}

/// Feeds the bytes already buffered to `parser` without reading (the header only, or what there is of the body
/// once the header is parsed). Needing more bytes is not an error.
beast::error_code parse_buffered(RequestParser& parser, beast::flat_buffer& buffer) {
  beast::error_code ec;
  if (buffer.size() == 0) return ec;
  const auto data = buffer.data();
  buffer.consume(parser.http.put(std::string_view(static_cast<const char*>(data.data()), data.size()), ec));
  if (ec == http::error::need_more) ec = {};
  return ec;
}

/// Reads from the client into `buffer` and parses until the request's header (`header_only`) or the whole
/// request is in. The end of input is http::error::end_of_stream before any byte, else partial_message.
net::awaitable<beast::error_code> read_request(tcp::socket& socket, beast::flat_buffer& buffer, RequestParser& parser,
                                               bool header_only) {
  for (;;) {
    const std::size_t room = buffer.capacity() - buffer.size();
    auto space = buffer.prepare(std::clamp<std::size_t>(room, 4096, 65536));
    auto [ec, n] = co_await socket.async_read_some(space, kUseTuple);
    if (ec == net::error::eof) {
      co_return parser.http.got_some() || buffer.size() > 0 ? http::error::partial_message : http::error::end_of_stream;
    }
    if (ec) co_return ec;
    buffer.commit(n);
    if (const beast::error_code pec = parse_buffered(parser, buffer)) co_return pec;
    if (header_only ? parser.http.is_header_done() : parser.http.is_done()) co_return beast::error_code{};
  }
}

/// Writes a complete error response outside any handler (framing errors, 408, 413, 431) and reports whether
/// it went out. The connection is closed after it (see linger_close).
net::awaitable<bool> write_plain_error(Conn& conn, const Shared& shared, int status, std::string_view code,
                                       std::string_view message, const ErrorContext& context) {
  const Response r = session_error(shared, status, code, message, context.target, context.origin);
  std::string wire;
  serialize_head(wire, 11, status, r.headers, context.request_id, context.correlation_id, Framing::length,
                 r.body.size(), false);
  if (!context.head) wire.append(r.body);
  conn.deadline.expires_after(shared.opts.header_read_timeout);
  auto [ec, n] = co_await net::async_write(conn.socket, net::buffer(wire), kUseTuple);
  co_return !ec;
}

/// Ends a connection after an error response without resetting that response away: the client may still be
/// sending the refused request, and closing a socket with unread input sends RST, which can destroy the
/// response before the client reads it. Reads and drops input for at most kLingerTime / kLingerBytes.
net::awaitable<void> linger_close(Conn& conn) {
  beast::error_code ignored;
  conn.socket.shutdown(tcp::socket::shutdown_send, ignored);
  conn.deadline.expires_after(kLingerTime);
  std::array<char, 4096> scratch{};
  std::size_t dropped = 0;
  while (dropped < kLingerBytes) {
    auto [ec, n] = co_await conn.socket.async_read_some(net::buffer(scratch), kUseTuple);
    if (ec) break;
    dropped += n;
  }
}

void log_access(const Request& req, const AccessInfo& access, int status, double ms, std::uint64_t bytes) {
  if (!log::enabled(log::Level::info)) return;
  // Built field by field, without a JSON document: this line is written for every request at the default level.
  std::array<log::Field, 10> fields{{{"request_id", std::string_view(req.request_id)},
                                     {"method", std::string_view(req.method)},
                                     {"path", req.path()},
                                     {"status", std::int64_t{status}},
                                     {"duration_ms", ms},
                                     {"bytes", bytes},
                                     {"client_ip", std::string_view(req.client_ip)}}};
  std::size_t n = 7;
  if (access.upstream_ms >= 0) fields[n++] = {"upstream_ms", access.upstream_ms};
  if (!access.token_hint.empty()) fields[n++] = {"token_hint", std::string_view(access.token_hint)};
  if (!access.project_id.empty()) fields[n++] = {"project_id", std::string_view(access.project_id)};
  log::write(log::Level::info, "access", std::span<const log::Field>(fields.data(), n));
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
    auto ep = conn->socket.remote_endpoint(ec);
    if (!ec) client_ip = ep.address().to_string();
  }
  beast::flat_buffer& buffer = conn->buffer;
  std::string scratch;  // response heads, serialised (capacity reused)
  bool linger = false;  // an error response went out while the client may still be sending
  for (;;) {
    if (shared->stopping) break;
    RequestParser parser;
    parser.http.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
    parser.http.body_limit(opts.max_request_size);
    conn->deadline.expires_after(opts.header_read_timeout);
    if (conn->watch.pending) {
      // The last exchange's departure watch is still reading: that read is this request's first (Conn::Watch).
      conn->watch.waiting = true;
      while (conn->watch.pending) co_await conn->watch.settled.async_wait(kUseTuple);
      conn->watch.waiting = false;
    }
    // What is buffered first (read by the watch, or pipelined): often the whole header, and then nothing is read.
    beast::error_code ec = parse_buffered(parser, buffer);
    if (!ec && !parser.http.is_header_done()) {
      if (conn->watch.ended) {
        ec = std::exchange(conn->watch.ended, {});
      } else {
        ec = co_await read_request(conn->socket, buffer, parser, true);
      }
    }
    if (ec) {
      // End of stream, timeout (slow client), reset or cancellation at shutdown: just close.
      // Request ids are built before each co_await: GCC 12 mishandles some temporaries in co_await expressions.
      ErrorContext unparsed;
      unparsed.request_id = util::uuid_v4();
      if (ec == http::error::header_limit) {
        co_await write_plain_error(*conn, *shared, 431, "request_header_too_large", "request header fields too large",
                                   unparsed);
        linger = true;
      } else if (ec == http::error::body_limit) {
        // A declared Content-Length above MAX_REQUEST_SIZE: the parser compares it with its body limit as soon
        // as the header is complete (so the head is parsed), and the body is never read; the connection cannot be
        // reused since it is in flight.
        const ErrorContext context = error_context(parser, request_id_of(parser), correlation_id_of(parser));
        co_await write_plain_error(*conn, *shared, 413, "request_too_large", "request body too large", context);
        linger = true;
      } else if (ec != http::error::end_of_stream && !conn->deadline.expired() && ec != net::error::operation_aborted &&
                 ec != net::error::connection_reset && ec != net::error::eof && buffer.size() > 0) {
        // Malformed lines, control characters (CR, LF, NUL) inside header values, a request cut short.
        co_await write_plain_error(*conn, *shared, 400, "bad_request", "malformed HTTP request", unparsed);
        linger = true;
      }
      break;
    }
    conn->in_exchange = true;
    const auto started = std::chrono::steady_clock::now();
    const bool head = parser.is_head();
    std::string request_id = request_id_of(parser);
    std::string correlation_id = correlation_id_of(parser);

    // Refused heads end the connection: the body of a request whose framing is in doubt must never be read
    // as the next request.
    std::optional<Refusal> refusal = check_head(parser, opts);
    std::optional<std::string> target = origin_form(parser.http.target());
    if (!refusal && !target) refusal = Refusal{400, "bad_request", "invalid request target"};
    if (refusal) {
      const ErrorContext context = error_context(parser, request_id, correlation_id);
      co_await write_plain_error(*conn, *shared, refusal->status, refusal->code, refusal->message, context);
      linger = true;
      break;
    }

    if (iequals(parser.headers.get("Expect"), "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      auto [wec, wn] = co_await http::async_write(conn->socket, cont, kUseTuple);
      if (wec) break;
    }
    if (!parser.http.is_done()) {
      // The body usually came with the header: parse what is buffered, and read only when more is needed.
      if (const auto length = parser.http.content_length_remaining()) parser.body.reserve(*length);
      beast::error_code bec = parse_buffered(parser, buffer);
      bool timed_out = false;
      if (!bec && !parser.http.is_done()) {
        if (conn->watch.ended) {
          bec = std::exchange(conn->watch.ended, {});
        } else {
          // One deadline for the whole body (a client dribbling a byte at a time does not extend it). A timer
          // cancels the read instead of closing the socket, so the 408 can still be sent.
          conn->deadline.expires_never();
          CancelAt deadline(conn, opts.body_read_timeout);
          bec = co_await read_request(conn->socket, buffer, parser, false);
          timed_out = deadline.fired();
        }
      }
      if (timed_out) {
        const ErrorContext context = error_context(parser, request_id, correlation_id);
        co_await write_plain_error(*conn, *shared, 408, "request_timeout", "the request body did not arrive in time",
                                   context);
        linger = true;
        break;
      }
      if (bec == http::error::body_limit) {
        const ErrorContext context = error_context(parser, request_id, correlation_id);
        co_await write_plain_error(*conn, *shared, 413, "request_too_large", "request body too large", context);
        linger = true;
        break;
      }
      if (bec) {
        if (!conn->deadline.expired() && bec != http::error::end_of_stream && bec != net::error::eof &&
            bec != net::error::connection_reset && bec != net::error::operation_aborted) {
          const ErrorContext context = error_context(parser, request_id, correlation_id);
          co_await write_plain_error(*conn, *shared, 400, "bad_request", "malformed HTTP request body", context);
          linger = true;
        }
        break;
      }
    }
    conn->deadline.expires_never();

    const bool keep_alive = parser.http.keep_alive() && !shared->stopping;
    SessionExchange ex(*conn, scratch, opts, parser.http.version(), keep_alive, head, shared->stopping);
    ex.request.method = std::move(parser.http.method());
    ex.request.target = std::move(*target);
    ex.request.headers = std::move(parser.headers);
    ex.request.body = std::move(parser.body);
    ex.request.request_id = std::move(request_id);
    ex.request.correlation_id = std::move(correlation_id);
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
    if (!ex.responded() && !ex.peer_gone()) {
      Response internal = session_error(*shared, 500, "internal_error", "internal server error", ex.request.target,
                                        ex.request.headers.get("Origin"));
      co_await ex.respond(std::move(internal));
    }
    if (shared->hooks.request_in_flight) shared->hooks.request_in_flight(-1);

    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    log_access(ex.request, ex.access, ex.status(), ms, ex.bytes());
    if (shared->hooks.request_done) shared->hooks.request_done(ex.request, ex.access, ex.status(), ms, ex.bytes());
    conn->in_exchange = false;
    if (failed || ex.must_close() || !keep_alive) break;
  }
  if (linger) co_await linger_close(*conn);
  beast::error_code ignored;
  conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
  conn->socket.close(ignored);
}

/// Raises the open-files soft limit to the hard limit, so MAX_CONNECTIONS is not capped by a low default
/// (1024 in many shells and units); warns when even the hard limit cannot hold it.
void raise_open_files_limit(int max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  // A client connection holds one descriptor and usually one upstream connection; plus files, database, logs.
  const auto needed = static_cast<rlim_t>(max_connections) * 2 + 64;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    log::write(log::Level::warn, "open_files_limit_low",
               {{"max_connections", max_connections},
                {"open_files_limit", static_cast<std::uint64_t>(limit.rlim_cur)},
                {"needed", static_cast<std::uint64_t>(needed)},
                {"hint", "raise the hard limit (ulimit -Hn, LimitNOFILE=, docker --ulimit nofile=) or lower "
                         "MAX_CONNECTIONS; connections beyond the limit fail to be accepted"}});
  }
}

}  // namespace

/// An io_context whose pending handlers can be destroyed before the io_context itself
/// (execution_context::shutdown(), protected in Asio): see Server::discard_pending().
class IoContext : public net::io_context {
 public:
  using net::io_context::io_context;
  using net::execution_context::shutdown;
};

struct Server::Impl {
  // Declared first so it is destroyed last: every I/O object below belongs to it. The first I/O thread runs it:
  // the acceptor, the application's timers and services, and its share of the client connections.
  IoContext io;
  // One more per further I/O thread, each run by that thread alone (so its sessions need no strand, and a
  // request's handlers never hop between threads): accepted connections are dealt out in turn to `io` and
  // these, as nginx deals them to its workers.
  std::vector<std::unique_ptr<IoContext>> more;
  std::size_t next_context = 0;  // strand-confined (the accept loop)
  // The acceptor, the shutdown timer and the accept loop live on this strand: stop() (any thread), the
  // drain notification (whichever session closes last) and the accept loop never touch them concurrently.
  net::strand<net::io_context::executor_type> strand{io.get_executor()};
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  tcp::acceptor acceptor{strand};
  net::steady_timer shutdown_timer{strand};
  std::atomic<bool> stop_requested{false};
  std::uint64_t rejected_since_log = 0;                  // strand-confined
  std::chrono::steady_clock::time_point last_reject_log{};  // strand-confined

  explicit Impl(int threads) : io(1) {
    for (int i = 1; i < threads; ++i) more.push_back(std::make_unique<IoContext>(1));
  }

  /// Every io_context, `io` first.
  template <class Fn>
  void each_context(Fn&& fn) {
    for (auto& c : more) fn(*c);
    fn(io);
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      // Each io_context is run by one thread, so a session needs no strand (each strand hop costs a queue round
      // trip and a lock).
      net::io_context& ctx = next_context == 0 ? io : *more[next_context - 1];
      next_context = (next_context + 1) % (more.size() + 1);
      auto [ec, socket] = co_await acceptor.async_accept(ctx.get_executor(), kUseTuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        log::write(log::Level::warn, "accept_failed", {{"error", ec.message()}});
        net::steady_timer t(strand, 50ms);
        co_await t.async_wait(kUseTuple);
        continue;
      }
      beast::error_code ignored;
      if (shared->open.load(std::memory_order_relaxed) >= shared->opts.max_connections) {
        // Over the cap: closed before reading a byte, no response (cheapest for the server under a flood).
        // Counted first, so whoever sees the close also sees the count.
        if (shared->hooks.connection_rejected) shared->hooks.connection_rejected();
        socket.close(ignored);
        note_rejection();
        continue;
      }
      shared->open.fetch_add(1, std::memory_order_relaxed);
      socket.set_option(tcp::no_delay(true), ignored);
      auto conn = std::make_shared<Conn>(std::move(socket));
      auto ex = conn->socket.get_executor();
      auto& cancel = conn->cancel;
      net::co_spawn(ex, run_session(shared, conn),
                    net::bind_cancellation_slot(cancel.slot(), [conn](const std::exception_ptr&) {}));
    }
  }

  void note_rejection() {
    ++rejected_since_log;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_reject_log < kRejectLogPeriod) return;
    log::write(log::Level::warn, "connections_rejected",
               {{"count", rejected_since_log}, {"max_connections", shared->opts.max_connections}});
    rejected_since_log = 0;
    last_reject_log = now;
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
  raise_open_files_limit(opts.max_connections);
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
  net::co_spawn(impl_->strand, impl_->accept_loop(), net::detached);
  // The work guards keep run() alive while idle; stop() ends it with stop_all() once drained.
  auto work = net::make_work_guard(impl_->io);
  std::vector<std::thread> threads;
  threads.reserve(impl_->more.size());
  for (auto& c : impl_->more) {
    threads.emplace_back([ctx = c.get()] {
      auto guard = net::make_work_guard(*ctx);
      ctx->run();
    });
  }
  impl_->io.run();
  for (auto& t : threads) t.join();
}

void Server::stop_all() {
  impl_->each_context([](IoContext& c) { c.stop(); });
}

void Server::stop(std::function<void()> on_drained) {
  if (impl_->stop_requested.exchange(true)) return;
  net::post(impl_->strand, [this, on_drained = std::move(on_drained)]() mutable {
    auto shared = impl_->shared;
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    auto finish = [this, on_drained]() {
      net::post(impl_->strand, [this, on_drained] {
        impl_->shutdown_timer.cancel();
        if (on_drained) on_drained();
        stop_all();
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
      net::post(c->socket.get_executor(), [c] {
        beast::error_code ignored;
        if (!c->in_exchange) c->socket.cancel(ignored);
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
        net::post(c->socket.get_executor(), [c] {
          beast::error_code ignored2;
          c->socket.close(ignored2);
        });
      }
      // Give the closed sessions a moment to unwind, then stop regardless.
      auto t = std::make_shared<net::steady_timer>(impl_->strand, 200ms);
      t->async_wait([this, t](boost::system::error_code) { stop_all(); });
    });
  });
}

void Server::abort() { stop_all(); }

void Server::discard_pending() {
  // The other contexts first: their sessions' frames may still use objects on `io`.
  impl_->each_context([](IoContext& c) { c.shutdown(); });
}

}  // namespace llmproxy::server
