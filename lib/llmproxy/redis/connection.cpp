#include "llmproxy/redis/connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <signal.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>

#include "llmproxy/log/log.hpp"

namespace llmproxy::redis {

namespace net = boost::asio;

/// One hiredis context and the Asio watch on its socket. Lives on the strand; hiredis' hooks and callbacks get
/// a raw pointer (ac->data, ac->ev.data), valid until the cleanup hook (after which hiredis calls nothing).
struct Connection::Conn : std::enable_shared_from_this<Connection::Conn> {
  Conn(Connection& o, net::strand<net::io_context::executor_type>& strand, std::uint64_t g)
      : owner(&o), sd(strand), gen(g) {}
  Connection* owner;
  redisAsyncContext* ac = nullptr;  // null once hiredis has let go of it
  net::posix::stream_descriptor sd;
  std::uint64_t gen;
  bool want_read = false, want_write = false, read_armed = false, write_armed = false;
  int setup_pending = 0;
  std::string drop_reason;  // why we dropped it (reported to the commands that were in flight)
};

namespace {

using Conn = Connection::Conn;

Conn& conn_of(void* data) { return *static_cast<Conn*>(data); }

void ev_add_read(void* data) { conn_of(data).owner->arm(conn_of(data), false); }
void ev_del_read(void* data) { conn_of(data).want_read = false; }
void ev_add_write(void* data) { conn_of(data).owner->arm(conn_of(data), true); }
void ev_del_write(void* data) { conn_of(data).want_write = false; }
void ev_cleanup(void* data) {
  Conn& conn = conn_of(data);
  if (conn.ac == nullptr) return;
  if (conn.drop_reason.empty() && conn.ac->err != 0 && conn.ac->errstr != nullptr && conn.ac->errstr[0] != '\0') {
    conn.drop_reason = std::string("Redis connection lost: ") + conn.ac->errstr;
  }
  conn.owner->on_conn_gone(conn);  // the last use of `conn` here
}

void reply_cb(redisAsyncContext* ac, void* reply, void* privdata) {
  Conn& conn = conn_of(ac->data);
  conn.owner->on_reply(conn, reply, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(privdata)));
}
void setup_cb(redisAsyncContext* ac, void* reply, void* privdata) {
  Conn& conn = conn_of(ac->data);
  conn.owner->on_setup_reply(conn, reply, static_cast<const char*>(privdata));
}
void connect_cb(const redisAsyncContext* ac, int status) {
  Conn& conn = conn_of(ac->data);
  conn.owner->on_connected(conn, status == REDIS_OK);
}

Reply copy_reply(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy_reply(*r.element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

}  // namespace

std::shared_ptr<Connection> Connection::create(net::io_context& io, ConnectionOptions options) {
  // hiredis writes with write(2), not send(MSG_NOSIGNAL): a server that died mid-write would raise SIGPIPE and
  // kill the process. Ignore it, unless someone installed a handler (EPIPE is then an ordinary write error).
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  });
  std::shared_ptr<Connection> self(new Connection(io, std::move(options)));
  net::post(self->strand_, [self] {
    if (self->state_ == State::idle) self->start_connect();
  });
  return self;
}

Connection::Connection(net::io_context& io, ConnectionOptions options)
    : strand_(net::make_strand(io)),
      options_(std::move(options)),
      resolver_(strand_),
      connect_timer_(strand_),
      reconnect_timer_(strand_) {}

Connection::~Connection() {
  // Only reached once no handler of ours is queued: either shutdown() ran, or the io_context is being destroyed
  // (its queued handlers, which hold us, are destroyed without running). Pending callers are abandoned.
  closing_ = true;
  ops_.clear();
  waiting_.clear();
  if (conn_ && conn_->ac != nullptr) redisAsyncFree(conn_->ac);  // runs on_conn_gone via the cleanup hook
}

std::string Connection::event_name(const char* what) const {
  return (options_.purpose.empty() ? std::string() : options_.purpose + "_") + "redis_" + what;
}

std::string Connection::shut_down_message() const {
  return "the Redis " + options_.purpose + (options_.purpose.empty() ? "" : " ") + "connection is shut down";
}

std::string Connection::where() const { return options_.host + ":" + std::to_string(options_.port); }

