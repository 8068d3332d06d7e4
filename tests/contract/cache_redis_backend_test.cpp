// The Redis cache backend against real redis-server processes: the shared throwaway server of
// scripts/with-redis.sh (REDIS_TEST_URL) for the data cases, and servers of their own (REDIS_SERVER_BIN or
// redis-server from PATH, on a free loopback port) for the password, outage, hang and restart cases. Every case is
// tagged [redis] and fails, never skips, without REDIS_TEST_URL. Raw hiredis (synchronous) is for assertions only.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "contract/cache_backend_contract.hpp"
#include "llmproxy/cache/backends.hpp"
#include "llmproxy/cache/cache.hpp"
#include "support/io_threads.hpp"
#include "support/ports.hpp"

namespace llmproxy::contract {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using cache::Entry;
using cache::LookupStatus;
using cache::RedisOptions;

struct Address {
  std::string host;
  std::uint16_t port = 0;
  int db = 0;
};

/// REDIS_TEST_URL = redis://host:port/db (scripts/with-redis.sh). Fails the case when unset.
Address test_redis() {
  const char* url = std::getenv("REDIS_TEST_URL");
  INFO("REDIS_TEST_URL is not set: run the [redis] cases through scripts/with-redis.sh");
  REQUIRE(url != nullptr);
  std::string s = url;
  REQUIRE(s.rfind("redis://", 0) == 0);
  s = s.substr(8);
  Address a;
  const auto slash = s.find('/');
  if (slash != std::string::npos) {
    a.db = std::stoi(s.substr(slash + 1));
    s = s.substr(0, slash);
  }
  const auto colon = s.rfind(':');
  REQUIRE(colon != std::string::npos);
  a.host = s.substr(0, colon);
  a.port = static_cast<std::uint16_t>(std::stoi(s.substr(colon + 1)));
  return a;
}

std::string server_bin() {
  if (const char* bin = std::getenv("REDIS_SERVER_BIN"); bin != nullptr && *bin != '\0') return bin;
  return "redis-server";
}

using test::free_port;

/// Raw synchronous access for assertions. Null reply -> the test fails.
class Raw {
 public:
  Raw(const std::string& host, int port, const std::string& password = {}) {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout(host.c_str(), port, tv);
    REQUIRE(ctx_ != nullptr);
    REQUIRE(ctx_->err == 0);
    if (!password.empty()) REQUIRE(str({"AUTH", password}) == "OK");
  }
  ~Raw() { redisFree(ctx_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  redisReply* cmd(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    REQUIRE(r != nullptr);
    return r;
  }
  std::string str(const std::vector<std::string>& args) {
    redisReply* r = cmd(args);
    std::string out = r->str != nullptr ? std::string(r->str, r->len) : std::string();
    freeReplyObject(r);
    return out;
  }
  long long integer(const std::vector<std::string>& args) {
    redisReply* r = cmd(args);
    const bool is_int = r->type == REDIS_REPLY_INTEGER;
    const long long v = r->integer;
    freeReplyObject(r);
    REQUIRE(is_int);
    return v;
  }

 private:
  redisContext* ctx_ = nullptr;
};

/// A redis-server of the test's own (no persistence, its own dir), killed and reaped by the destructor.
class OwnRedis {
 public:
  explicit OwnRedis(int port, std::vector<std::string> extra = {}) : port_(port), extra_(std::move(extra)) {
    dir_ = std::filesystem::temp_directory_path() / ("llmproxy-redis-test-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(port));
    std::filesystem::create_directories(dir_);
    start();
  }
  ~OwnRedis() {
    kill_now();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;

  void start() {
    std::vector<std::string> args{server_bin(), "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", dir_.string(),
                                  "--daemonize", "no", "--logfile", (dir_ / "server.log").string()};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(posix_spawnp(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    // Up once it accepts a connection (the answer may be NOAUTH: still up).
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      timeval tv{0, 200000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      const bool up = c != nullptr && c->err == 0;
      if (c != nullptr) redisFree(c);
      if (up) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("redis-server did not start on port " << port_);
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  void pause() { REQUIRE(::kill(pid_, SIGSTOP) == 0); }
  void resume() { REQUIRE(::kill(pid_, SIGCONT) == 0); }
  int port() const { return port_; }

 private:
  int port_;
  std::vector<std::string> extra_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

/// The proxy-like I/O threads the backend runs on (declared before the backend: destroyed after it).
using Io = test::IoThreads;

/// A prefix of the case's own on the shared server, so cases never see each other's keys.
std::string unique_prefix(const std::string& name) {
  static std::atomic<int> n{0};
  return "llmproxy:test:" + name + ":" + std::to_string(::getpid()) + ":" + std::to_string(n++) + ":";
}

RedisOptions options_for(const Address& a, const std::string& prefix) {
  RedisOptions o;
  o.host = a.host;
  o.port = a.port;
  o.db = a.db;
  o.key_prefix = prefix;
  o.timeout = 1000ms;
  return o;
}

/// Retries `get` until it is not an error (a reconnect is at most one interval away) or `limit` passes.
cache::Lookup get_when_up(Io& io, cache::Backend& b, const std::string& key, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  cache::Lookup l;
  do {
    l = io.await(b.get(key));
    if (l.status != LookupStatus::error) return l;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  return l;
}

TEST_CASE("cache backend contract: Redis", "[redis]") {
  const Address addr = test_redis();
  // Each section's backend gets a prefix of its own: the contract purges "*" first, which must not reach the
  // keys of the cases running beside it on the shared server.
  check_cache_backend_contract({"redis", [addr](boost::asio::io_context& io) {
                                  RedisOptions o = options_for(addr, unique_prefix("contract"));
                                  o.max_object_bytes = kCacheMaxObjectBytes;
                                  return cache::make_redis_backend(io, o);
                                }});
}

TEST_CASE("Redis backend stores, replaces and answers entries through a real server", "[redis]") {
  const Address addr = test_redis();
  Io io;
  const std::string prefix = unique_prefix("basic");
  auto backend = cache::make_redis_backend(io.io, options_for(addr, prefix));
  CHECK(backend->name() == "redis");

  CHECK(io.await(backend->get("k1")).status == LookupStatus::miss);

  auto first = make_entry("{\"answer\":1}");
  REQUIRE(io.await(backend->put("k1", first)));
  auto hit = io.await(backend->get("k1"));
  REQUIRE(hit.status == LookupStatus::hit);
  REQUIRE(hit.entry);
  CHECK(hit.entry->body == first->body);
  CHECK(hit.entry->status == 200);
  CHECK(hit.entry->headers.get("etag") == "\"v1\"");
  CHECK(hit.entry->expires_at_ms == first->expires_at_ms);
  CHECK(hit.entry->vary == first->vary);

  // Stored under the prefix, with Redis' own expiry close to the entry's lifetime.
  Raw raw(addr.host, addr.port);
  REQUIRE(raw.str({"SELECT", std::to_string(addr.db)}) == "OK");
  CHECK(raw.integer({"EXISTS", prefix + "k1"}) == 1);
  const long long pttl = raw.integer({"PTTL", prefix + "k1"});
  CHECK(pttl > 50'000);
  CHECK(pttl <= 60'000);

  auto second = make_entry(std::string(5000, 'x'));
  REQUIRE(io.await(backend->put("k1", second)));
  hit = io.await(backend->get("k1"));
  REQUIRE(hit.status == LookupStatus::hit);
  CHECK(hit.entry->body == second->body);

  CHECK(io.await(backend->get("k2")).status == LookupStatus::miss);
  CHECK(backend->healthy());
  CHECK(backend->stats().failures == 0);

  if (addr.host == "127.0.0.1") {  // the same server by name (resolved asynchronously)
    Address by_name = addr;
    by_name.host = "localhost";
    auto named = cache::make_redis_backend(io.io, options_for(by_name, prefix));
    auto l = io.await(named->get("k1"));
    REQUIRE(l.status == LookupStatus::hit);
    CHECK(l.entry->body == second->body);
  }
}

TEST_CASE("Redis backend never answers an expired entry and refuses what it must not store", "[redis]") {
  const Address addr = test_redis();
  Io io;
  const std::string prefix = unique_prefix("expiry");
  RedisOptions o = options_for(addr, prefix);
  o.max_object_bytes = 1000;
  auto backend = cache::make_redis_backend(io.io, o);
  Raw raw(addr.host, addr.port);
  REQUIRE(raw.str({"SELECT", std::to_string(addr.db)}) == "OK");

  SECTION("Redis expires it after its lifetime") {
    REQUIRE(io.await(backend->put("short", make_entry("soon gone", 300))));
    CHECK(io.await(backend->get("short")).status == LookupStatus::hit);
    const auto deadline = Clock::now() + 5s;
    LookupStatus s = LookupStatus::hit;
    while (Clock::now() < deadline && (s = io.await(backend->get("short")).status) == LookupStatus::hit) {
      std::this_thread::sleep_for(50ms);
    }
    CHECK(s == LookupStatus::miss);
    CHECK(raw.integer({"EXISTS", prefix + "short"}) == 0);
  }
  SECTION("an entry already past its lifetime is not stored") {
    CHECK_FALSE(io.await(backend->put("past", make_entry("old", -1))));
    CHECK(raw.integer({"EXISTS", prefix + "past"}) == 0);
  }
  SECTION("an entry Redis still holds but whose expires_at has passed (another clock) is a miss") {
    auto e = std::make_shared<Entry>(*make_entry("stale", -5000));
    REQUIRE(raw.str({"SET", prefix + "skewed", cache::encode(*e), "PX", "60000"}) == "OK");
    CHECK(io.await(backend->get("skewed")).status == LookupStatus::miss);
  }
  SECTION("a body larger than max_object_bytes is refused") {
    CHECK_FALSE(io.await(backend->put("big", make_entry(std::string(1001, 'b')))));
    CHECK(raw.integer({"EXISTS", prefix + "big"}) == 0);
    CHECK(io.await(backend->put("fits", make_entry(std::string(1000, 'b')))));
    CHECK(raw.integer({"EXISTS", prefix + "fits"}) == 1);
  }
  SECTION("a value that does not decode is a miss and is deleted") {
    REQUIRE(raw.str({"SET", prefix + "garbage", "not an entry"}) == "OK");
    CHECK(io.await(backend->get("garbage")).status == LookupStatus::miss);
    CHECK(raw.integer({"EXISTS", prefix + "garbage"}) == 0);
  }
  CHECK(backend->stats().failures == 0);
}

TEST_CASE("Redis backend purge deletes exactly the matching keys of its own prefix and counts them", "[redis]") {
  const Address addr = test_redis();
  Io io;
  // Glob characters in the prefix are matched literally.
  const std::string prefix = unique_prefix("purge") + "[*?]\\";
  auto backend = cache::make_redis_backend(io.io, options_for(addr, prefix));
  auto other = cache::make_redis_backend(io.io, options_for(addr, unique_prefix("purge-other")));

  auto e = make_entry("x");
  for (const char* k : {"aa:1", "aa:2", "aa:3", "ab:1", "b:aa:1"}) REQUIRE(io.await(backend->put(k, e)));
  REQUIRE(io.await(other->put("aa:1", e)));

  CHECK(io.await(backend->purge("zz*")) == std::optional<std::uint64_t>(0));
  CHECK(io.await(backend->purge("ab:1")) == std::optional<std::uint64_t>(1));
  CHECK(io.await(backend->get("ab:1")).status == LookupStatus::miss);
  // A pattern is anchored at both ends and confined to the backend's prefix.
  CHECK(io.await(backend->purge("aa:*")) == std::optional<std::uint64_t>(3));
  CHECK(io.await(backend->get("aa:2")).status == LookupStatus::miss);
  CHECK(io.await(backend->get("b:aa:1")).status == LookupStatus::hit);
  CHECK(io.await(other->get("aa:1")).status == LookupStatus::hit);
  CHECK(io.await(backend->purge("aa:*")) == std::optional<std::uint64_t>(0));

  SECTION("thousands of keys: every SCAN page is followed") {
    constexpr int kN = 2500;
    std::vector<std::future<bool>> puts;
    for (int i = 0; i < kN; ++i) {
      puts.push_back(net::co_spawn(net::make_strand(io.io), backend->put("many:" + std::to_string(i), e),
                                   net::use_future));
    }
    for (auto& f : puts) {
      REQUIRE(f.wait_for(10s) == std::future_status::ready);
      REQUIRE(f.get());
    }
    CHECK(io.await(backend->purge("many:*"), 30s) == std::optional<std::uint64_t>(kN));
    CHECK(io.await(backend->get("many:7")).status == LookupStatus::miss);
  }
  CHECK(io.await(backend->purge("*")) == std::optional<std::uint64_t>(1));  // b:aa:1
  CHECK(io.await(other->purge("*")) == std::optional<std::uint64_t>(1));
}

TEST_CASE("Redis backend keeps databases apart with SELECT", "[redis]") {
  const Address addr = test_redis();
  Io io;
  const std::string prefix = unique_prefix("db");
  Address a1 = addr;
  a1.db = addr.db == 1 ? 2 : 1;
  auto in_db = cache::make_redis_backend(io.io, options_for(a1, prefix));
  auto in_default = cache::make_redis_backend(io.io, options_for(addr, prefix));

  REQUIRE(io.await(in_db->put("k", make_entry("db one"))));
  CHECK(io.await(in_default->get("k")).status == LookupStatus::miss);
  CHECK(io.await(in_db->get("k")).status == LookupStatus::hit);
  CHECK(io.await(in_default->purge("*")) == std::optional<std::uint64_t>(0));

  Raw raw(addr.host, addr.port);
  REQUIRE(raw.str({"SELECT", std::to_string(a1.db)}) == "OK");
  CHECK(raw.integer({"EXISTS", prefix + "k"}) == 1);
  CHECK(io.await(in_db->purge("*")) == std::optional<std::uint64_t>(1));
  CHECK(raw.integer({"EXISTS", prefix + "k"}) == 0);
}

TEST_CASE("Redis backend with a wrong password fails cleanly without revealing it", "[redis]") {
  (void)test_redis();
  const std::string password = "s3cret-Pa55word";
  OwnRedis server(free_port(), {"--requirepass", password});
  Io io;
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(server.port());
  o.key_prefix = unique_prefix("auth");
  o.timeout = 1000ms;

  SECTION("wrong password") {
    o.password = "wrong-Pa55word";
    auto backend = cache::make_redis_backend(io.io, o);
    const auto t0 = Clock::now();
    auto l = io.await(backend->get("k"));
    CHECK(Clock::now() - t0 < 1500ms);
    REQUIRE(l.status == LookupStatus::error);
    INFO(l.error);
    CHECK(l.error.find("AUTH") != std::string::npos);
    CHECK(l.error.find("wrong-Pa55word") == std::string::npos);
    CHECK(l.error.find(password) == std::string::npos);
    CHECK_FALSE(io.await(backend->put("k", make_entry("x"))));
    CHECK_FALSE(io.await(backend->purge("*")).has_value());
    CHECK_FALSE(backend->healthy());
    CHECK(backend->stats().failures == 3);
  }
  SECTION("no password") {
    auto backend = cache::make_redis_backend(io.io, o);
    auto l = io.await(backend->get("k"));
    REQUIRE(l.status == LookupStatus::error);
    CHECK_FALSE(io.await(backend->put("k", make_entry("x"))));
  }
  SECTION("the right password, alone and with the default user (AUTH user pass)") {
    o.password = password;
    if (GENERATE(false, true)) o.username = "default";
    auto backend = cache::make_redis_backend(io.io, o);
    REQUIRE(io.await(backend->put("k", make_entry("x"))));
    CHECK(io.await(backend->get("k")).status == LookupStatus::hit);
    CHECK(backend->healthy());
  }
}

TEST_CASE("Redis backend fails within the timeout when the server is unreachable", "[redis]") {
  (void)test_redis();
  Io io;
  RedisOptions o;
  o.key_prefix = unique_prefix("unreachable");
  o.timeout = 500ms;
  SECTION("a closed port") {
    o.host = "127.0.0.1";
    o.port = static_cast<std::uint16_t>(free_port());
  }
  SECTION("a host name that does not resolve") {
    o.host = "no-such-host.invalid";
    o.port = 6379;
  }
  SECTION("an address that never answers") {
    o.host = "192.0.2.1";  // TEST-NET-1: packets go nowhere
    o.port = 6379;
  }
  auto backend = cache::make_redis_backend(io.io, o);
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    auto l = io.await(backend->get("k"), 5s);
    const auto took = Clock::now() - t0;
    CHECK(l.status == LookupStatus::error);
    CHECK_FALSE(l.error.empty());
    CHECK(took < 1200ms);
    CHECK_FALSE(io.await(backend->put("k", make_entry("x")), 5s));
  }
  CHECK_FALSE(backend->healthy());
  CHECK(backend->stats().failures == 6);
}

TEST_CASE("Redis backend survives the server dying and recovers when it is back on the same port", "[redis]") {
  (void)test_redis();
  const int port = free_port();
  std::optional<OwnRedis> server;
  server.emplace(port);
  Io io;
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(port);
  o.key_prefix = unique_prefix("outage");
  o.timeout = 500ms;
  auto backend = cache::make_redis_backend(io.io, o);
  REQUIRE(io.await(backend->put("k", make_entry("before"))));
  REQUIRE(backend->healthy());

  server.reset();  // SIGKILL: no goodbye on the connection
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    auto l = io.await(backend->get("k"), 5s);
    CHECK(l.status == LookupStatus::error);
    CHECK(Clock::now() - t0 < 800ms);
  }
  CHECK_FALSE(backend->healthy());
  CHECK(backend->stats().failures >= 5);

  server.emplace(port);  // empty: no persistence
  auto l = get_when_up(io, *backend, "k", 5s);
  CHECK(l.status == LookupStatus::miss);
  CHECK(backend->healthy());
  REQUIRE(io.await(backend->put("k", make_entry("after"))));
  l = io.await(backend->get("k"));
  REQUIRE(l.status == LookupStatus::hit);
  CHECK(l.entry->body == "after");
}

TEST_CASE("Redis backend answers an error within the timeout when the server hangs, then recovers", "[redis]") {
  (void)test_redis();
  OwnRedis server(free_port());
  Io io;
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(server.port());
  o.key_prefix = unique_prefix("hang");
  o.timeout = 400ms;
  auto backend = cache::make_redis_backend(io.io, o);
  REQUIRE(io.await(backend->put("k", make_entry("v"))));

  server.pause();  // SIGSTOP: the connection stays open, nothing answers
  std::vector<std::future<cache::Lookup>> gets;
  const auto t0 = Clock::now();
  for (int i = 0; i < 20; ++i) gets.push_back(net::co_spawn(net::make_strand(io.io), backend->get("k"), net::use_future));
  for (auto& f : gets) {
    REQUIRE(f.wait_for(3s) == std::future_status::ready);
    auto l = f.get();
    CHECK(l.status == LookupStatus::error);
  }
  CHECK(Clock::now() - t0 < 1000ms);
  CHECK_FALSE(backend->healthy());
  // Through reconnect attempts (the kernel still accepts connections for the stopped server): every lookup
  // fails within the timeout and the backend never counts itself up.
  const auto until = Clock::now() + 2500ms;
  while (Clock::now() < until) {
    const auto t1 = Clock::now();
    CHECK(io.await(backend->get("k"), 3s).status == LookupStatus::error);
    CHECK(Clock::now() - t1 < 700ms);
    CHECK_FALSE(backend->healthy());
    std::this_thread::sleep_for(20ms);  // pacing, not a wait for an event
  }
  server.resume();

  auto l = get_when_up(io, *backend, "k", 5s);
  REQUIRE(l.status == LookupStatus::hit);
  CHECK(l.entry->body == "v");
  CHECK(backend->healthy());
}

TEST_CASE("Redis backend matches every reply to its caller under concurrency on two threads", "[redis]") {
  const Address addr = test_redis();
  Io io(2);
  auto backend = cache::make_redis_backend(io.io, options_for(addr, unique_prefix("concurrency")));
  constexpr int kN = 400;
  auto body_of = [](int i) { return "body-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), 'z'); };

  std::vector<std::future<bool>> puts;
  for (int i = 0; i < kN; ++i) {
    puts.push_back(net::co_spawn(net::make_strand(io.io), backend->put("key:" + std::to_string(i), make_entry(body_of(i))),
                                 net::use_future));
  }
  for (auto& f : puts) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    REQUIRE(f.get());
  }
  // Gets and misses interleaved, several rounds, each from its own strand.
  std::vector<std::future<cache::Lookup>> gets;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kN; ++i) {
      gets.push_back(net::co_spawn(net::make_strand(io.io), backend->get("key:" + std::to_string(i)), net::use_future));
      gets.push_back(net::co_spawn(net::make_strand(io.io), backend->get("absent:" + std::to_string(i)), net::use_future));
    }
  }
  for (std::size_t n = 0; n < gets.size(); ++n) {
    REQUIRE(gets[n].wait_for(10s) == std::future_status::ready);
    auto l = gets[n].get();
    const int i = static_cast<int>((n / 2) % kN);
    if (n % 2 == 0) {
      REQUIRE(l.status == LookupStatus::hit);
      REQUIRE(l.entry->body == body_of(i));
    } else {
      REQUIRE(l.status == LookupStatus::miss);
    }
  }
  CHECK(io.await(backend->purge("*")) == std::optional<std::uint64_t>(kN));
  CHECK(backend->stats().failures == 0);
}

TEST_CASE("Redis backend can be destroyed with commands in flight and after its io_context stopped", "[redis]") {
  const Address addr = test_redis();
  SECTION("pending commands complete with an error when the backend goes away") {
    OwnRedis server(free_port());
    Io io;
    RedisOptions o;
    o.host = "127.0.0.1";
    o.port = static_cast<std::uint16_t>(server.port());
    o.key_prefix = unique_prefix("destroy");
    o.timeout = 5000ms;
    auto backend = cache::make_redis_backend(io.io, o);
    REQUIRE(io.await(backend->put("k", make_entry("v"))));
    server.pause();
    std::vector<std::future<cache::Lookup>> gets;
    for (int i = 0; i < 10; ++i) gets.push_back(net::co_spawn(net::make_strand(io.io), backend->get("k"), net::use_future));
    std::this_thread::sleep_for(100ms);  // let them reach the socket (not an assertion)
    const auto t0 = Clock::now();
    backend.reset();
    for (auto& f : gets) {
      REQUIRE(f.wait_for(2s) == std::future_status::ready);
      CHECK(f.get().status == LookupStatus::error);
    }
    CHECK(Clock::now() - t0 < 1000ms);  // not the 5 s timeout
    server.resume();
  }
  SECTION("an io_context that never ran, or stopped, destroyed after the backend") {
    auto io = std::make_unique<net::io_context>();
    auto backend = cache::make_redis_backend(*io, options_for(addr, unique_prefix("stopped")));
    auto f = net::co_spawn(*io, backend->get("k"), net::use_future);
    io->run_for(50ms);
    io->stop();
    backend.reset();
    io.reset();  // destroys the queued handlers, the connection with them
    SUCCEED("no crash, no leak (ASan), no hang");
  }
}

}  // namespace
}  // namespace llmproxy::contract
