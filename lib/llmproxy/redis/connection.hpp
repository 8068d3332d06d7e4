#pragma once
/// The Redis client shared by the response cache (cache/redis_backend.cpp) and the rate limiter
/// (ratelimit/redis_limiter.cpp): one pipelined connection to a Redis server through hiredis' async API, driven by
/// Asio. Include it only from .cpp files (it pulls in Asio); public headers take a ConnectionOptions.
///
/// All hiredis calls and all of this object's state live on one strand. The socket is watched with
/// `posix::stream_descriptor::async_wait` (hiredis owns the fd; the descriptor is released, never closed, when
/// hiredis lets go of the context). The host name is resolved with Asio's async resolver and hiredis connects to
/// the resulting address without blocking, then AUTH, SELECT and PING go first in the pipeline (up = PING
/// answered). Every command has ConnectionOptions::timeout; a command that times out fails at once and its connection is dropped (later replies
/// would be out of step). While the connection is down every command fails at once; a new connection is tried
/// kReconnectInterval after each failure, by a timer, so the state recovers without traffic.
#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmproxy/redis/options.hpp"

struct redisAsyncContext;

namespace llmproxy::redis {

/// A reply, copied out of hiredis. `failure`: no reply (timeout, connection down or lost); `error`: the server
/// answered with an error. `str` holds the message for both, the value for status and string replies.
struct Reply {
  enum class Type { failure, error, nil, status, string, integer, array };
  Type type = Type::failure;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;

  bool failed() const noexcept { return type == Type::failure || type == Type::error; }
  static Reply failure(std::string why) {
    Reply r;
    r.str = std::move(why);
    return r;
  }
};

inline constexpr std::chrono::milliseconds kReconnectInterval{1000};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// Starts connecting right away (on `io`'s threads).
  static std::shared_ptr<Connection> create(boost::asio::io_context& io, ConnectionOptions options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends one command (binary-safe arguments); completes on the handler's associated executor with the reply
  /// or a failure, within the timeout. Any thread.
  template <class Token>
  auto async_command(std::vector<std::string> argv, Token&& token) {
    return boost::asio::async_initiate<Token, void(Reply)>(
        [self = shared_from_this()](auto handler, std::vector<std::string> args) {
          auto ex = boost::asio::get_associated_executor(handler, self->strand_);
          // Type-erased so the strand-side code is not a template; a completion never called (the io_context
          // destroyed first) just destroys the handler.
          auto held = std::make_shared<decltype(handler)>(std::move(handler));
          Completion done = [ex, held](Reply reply) mutable {
            boost::asio::post(ex, [held, reply = std::move(reply)]() mutable { (*held)(std::move(reply)); });
          };
          self->submit(std::move(args), std::move(done));
        },
        token, std::move(argv));
  }

  /// Fails every pending command and closes the connection; no reconnect afterwards. Any thread (posted).
  void shutdown();

  /// False while the connection is down (set before the first attempt has finished: true). Any thread.
  bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }

  /// Called by hiredis (C callbacks); public only for them.
  struct Conn;
  void on_reply(Conn& conn, void* reply, std::uint64_t id);
  void on_setup_reply(Conn& conn, void* reply, const char* what);
  void on_connected(Conn& conn, bool ok);
  void on_conn_gone(Conn& conn);
  void arm(Conn& conn, bool write);

 private:
  using Completion = std::function<void(Reply)>;
  struct Op {
    explicit Op(boost::asio::strand<boost::asio::io_context::executor_type>& strand) : timer(strand) {}
    std::vector<std::string> argv;
    Completion done;
    boost::asio::steady_timer timer;
    std::uint64_t conn_gen = 0;  // the connection it was sent on; 0 while waiting for one
  };
  enum class State { idle, resolving, connecting, ready, down, closed };

  Connection(boost::asio::io_context& io, ConnectionOptions options);
  void submit(std::vector<std::string> argv, Completion done);
  void enqueue(std::vector<std::string> argv, Completion done);
  void send(std::uint64_t id, Op& op);
  void finish(std::uint64_t id, Reply reply);
  void on_op_timeout(std::uint64_t id);
  void start_connect();
  void on_resolved(std::uint64_t attempt, const boost::system::error_code& ec,
                   const boost::asio::ip::tcp::resolver::results_type& results);
  void on_connect_timeout(std::uint64_t attempt);
  void on_ready(Conn& conn);
  void go_down(std::string reason);
  void fail_waiting(const std::string& reason);
  void drop(Conn& conn, std::string reason);
  void do_shutdown();
  std::string where() const;
  std::string event_name(const char* what) const;
  std::string shut_down_message() const;

  // Everything below is confined to strand_ (healthy_ excepted).
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  ConnectionOptions options_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer reconnect_timer_;
  State state_ = State::idle;
  bool closing_ = false;
  std::uint64_t attempt_ = 0;
  std::uint64_t next_gen_ = 1;
  std::uint64_t next_id_ = 1;
  std::string last_error_;
  std::shared_ptr<Conn> conn_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Op>> ops_;
  std::deque<std::uint64_t> waiting_;  // ids of commands queued while the host name resolves
  std::atomic<bool> healthy_{true};
};

}  // namespace llmproxy::redis
