#include "support/redis_server.hpp"

#include <csignal>
#include <cstdlib>
#include <stdexcept>

namespace llmproxy::test {

using namespace std::chrono_literals;

RedisServer::RedisServer(int port) : port_(port == 0 ? free_port() : port) { start(); }

RedisServer::~RedisServer() = default;

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

void RedisServer::start() {
  const char* bin = std::getenv("REDIS_SERVER_BIN");
  process_ = std::make_unique<Process>(
      bin != nullptr && *bin != '\0' ? bin : "redis-server",
      std::vector<std::string>{"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", dir_.path().string(), "--daemonize", "no"});
  if (!process_->wait_for_line("Ready to accept connections", 10s)) {
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ":\n" +
                             process_->output());
  }
}

void RedisServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_exit(5s);
  process_.reset();
}

void RedisServer::pause() {
  if (process_) process_->signal(SIGSTOP);
}

void RedisServer::resume() {
  if (process_) process_->signal(SIGCONT);
}

void RedisServer::restart() {
  kill();
  start();
}

}  // namespace llmproxy::test
