#pragma once
/// How to reach a Redis server (no Asio here: public headers of the modules that use Redis take this).
#include <chrono>
#include <cstdint>
#include <string>

namespace llmproxy::redis {

/// Where and how to connect. Plain data: the caller's config is converted into it.
struct ConnectionOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // ACL user; empty: the default user
  std::string password;  // AUTH; never logged
  int db = 0;            // SELECT
  std::chrono::milliseconds timeout{1000};  // connect and each command
  /// Names the user in log events (`<purpose>_redis_connected`, `<purpose>_redis_down`; `redis_...` when empty)
  /// and error messages: "cache", "ratelimit".
  std::string purpose;
};

}  // namespace llmproxy::redis
