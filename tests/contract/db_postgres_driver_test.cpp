// What only the PostgreSQL driver's pool and session handling can show: connections killed by the server,
// pool exhaustion, lifetime and idle recycling, statement_timeout, connection errors without the password, and
// the migration lock. Each test case runs in its own scratch database (dropped at the end) on TEST_DATABASE_URL;
// without it the cases fail, never skip.
#ifdef LLMPROXY_WITH_POSTGRES
#include <libpq-fe.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "contract/database_fixture.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/postgres_database.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"
#include "support/ports.hpp"

#if defined(__SANITIZE_ADDRESS__)
// libpqxx 6.4 leaks the PGresult of a statement that fails because its connection broke: make_result() evaluates
// encoding_id(), which throws broken_connection, before the result has an owner. These tests break connections
// on purpose, so LeakSanitizer is told about that one known third-party leak (a substring of the allocating
// stack; allocations made by our own code never have these libpqxx frames on their stack).
extern "C" const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec\n"
         "leak:pqxx::connection_base::register_prepared\n";
}
#endif

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// A database of its own for one test case; dropped (WITH FORCE) by the destructor. Declare it before the
/// driver so the driver is closed first.
struct OwnDatabase {
  ScratchDatabase db = create_scratch_database();
  OwnDatabase() = default;
  OwnDatabase(const OwnDatabase&) = delete;
  OwnDatabase& operator=(const OwnDatabase&) = delete;
  ~OwnDatabase() {
    try {
      drop_scratch_database(db);
    } catch (...) {  // the cluster is throwaway; a leftover database does not affect other tests
    }
  }

  config::DatabaseConfig config() const {
    auto c = postgres_config(db.url);
    c.connect_timeout = 2s;
    c.statement_timeout = 20s;
    return c;
  }

  /// Backend pids of this database's driver connections (the driver sets application_name `llm-proxy`).
  std::set<int> driver_backends() const {
    pqxx::connection c(db.admin_url);
    pqxx::nontransaction tx(c);
    std::set<int> pids;
    for (const auto& row : tx.exec_params("SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                                          "AND application_name = 'llm-proxy'",
                                          db.name)) {
      pids.insert(row[0].as<int>());
    }
    return pids;
  }

  /// Driver backends blocked on a heavyweight lock (row lock, advisory lock).
  int lock_waiters() const {
    pqxx::connection c(db.admin_url);
    pqxx::nontransaction tx(c);
    return tx
        .exec_params1("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'llm-proxy' "
                      "AND wait_event_type = 'Lock'",
                      db.name)[0]
        .as<int>();
  }

  void terminate_driver_backends() const {
    pqxx::connection c(db.admin_url);
    pqxx::nontransaction tx(c);
    tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                   "AND application_name = 'llm-proxy'",
                   db.name);
  }
};

/// Polls `done` every 10 ms for up to `limit`; true once it held.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

std::unique_ptr<db::Driver> open_migrated(const config::DatabaseConfig& config) {
  auto driver = db::postgres::open(config);
  migrate::Runner(*driver, driver->files(), 20s).up();
  return driver;
}

struct Seed {
  db::Project project;
  db::Token token;
};

/// A project and a token with a quota of 100.
Seed seed(db::Database& d) {
  const auto now = util::now();
  Seed s;
  s.project = db::Project{util::uuid_v4(), "pool-" + util::uuid_v4(), "sk-upstream", true, std::nullopt, now, now,
                          std::nullopt};
  d.create_project(s.project);
  s.token.id = util::uuid_v4();
  s.token.token_hash = util::sha256_hex(s.token.id);
  s.token.token_hint = "sk-AbCd...wXyZ";
  s.token.project_id = s.project.id;
  s.token.max_requests = 100;
  s.token.created_at = now;
  d.create_token(s.token);
  return s;
}

