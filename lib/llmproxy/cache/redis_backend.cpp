// The Redis backend (SPEC §13): entries in encode() form under `prefix + key`, with SET PX; purge by SCAN MATCH
// and UNLINK. The connection (hiredis on Asio, timeouts, reconnects) is redis::Connection.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llmproxy/cache/backends.hpp"
#include "llmproxy/redis/connection.hpp"

namespace llmproxy::cache {

namespace {

namespace net = boost::asio;
using RedisConnection = redis::Connection;
using RedisReply = redis::Reply;

constexpr std::size_t kScanCount = 1000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A glob for SCAN MATCH: the prefix literally, then `pattern` with only '*' special.
std::string match_glob(const std::string& prefix, const std::string& pattern) {
  std::string out;
  out.reserve(prefix.size() + pattern.size() + 8);
  auto literal = [&out](char c) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  };
  for (char c : prefix) literal(c);
  for (char c : pattern) {
    if (c == '*') {
      out.push_back('*');
    } else {
      literal(c);
    }
  }
  return out;
}

/// What the coroutines share with the backend object; they hold it, so a backend destroyed while they are
/// suspended leaves them nothing dangling.
struct Shared {
  std::shared_ptr<RedisConnection> conn;
  RedisOptions options;
  std::atomic<std::uint64_t> failures{0};

  net::awaitable<RedisReply> command(std::vector<std::string> argv) {
    auto c = conn;
    RedisReply reply = co_await c->async_command(std::move(argv), net::use_awaitable);
    co_return reply;
  }
};

net::awaitable<Lookup> redis_get(std::shared_ptr<Shared> s, std::string key) {
  std::string full = s->options.key_prefix + key;
  std::vector<std::string> argv{"GET", full};
  RedisReply reply = co_await s->command(std::move(argv));
  Lookup out;
  if (reply.failed()) {
    s->failures.fetch_add(1, std::memory_order_relaxed);
    out.status = LookupStatus::error;
    out.error = std::move(reply.str);
    co_return out;
  }
  if (reply.type != RedisReply::Type::string) co_return out;  // nil: a miss
  std::optional<Entry> entry = decode(reply.str);
  if (!entry) {
    // Another version's format, or garbage: a miss, and out of the way of the next store.
    std::vector<std::string> unlink{"UNLINK", std::move(full)};
    RedisReply gone = co_await s->command(std::move(unlink));
    (void)gone;
    co_return out;
  }
  if (entry->expires_at_ms <= now_ms()) co_return out;  // Redis has not expired it yet (clocks differ)
  out.status = LookupStatus::hit;
  out.entry = std::make_shared<const Entry>(std::move(*entry));
  co_return out;
}

net::awaitable<bool> redis_put(std::shared_ptr<Shared> s, std::string key, std::shared_ptr<const Entry> entry) {
  if (!entry || entry->body.size() > s->options.max_object_bytes) co_return false;
  const std::int64_t ttl_ms = entry->expires_at_ms - now_ms();
  if (ttl_ms <= 0) co_return false;
  std::vector<std::string> argv{"SET", s->options.key_prefix + key, encode(*entry), "PX", std::to_string(ttl_ms)};
  RedisReply reply = co_await s->command(std::move(argv));
  if (reply.failed()) {
    s->failures.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  co_return true;
}

net::awaitable<std::optional<std::uint64_t>> redis_purge(std::shared_ptr<Shared> s, std::string pattern) {
  const std::string glob = match_glob(s->options.key_prefix, pattern);
  std::uint64_t deleted = 0;
  std::string cursor = "0";
  do {
    std::vector<std::string> scan{"SCAN", cursor, "MATCH", glob, "COUNT", std::to_string(kScanCount)};
    RedisReply page = co_await s->command(std::move(scan));
    if (page.failed() || page.type != RedisReply::Type::array || page.elements.size() != 2 ||
        page.elements[0].type != RedisReply::Type::string || page.elements[1].type != RedisReply::Type::array) {
      s->failures.fetch_add(1, std::memory_order_relaxed);
      co_return std::nullopt;
    }
    cursor = std::move(page.elements[0].str);
    std::vector<std::string> unlink{"UNLINK"};
    for (auto& k : page.elements[1].elements) {
      if (k.type == RedisReply::Type::string) unlink.push_back(std::move(k.str));
    }
    if (unlink.size() > 1) {
      RedisReply n = co_await s->command(std::move(unlink));
      if (n.failed() || n.type != RedisReply::Type::integer) {
        s->failures.fetch_add(1, std::memory_order_relaxed);
        co_return std::nullopt;
      }
      deleted += static_cast<std::uint64_t>(n.integer);
    }
  } while (cursor != "0");
  co_return deleted;
}

class RedisBackend final : public Backend {
 public:
  RedisBackend(net::io_context& io, RedisOptions options) : shared_(std::make_shared<Shared>()) {
    shared_->options = std::move(options);
    redis::ConnectionOptions conn;
    conn.host = shared_->options.host;
    conn.port = shared_->options.port;
    conn.username = shared_->options.username;
    conn.password = shared_->options.password;
    conn.db = shared_->options.db;
    conn.timeout = shared_->options.timeout;
    conn.purpose = "cache";
    shared_->conn = RedisConnection::create(io, std::move(conn));
  }
  ~RedisBackend() override { shared_->conn->shutdown(); }

  std::string_view name() const override { return "redis"; }

  net::awaitable<Lookup> get(std::string key) override {
    auto s = shared_;  // `this` is not used after the first suspension
    co_return co_await redis_get(std::move(s), std::move(key));
  }
  net::awaitable<bool> put(std::string key, std::shared_ptr<const Entry> entry) override {
    auto s = shared_;
    co_return co_await redis_put(std::move(s), std::move(key), std::move(entry));
  }
  net::awaitable<std::optional<std::uint64_t>> purge(std::string pattern) override {
    auto s = shared_;
    co_return co_await redis_purge(std::move(s), std::move(pattern));
  }
  bool healthy() const override { return shared_->conn->healthy(); }
  BackendStats stats() const override {
    BackendStats out;
    out.failures = shared_->failures.load(std::memory_order_relaxed);
    return out;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace

std::unique_ptr<Backend> make_redis_backend(net::io_context& io, RedisOptions options) {
  return std::make_unique<RedisBackend>(io, std::move(options));
}

}  // namespace llmproxy::cache