void Connection::submit(std::vector<std::string> argv, Completion done) {
  net::post(strand_, [self = shared_from_this(), argv = std::move(argv), done = std::move(done)]() mutable {
    self->enqueue(std::move(argv), std::move(done));
  });
}

void Connection::enqueue(std::vector<std::string> argv, Completion done) {
  if (state_ == State::closed) {
    done(Reply::failure(shut_down_message()));
    return;
  }
  if (state_ == State::down) {
    done(Reply::failure("Redis unavailable: " + last_error_));
    return;
  }
  if (state_ == State::idle) start_connect();
  const std::uint64_t id = next_id_++;
  auto op = std::make_unique<Op>(strand_);
  op->argv = std::move(argv);
  op->done = std::move(done);
  op->timer.expires_after(options_.timeout);
  op->timer.async_wait([self = shared_from_this(), id](const boost::system::error_code& ec) {
    if (!ec) self->on_op_timeout(id);
  });
  Op& ref = *op;
  ops_.emplace(id, std::move(op));
  if (state_ == State::resolving) {
    waiting_.push_back(id);
  } else {
    send(id, ref);
  }
}

void Connection::send(std::uint64_t id, Op& op) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  args.reserve(op.argv.size());
  lens.reserve(op.argv.size());
  for (const auto& a : op.argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  if (!conn_ || conn_->ac == nullptr ||
      redisAsyncCommandArgv(conn_->ac, reply_cb, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)),
                            static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK) {
    finish(id, Reply::failure("Redis connection is closing"));
    return;
  }
  op.conn_gen = conn_->gen;
}

void Connection::finish(std::uint64_t id, Reply reply) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;  // already timed out (or abandoned)
  auto op = std::move(it->second);
  ops_.erase(it);
  op->timer.cancel();
  if (op->done) op->done(std::move(reply));
}

void Connection::on_op_timeout(std::uint64_t id) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  const std::uint64_t gen = it->second->conn_gen;
  const bool drop_conn = gen != 0 && conn_ && conn_->gen == gen && conn_->ac != nullptr;
  if (drop_conn) healthy_.store(false, std::memory_order_relaxed);  // before the caller hears of the timeout
  finish(id, Reply::failure("Redis command timed out after " + std::to_string(options_.timeout.count()) +
                                 " ms"));
  // Its reply may still come; every later reply on this connection would then be matched to the wrong command.
  if (drop_conn && conn_ && conn_->ac != nullptr) {
    drop(*conn_, "a Redis command timed out after " + std::to_string(options_.timeout.count()) +
                     " ms; connection dropped");
  }
}

void Connection::drop(Conn& conn, std::string reason) {
  if (conn.ac == nullptr) return;
  // Down from now: the commands failed below must not find the backend still counted up.
  healthy_.store(false, std::memory_order_relaxed);
  if (conn.drop_reason.empty()) conn.drop_reason = std::move(reason);
  // Inside a hiredis callback this only marks the context; hiredis frees it when the callback returns. Either
  // way the pending callbacks run with no reply, then the cleanup hook calls on_conn_gone().
  redisAsyncFree(conn.ac);
}

void Connection::on_reply(Conn& conn, void* reply, std::uint64_t id) {
  if (reply == nullptr) {
    healthy_.store(false, std::memory_order_relaxed);  // before the caller hears of the failure
    std::string why = conn.drop_reason;
    if (why.empty()) {
      why = "Redis connection lost";
      if (conn.ac != nullptr && conn.ac->err != 0 && conn.ac->errstr != nullptr && conn.ac->errstr[0] != '\0') {
        why += std::string(": ") + conn.ac->errstr;
      }
    }
    finish(id, Reply::failure(std::move(why)));
    return;
  }
  finish(id, copy_reply(*static_cast<redisReply*>(reply)));
}

void Connection::on_setup_reply(Conn& conn, void* reply, const char* what) {
  if (reply == nullptr) return;  // the connection is going away; on_conn_gone() reports it
  const auto& r = *static_cast<redisReply*>(reply);
  if (r.type == REDIS_REPLY_ERROR) {
    // The server's message (e.g. "WRONGPASS invalid username-password pair") never contains the password.
    drop(conn, std::string("Redis refused ") + what + ": " + std::string(r.str, r.len));
    return;
  }
  if (--conn.setup_pending == 0) on_ready(conn);  // replies come only once connected
}