/// Holds a row lock on one token from a connection outside the driver, so that the driver's consume_quota on
/// that token blocks (holding its pooled connection) until release() or destruction.
class TokenRowLock {
 public:
  TokenRowLock(const std::string& url, const std::string& token_id) : conn_(url), tx_(conn_) {
    tx_.exec_params("SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE", token_id);
  }
  void release() {
    if (!released_) tx_.commit();
    released_ = true;
  }

 private:
  pqxx::connection conn_;
  pqxx::work tx_;
  bool released_ = false;
};

/// Starts consume_quota on another thread; it blocks on `lock`'s row lock while holding one pooled connection.
/// Declare the future before the lock: the lock is then released first and the future's destructor cannot hang.
std::future<db::QuotaResult> blocked_consume(OwnDatabase& own, db::Database& d, const std::string& token_id) {
  auto f = std::async(std::launch::async, [&d, token_id] { return d.consume_quota(token_id, 1, util::now()); });
  REQUIRE(eventually([&] { return own.lock_waiters() == 1; }));
  return f;
}

/// A TCP forwarder between the driver and PostgreSQL that can make the connections it carries go stale the way a
/// NAT or firewall timeout does: nothing arrives on the client's socket, and the next request is not forwarded
/// but answered by a closed connection. Without this the driver's non-blocking check of an idle socket would
/// spot the dead connection before using it, so the single retry of the first statement could not be observed.
class StaleProxy {
 public:
  StaleProxy(std::string server_host, int server_port)
      : server_host_(std::move(server_host)), server_port_(server_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr = loopback(0);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~StaleProxy() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : pumps_) t.join();
    ::close(listener_);
  }
  StaleProxy(const StaleProxy&) = delete;
  StaleProxy& operator=(const StaleProxy&) = delete;

  int port() const { return port_; }
  /// Every connection open now swallows the next bytes its client sends and then closes.
  void make_existing_stale() {
    std::lock_guard lock(mutex_);
    for (auto& link : links_) link->stale = true;
  }
  /// New connections are closed at once (as if the server could not be reached).
  void refuse_new(bool refuse) { refuse_ = refuse; }

 private:
  struct Link {
    int client = -1;
    int server = -1;
    std::atomic<bool> stale{false};
  };

  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    return addr;
  }

  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = refuse_ ? -1 : ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = loopback(server_port_);
      ::inet_pton(AF_INET, server_host_.c_str(), &addr.sin_addr);
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (server >= 0) ::close(server);
        ::close(client);
        continue;
      }
      auto link = std::make_shared<Link>();
      link->client = client;
      link->server = server;
      std::lock_guard lock(mutex_);
      links_.push_back(link);
      pumps_.emplace_back([this, link] { pump(*link); });
    }
  }

  void pump(Link& link) {
    char buffer[16384];
    while (!stop_) {
      pollfd p[2] = {{link.client, POLLIN, 0}, {link.server, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      if (p[0].revents != 0) {
        const auto n = ::read(link.client, buffer, sizeof buffer);
        if (n <= 0 || link.stale) break;  // a stale link drops the request unforwarded
        if (::write(link.server, buffer, static_cast<std::size_t>(n)) != n) break;
      }
      if (p[1].revents != 0) {
        const auto n = ::read(link.server, buffer, sizeof buffer);
        if (n <= 0) break;
        if (::write(link.client, buffer, static_cast<std::size_t>(n)) != n) break;
      }
    }
    ::close(link.client);
    ::close(link.server);
  }

  std::string server_host_;
  int server_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> refuse_{false};
  std::thread acceptor_;
  std::mutex mutex_;  // guards links_ and pumps_
  std::vector<std::shared_ptr<Link>> links_;
  std::vector<std::thread> pumps_;
};

/// `url` (URI or conninfo) as a conninfo string whose host and port are replaced.
std::string via(const std::string& url, const std::string& host, int port) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  REQUIRE(options != nullptr);
  std::string out = "host=" + host + " port=" + std::to_string(port);
  for (auto* o = options; o->keyword != nullptr; ++o) {
    const std::string key = o->keyword;
    if (o->val == nullptr || key == "host" || key == "hostaddr" || key == "port") continue;
    std::string value;
    for (const char* c = o->val; *c != '\0'; ++c) {
      if (*c == '\'' || *c == '\\') value += '\\';
      value += *c;
    }
    out += " " + key + "='" + value + "'";
  }
  PQconninfoFree(options);
  return out;
}

