#pragma once
/// A redis-server of a test's own (Debian's redis-server, or REDIS_SERVER_BIN from scripts/with-redis.sh) on a
/// loopback port, without persistence: for tests that stop and restart Redis under a running proxy.
#include <memory>
#include <string>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace llmproxy::test {

class RedisServer {
 public:
  /// Starts it on `port` (0: a free one) and waits until it accepts connections. Throws std::runtime_error (with
  /// its output) if it does not start within 10 s.
  explicit RedisServer(int port = 0);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const noexcept { return port_; }
  /// redis://127.0.0.1:<port>/0
  std::string url() const;
  /// SIGKILL: gone at once, as in a crash; its data goes with it.
  void kill();
  /// Starts it again on the same port (after kill()).
  void restart();
  /// SIGSTOP / SIGCONT: a hung server (connections stay open, nothing answers) and its return.
  void pause();
  void resume();

 private:
  void start();

  int port_;
  TempDir dir_;
  std::unique_ptr<Process> process_;
};

}  // namespace llmproxy::test