void Connection::on_connected(Conn& conn, bool ok) {
  if (!ok) {
    // hiredis frees the context right after this callback (then the cleanup hook runs).
    std::string why = "cannot connect to Redis at " + where();
    if (conn.ac != nullptr && conn.ac->errstr != nullptr && conn.ac->errstr[0] != '\0') {
      why += std::string(": ") + conn.ac->errstr;
    }
    if (conn.drop_reason.empty()) conn.drop_reason = std::move(why);
  }
  // Connected: on_ready() comes with the reply to the last setup command (PING at least).
}

void Connection::on_ready(Conn& conn) {
  if (conn_.get() != &conn || state_ != State::connecting) return;
  state_ = State::ready;
  connect_timer_.cancel();
  const bool was_down = !healthy_.exchange(true, std::memory_order_relaxed);
  if (was_down || !last_error_.empty()) {
    log::write(log::Level::info, event_name("connected"),
               {{"address", where()}, {"db", options_.db}});
  }
  last_error_.clear();
}

void Connection::arm(Conn& conn, bool write) {
  bool& want = write ? conn.want_write : conn.want_read;
  bool& armed = write ? conn.write_armed : conn.read_armed;
  want = true;
  if (armed || conn.ac == nullptr) return;
  armed = true;
  conn.sd.async_wait(
      write ? net::posix::stream_descriptor::wait_write : net::posix::stream_descriptor::wait_read,
      [self = shared_from_this(), c = conn.shared_from_this(), write](const boost::system::error_code& ec) {
        bool& armed_now = write ? c->write_armed : c->read_armed;
        armed_now = false;
        if (ec == net::error::operation_aborted || c->ac == nullptr) return;
        if (!(write ? c->want_write : c->want_read)) return;
        // Other errors: let hiredis find out on the socket itself.
        if (write) {
          redisAsyncHandleWrite(c->ac);
        } else {
          redisAsyncHandleRead(c->ac);
        }
        if (c->ac != nullptr && (write ? c->want_write : c->want_read)) self->arm(*c, write);
      });
}

void Connection::on_conn_gone(Conn& conn) {
  conn.ac = nullptr;
  if (conn.sd.is_open()) conn.sd.release();  // cancels our waits; hiredis closes the fd
  if (conn_.get() != &conn) return;
  std::string reason = conn.drop_reason.empty() ? "Redis connection lost" : conn.drop_reason;
  auto keep = std::move(conn_);  // `conn` stays valid until we return
  go_down(std::move(reason));
}

void Connection::go_down(std::string reason) {
  if (closing_) {
    state_ = State::closed;
    return;
  }
  state_ = State::down;
  connect_timer_.cancel();
  healthy_.store(false, std::memory_order_relaxed);
  // last_error_ is cleared whenever the connection comes up, so this logs every fall and every new reason.
  if (reason != last_error_) {
    log::write(log::Level::warn, event_name("down"), {{"address", where()}, {"error", reason}});
  }
  last_error_ = std::move(reason);
  // At most one attempt per interval, and never straight after a failure (a hung server would otherwise be
  // reconnected to, and counted up, after every timed-out command).
  reconnect_timer_.expires_after(kReconnectInterval);
  reconnect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && self->state_ == State::down) self->start_connect();
  });
}

void Connection::fail_waiting(const std::string& reason) {
  auto ids = std::move(waiting_);
  waiting_.clear();
  for (auto id : ids) finish(id, Reply::failure(reason));
}

void Connection::start_connect() {
  state_ = State::resolving;
  const std::uint64_t attempt = ++attempt_;
  connect_timer_.expires_after(options_.timeout);
  connect_timer_.async_wait([self = shared_from_this(), attempt](const boost::system::error_code& ec) {
    if (!ec) self->on_connect_timeout(attempt);
  });
  // hiredis would resolve a name with a blocking getaddrinfo(); Asio resolves off the I/O threads.
  resolver_.async_resolve(options_.host, std::to_string(options_.port),
                          [self = shared_from_this(), attempt](const boost::system::error_code& ec,
                                                               net::ip::tcp::resolver::results_type results) {
                            self->on_resolved(attempt, ec, results);
                          });
}