using test::free_port;

TEST_CASE("postgres pool: a pooled connection killed by the server is replaced and the call succeeds",
          "[postgres][pool]") {
  OwnDatabase own;
  auto config = own.config();
  config.pool_size = 3;
  config.max_idle_conns = 3;
  auto d = open_migrated(config);
  const auto s = seed(*d);
  REQUIRE(d->consume_quota(s.token.id, 1, util::now()).outcome == db::QuotaOutcome::accepted);

  // Two idle connections: one blocked behind a row lock while a second call opens another.
  {
    std::future<db::QuotaResult> blocked;
    TokenRowLock lock(own.db.url, s.token.id);
    blocked = blocked_consume(own, *d, s.token.id);
    CHECK(d->get_project(s.project.id).name == s.project.name);
    lock.release();
    REQUIRE(blocked.get().outcome == db::QuotaOutcome::accepted);
  }
  REQUIRE(d->pool_stats().idle == 2);
  REQUIRE(eventually([&] { return own.driver_backends().size() == 2; }));  // the migration session has gone
  const auto old_backends = own.driver_backends();

  own.terminate_driver_backends();
  REQUIRE(eventually([&] { return own.driver_backends().empty(); }));

  // The first statement on the reused (dead) connection fails; the call is retried once on a new connection.
  // It is a quota increment: it must count exactly once.
  const auto r = d->consume_quota(s.token.id, 1, util::now());
  REQUIRE(r.outcome == db::QuotaOutcome::accepted);
  CHECK(r.token->request_count == 3);
  CHECK(d->get_token(s.token.id).request_count == 3);

  // Every later call works too, reads and writes, whichever connection it gets.
  for (int i = 0; i < 4; ++i) CHECK(d->get_project(s.project.id).id == s.project.id);
  const auto now = util::now();
  d->create_project(db::Project{util::uuid_v4(), "after-kill", "k", true, std::nullopt, now, now, std::nullopt});
  CHECK(d->list_projects({1, 10}).total_count == 2);
  CHECK(d->health().up);

  const auto stats = d->pool_stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.open == stats.idle);
  CHECK(stats.open <= 3);
  for (int pid : own.driver_backends()) CHECK(old_backends.count(pid) == 0);

  SECTION("also with a pool of one connection") {
    auto one = own.config();
    one.pool_size = 1;
    one.max_idle_conns = 1;
    auto single = db::postgres::open(one);
    CHECK(single->get_project(s.project.id).id == s.project.id);
    own.terminate_driver_backends();
    REQUIRE(eventually([&] { return own.driver_backends().empty(); }));
    CHECK(single->get_project(s.project.id).id == s.project.id);
    CHECK(single->pool_stats().open == 1);
  }
}