void Connection::on_resolved(std::uint64_t attempt, const boost::system::error_code& ec,
                                  const net::ip::tcp::resolver::results_type& results) {
  if (attempt != attempt_ || state_ != State::resolving) return;
  if (ec || results.empty()) {
    const std::string why =
        "cannot resolve Redis host " + options_.host + (ec ? ": " + ec.message() : std::string());
    fail_waiting("Redis unavailable: " + why);
    go_down(why);
    return;
  }
  // One address per attempt: the first IPv4 one if any (Redis' default bind is 127.0.0.1, and "localhost" may
  // list ::1 first), else the first.
  auto endpoint = results.begin()->endpoint();
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) {
      endpoint = r.endpoint();
      break;
    }
  }
  const std::string ip = endpoint.address().to_string();
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), options_.port);
  if (ac == nullptr || ac->err != 0) {
    std::string why = "cannot connect to Redis at " + where();
    if (ac != nullptr && ac->errstr != nullptr) why += std::string(": ") + ac->errstr;
    if (ac != nullptr) redisAsyncFree(ac);  // nothing attached yet: no hook or callback runs
    fail_waiting("Redis unavailable: " + why);
    go_down(why);
    return;
  }
  auto conn = std::make_shared<Conn>(*this, strand_, next_gen_++);
  conn->ac = ac;
  boost::system::error_code assign_ec;
  conn->sd.assign(ac->c.fd, assign_ec);
  if (assign_ec) {
    conn->ac = nullptr;
    redisAsyncFree(ac);
    const std::string why = "cannot watch the Redis socket: " + assign_ec.message();
    fail_waiting("Redis unavailable: " + why);
    go_down(why);
    return;
  }
  ac->data = conn.get();
  ac->ev.data = conn.get();
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  conn_ = conn;
  state_ = State::connecting;
  redisAsyncSetConnectCallback(ac, connect_cb);  // also starts watching for writability (= connected)

  // AUTH, SELECT and PING go first; the commands queued meanwhile follow them in the same pipeline.
  if (!options_.password.empty()) {
    ++conn->setup_pending;
    if (options_.username.empty()) {
      const char* argv[] = {"AUTH", options_.password.c_str()};
      const std::size_t lens[] = {4, options_.password.size()};
      redisAsyncCommandArgv(ac, setup_cb, const_cast<char*>("AUTH"), 2, argv, lens);
    } else {
      const char* argv[] = {"AUTH", options_.username.c_str(), options_.password.c_str()};
      const std::size_t lens[] = {4, options_.username.size(), options_.password.size()};
      redisAsyncCommandArgv(ac, setup_cb, const_cast<char*>("AUTH"), 3, argv, lens);
    }
  }
  if (options_.db != 0) {
    ++conn->setup_pending;
    const std::string db = std::to_string(options_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    const std::size_t lens[] = {6, db.size()};
    redisAsyncCommandArgv(ac, setup_cb, const_cast<char*>("SELECT"), 2, argv, lens);
  }
  // Up only once the server has answered: a hung server accepts connections (the kernel does) but never replies.
  ++conn->setup_pending;
  redisAsyncCommand(ac, setup_cb, const_cast<char*>("PING"), "PING");
  auto ids = std::move(waiting_);
  waiting_.clear();
  for (auto id : ids) {
    auto it = ops_.find(id);
    if (it != ops_.end()) send(id, *it->second);
  }
}

void Connection::on_connect_timeout(std::uint64_t attempt) {
  if (attempt != attempt_) return;
  const std::string why =
      "connecting to Redis at " + where() + " timed out after " + std::to_string(options_.timeout.count()) + " ms";
  if (state_ == State::resolving) {
    resolver_.cancel();
    go_down(why);  // first, so the callers failed below find the backend down
    fail_waiting("Redis unavailable: " + why);
  } else if (state_ == State::connecting && conn_ && conn_->ac != nullptr) {
    drop(*conn_, why);
  }
}

void Connection::shutdown() {
  net::post(strand_, [self = shared_from_this()] { self->do_shutdown(); });
}

void Connection::do_shutdown() {
  closing_ = true;
  state_ = State::closed;
  connect_timer_.cancel();
  reconnect_timer_.cancel();
  resolver_.cancel();
  const std::string why = shut_down_message();
  fail_waiting(why);
  if (conn_ && conn_->ac != nullptr) drop(*conn_, why);
  std::vector<std::uint64_t> rest;
  for (const auto& [id, op] : ops_) rest.push_back(id);
  for (auto id : rest) finish(id, Reply::failure(why));
}

}  // namespace llmproxy::redis