TEST_CASE("postgres pool: a reused connection that went stale silently is retried once on a new connection",
          "[postgres][pool]") {
  OwnDatabase own;
  std::string host;
  int port = 0;
  {
    pqxx::connection c(own.db.admin_url);
    pqxx::nontransaction tx(c);
    const auto row = tx.exec1("SELECT host(inet_server_addr()), inet_server_port()");
    INFO("TEST_DATABASE_URL must point at PostgreSQL over TCP for this test");
    REQUIRE_FALSE(row[0].is_null());
    host = row[0].c_str();
    port = row[1].as<int>();
  }
  StaleProxy proxy(host, port);
  auto config = own.config();
  config.url = via(own.db.url, "127.0.0.1", proxy.port());
  config.pool_size = 2;
  auto d = open_migrated(config);
  const auto s = seed(*d);
  REQUIRE(d->consume_quota(s.token.id, 1, util::now()).outcome == db::QuotaOutcome::accepted);
  REQUIRE(d->pool_stats().idle == 1);

  SECTION("the retried call succeeds and a quota increment counts once") {
    proxy.make_existing_stale();
    const auto r = d->consume_quota(s.token.id, 1, util::now());
    REQUIRE(r.outcome == db::QuotaOutcome::accepted);
    CHECK(r.token->request_count == 2);
    CHECK(d->get_token(s.token.id).request_count == 2);
    const auto stats = d->pool_stats();
    CHECK(stats.open == 1);
    CHECK(stats.failures_total == 0);
  }

  SECTION("only once: when the fresh connection fails too, the call fails with Unavailable") {
    proxy.make_existing_stale();
    proxy.refuse_new(true);
    CHECK_THROWS_AS(d->get_project(s.project.id), db::Unavailable);
    CHECK(d->pool_stats().open == 0);
    proxy.refuse_new(false);
    CHECK(d->get_project(s.project.id).id == s.project.id);
    CHECK(d->get_token(s.token.id).request_count == 1);
  }
}

TEST_CASE("postgres pool: an exhausted pool fails with Unavailable after connect_timeout, not a hang",
          "[postgres][pool]") {
  OwnDatabase own;
  auto config = own.config();
  config.pool_size = 1;
  config.max_idle_conns = 1;
  config.connect_timeout = 1s;
  auto d = open_migrated(config);
  const auto s = seed(*d);

  std::future<db::QuotaResult> blocked;
  TokenRowLock lock(own.db.url, s.token.id);
  blocked = blocked_consume(own, *d, s.token.id);
  REQUIRE(d->pool_stats().in_use == 1);

  // Watch the waiting gauge from another thread while the main thread waits for a connection.
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> max_waiting{0};
  std::thread watcher([&] {
    while (!stop) {
      max_waiting = std::max<std::int64_t>(max_waiting, d->pool_stats().waiting);
      std::this_thread::sleep_for(2ms);
    }
  });
  const auto started = Clock::now();
  std::string message;
  try {
    d->get_project(s.project.id);
  } catch (const db::Timeout& e) {
    message = std::string("wrong type (Timeout): ") + e.what();
  } catch (const db::Unavailable& e) {
    message = e.what();
  }
  const auto waited = Clock::now() - started;
  stop = true;
  watcher.join();

  CHECK(message.find("pool exhausted") != std::string::npos);
  CHECK(waited >= 900ms);
  CHECK(waited < 5s);
  CHECK(max_waiting == 1);
  auto stats = d->pool_stats();
  CHECK(stats.waiting == 0);
  CHECK(stats.in_use == 1);
  CHECK(stats.waits_total >= 1);
  CHECK(stats.failures_total >= 1);

  // health() never throws: it reports the database as down while no connection can be had.
  const auto h = d->health();
  CHECK_FALSE(h.up);
  CHECK(h.error.find("pool exhausted") != std::string::npos);

  lock.release();
  REQUIRE(blocked.get().outcome == db::QuotaOutcome::accepted);
  CHECK(d->get_project(s.project.id).id == s.project.id);
  stats = d->pool_stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.open == 1);
}

TEST_CASE("postgres pool: connections older than conn_max_lifetime are replaced", "[postgres][pool]") {
  OwnDatabase own;
  auto config = own.config();
  config.pool_size = 2;

  SECTION("an expired idle connection is closed at checkout and a new backend serves the call") {
    config.conn_max_lifetime = 500ms;
    auto d = open_migrated(config);
    const auto s = seed(*d);
    CHECK(d->get_project(s.project.id).id == s.project.id);
    REQUIRE(eventually([&] { return own.driver_backends().size() == 1; }));
    const auto first = own.driver_backends();
    std::this_thread::sleep_for(700ms);
    CHECK(d->get_project(s.project.id).id == s.project.id);
    REQUIRE(eventually([&] { return own.driver_backends().size() == 1; }));
    const auto second = own.driver_backends();
    CHECK(*second.begin() != *first.begin());
    CHECK(d->pool_stats().open == 1);
  }

  SECTION("a connection past its lifetime is closed when returned") {
    config.conn_max_lifetime = 1ms;
    auto d = open_migrated(config);
    const auto s = seed(*d);
    for (int i = 0; i < 3; ++i) {
      CHECK(d->get_project(s.project.id).id == s.project.id);
      const auto stats = d->pool_stats();
      CHECK(stats.open == 0);
      CHECK(stats.idle == 0);
      CHECK(eventually([&] { return own.driver_backends().empty(); }));
    }
  }

  SECTION("within its lifetime the same backend is reused") {
    auto d = open_migrated(config);
    const auto s = seed(*d);
    CHECK(d->get_project(s.project.id).id == s.project.id);
    REQUIRE(eventually([&] { return own.driver_backends().size() == 1; }));
    const auto first = own.driver_backends();
    for (int i = 0; i < 3; ++i) CHECK(d->get_project(s.project.id).id == s.project.id);
    CHECK(own.driver_backends() == first);
  }
}

TEST_CASE("postgres pool: idle connections above max_idle_conns are closed when returned", "[postgres][pool]") {
  OwnDatabase own;
  auto config = own.config();
  config.pool_size = 3;
  config.max_idle_conns = 1;
  auto d = open_migrated(config);
  const auto s = seed(*d);
  {
    std::future<db::QuotaResult> blocked;
    TokenRowLock lock(own.db.url, s.token.id);
    blocked = blocked_consume(own, *d, s.token.id);
    CHECK(d->get_project(s.project.id).id == s.project.id);  // a second connection, returned while one is idle?
    CHECK(d->pool_stats().open == 2);
    lock.release();
    REQUIRE(blocked.get().outcome == db::QuotaOutcome::accepted);
  }
  const auto stats = d->pool_stats();
  CHECK(stats.open == 1);
  CHECK(stats.idle == 1);
  CHECK(eventually([&] { return own.driver_backends().size() == 1; }));
}

TEST_CASE("postgres: statement_timeout ends a blocked statement with db::Timeout and the connection stays usable",
          "[postgres][pool]") {
  OwnDatabase own;
  auto config = own.config();
  config.pool_size = 1;
  config.statement_timeout = 300ms;
  auto d = open_migrated(config);
  const auto s = seed(*d);

  TokenRowLock lock(own.db.url, s.token.id);
  const auto started = Clock::now();
  CHECK_THROWS_AS(d->consume_quota(s.token.id, 1, util::now()), db::Timeout);
  CHECK(Clock::now() - started < 5s);
  lock.release();

  CHECK(d->get_token(s.token.id).request_count == 0);
  CHECK(d->consume_quota(s.token.id, 1, util::now()).outcome == db::QuotaOutcome::accepted);
  CHECK(d->pool_stats().open == 1);
}

TEST_CASE("postgres: connection failures are Unavailable, bad URLs Error, and neither shows the password",
          "[postgres]") {
  const std::string password = "s3cret-pw";
  config::DatabaseConfig config;
  config.driver = config::DbDriver::postgres;
  config.connect_timeout = 2s;

  SECTION("nothing listens on the port") {
    config.url = "postgresql://llmproxy:" + password + "@127.0.0.1:" + std::to_string(free_port()) + "/llmproxy";
    const auto started = Clock::now();
    try {
      db::postgres::open(config);
      FAIL("open() succeeded");
    } catch (const db::Unavailable& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find(password) == std::string::npos);
      CHECK(message.find("127.0.0.1") != std::string::npos);
    }
    CHECK(Clock::now() - started < 5s);
  }

  // An invalid URL is db::Error (not Unavailable: retrying cannot help) and its message never has the password.
  auto expect_invalid_url = [&](const std::string& url, const std::string& must_mention) {
    config.url = url;
    try {
      db::postgres::open(config);
      FAIL("open() succeeded");
    } catch (const db::Unavailable& e) {
      FAIL(std::string("an invalid URL is not Unavailable: ") + e.what());
    } catch (const db::Error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find(password) == std::string::npos);
      if (!must_mention.empty()) CHECK(message.find(must_mention) != std::string::npos);
    }
  };

  SECTION("key=value form with an unknown option") {
    expect_invalid_url("host=127.0.0.1 password=" + password + " no_such_option=1", "no_such_option");
  }

  SECTION("URI whose password is badly percent-encoded (libpq would echo it)") {
    expect_invalid_url("postgresql://llmproxy:" + password + "%zz@127.0.0.1:5432/llmproxy", "");
  }

  SECTION("a value libpq only checks when connecting (the port) is still an invalid URL") {
    expect_invalid_url("postgresql://llmproxy:" + password + "@127.0.0.1:notaport/llmproxy", "notaport");
  }

  SECTION("wrong database name on a live server") {
    config.url = with_database(test_database_url(), "llmproxy_no_such_db");
    CHECK_THROWS_AS(db::postgres::open(config), db::Unavailable);
  }
}

TEST_CASE("postgres migrations: the advisory lock, its timeout, and rollback of a failing file",
          "[postgres][migrations]") {
  OwnDatabase own;
  auto first = db::postgres::open(own.config());
  auto second = db::postgres::open(own.config());

  // read_applied creates nothing.
  CHECK(first->read_applied().empty());
  CHECK(pg_query_value(own.db.url, "SELECT to_regclass('schema_migrations') IS NULL") == "t");

  SECTION("a second session waits at most its lock timeout and names MIGRATION_LOCK_TIMEOUT") {
    auto holder = first->begin_session(5s);
    CHECK(pg_query_value(own.db.url, "SELECT to_regclass('schema_migrations') IS NOT NULL") == "t");
    const auto started = Clock::now();
    try {
      second->begin_session(300ms);
      FAIL("the lock was granted twice");
    } catch (const migrate::MigrationError& e) {
      CHECK(std::string(e.what()).find("MIGRATION_LOCK_TIMEOUT") != std::string::npos);
    }
    const auto waited = Clock::now() - started;
    CHECK(waited >= 250ms);
    CHECK(waited < 4s);
    holder.reset();  // releases the lock
    CHECK_NOTHROW(second->begin_session(5s));
  }

  SECTION("a failing statement rolls the whole file back, the error names file, statement and cause") {
    auto session = first->begin_session(5s);
    migrate::MigrationFile file;
    file.version = 7;
    file.name = "broken";
    file.up_sql = "CREATE TABLE pool_test_ok (x INT);\nCREATE TABLE pool_test_bad (x no_such_type);\n";
    try {
      migrate::apply(*session, file, migrate::Direction::up);
      FAIL("apply succeeded");
    } catch (const migrate::MigrationError& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find("0007_broken.up.sql") != std::string::npos);
      CHECK(message.find("CREATE TABLE pool_test_bad (x no_such_type)") != std::string::npos);
      CHECK(message.find("no_such_type\" does not exist") != std::string::npos);
    }
    CHECK(pg_query_value(own.db.url, "SELECT to_regclass('pool_test_ok') IS NULL") == "t");
    CHECK(session->applied().empty());
    // The session is still usable after the rollback.
    file.up_sql = "CREATE TABLE pool_test_ok (x INT);\n";
    file.down_sql = "DROP TABLE pool_test_ok;\n";
    CHECK(migrate::apply(*session, file, migrate::Direction::up));
    CHECK_FALSE(migrate::apply(*session, file, migrate::Direction::up));
    REQUIRE(session->applied().size() == 1);
    CHECK(session->applied()[0].version == 7);
    CHECK(session->applied()[0].checksum == migrate::checksum(file));
    CHECK(migrate::apply(*session, file, migrate::Direction::down));
    CHECK(session->applied().empty());
  }
}

}  // namespace
}  // namespace llmproxy::contract
#endif
