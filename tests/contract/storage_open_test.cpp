// storage::open / open_with_retry: boot retry with backoff, its logs, and secrets kept out of both.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "contract/database_fixture.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/storage/storage.hpp"

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using std::chrono::steady_clock;

/// Routes spdlog's default logger into a string for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::trace);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

/// The db::Unavailable message `fn` throws (fails the check otherwise).
template <class Fn>
std::string unavailable(Fn fn) {
  try {
    fn();
  } catch (const db::Unavailable& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected db::Unavailable, got: " << e.what());
    return "";
  }
  FAIL_CHECK("expected db::Unavailable, nothing was thrown");
  return "";
}

double seconds_since(steady_clock::time_point start) {
  return std::chrono::duration<double>(steady_clock::now() - start).count();
}

TEST_CASE("open_with_retry: gives up after DATABASE_STARTUP_TIMEOUT, logging every attempt", "[sqlite][storage]") {
  TempDir dir;
  const auto blocker = dir.path() / "plain-file";
  std::ofstream(blocker) << "x";
  auto config = sqlite_config(blocker / "db.sqlite");  // parent is a file: cannot be created
  config.startup_timeout = 700ms;
  LogCapture logs;
  const auto start = steady_clock::now();
  const auto message = unavailable([&] { storage::open_with_retry(config); });
  const auto elapsed = seconds_since(start);
  CHECK(elapsed >= 0.69);
  CHECK(elapsed < 5.0);
  CHECK_THAT(message, Contains("could not connect to the database at " + config.path +
                               " within DATABASE_STARTUP_TIMEOUT=700ms: "));
  // Backoff 200 ms, 400 ms, then the rest up to the deadline: attempts at ~0, 0.2, 0.6 and 0.7 s.
  const auto text = logs.text();
  INFO(text);
  CHECK_THAT(text, Contains(R"(warning {"time":)"));
  CHECK_THAT(text, Contains(R"("event":"database_unreachable","attempt":1,"database":")" + config.path + "\""));
  CHECK_THAT(text, Contains(R"("attempt":2,)"));
  CHECK_THAT(text, Contains(R"("attempt":3,)"));
  CHECK_THAT(text, Contains(R"("retry_in_ms":200})"));
  CHECK_THAT(text, Contains(R"("retry_in_ms":400})"));
}

TEST_CASE("open_with_retry: stop_requested ends the wait early", "[sqlite][storage]") {
  TempDir dir;
  const auto blocker = dir.path() / "plain-file";
  std::ofstream(blocker) << "x";
  auto config = sqlite_config(blocker / "db.sqlite");
  config.startup_timeout = 30s;
  const auto start = steady_clock::now();
  const auto message = unavailable([&] { storage::open_with_retry(config, [] { return true; }); });
  CHECK(seconds_since(start) < 2.0);
  CHECK_THAT(message, Contains("stopped while waiting for the database"));
}

TEST_CASE("open_with_retry: connects once the database becomes reachable", "[sqlite][storage]") {
  TempDir dir;
  const auto blocker = dir.path() / "later-a-directory";
  std::ofstream(blocker) << "x";
  auto config = sqlite_config(blocker / "db.sqlite");
  config.startup_timeout = 20s;
  std::thread fixer([&] {
    std::this_thread::sleep_for(300ms);
    std::filesystem::remove(blocker);
  });
  LogCapture logs;
  std::unique_ptr<db::Driver> driver;
  CHECK_NOTHROW(driver = storage::open_with_retry(config));
  fixer.join();
  REQUIRE(driver != nullptr);
  CHECK(driver->health().up);
  INFO(logs.text());
  CHECK_THAT(logs.text(), Contains(R"("event":"database_unreachable","attempt":1,)"));
  CHECK_THAT(logs.text(), Contains(R"("event":"database_connected",)"));
}

#ifdef LLMPROXY_WITH_POSTGRES
TEST_CASE("open_with_retry: PostgreSQL unreachable, the password is in neither the error nor the logs",
          "[storage]") {
  // Port 1 on loopback: nothing listens there, so every attempt is refused at once (no server needed).
  const std::string password = "Sup3rS3cretPw";
  const auto url = GENERATE_COPY(std::string("postgresql://alice:") + password + "@127.0.0.1:1/llmproxy",
                                 std::string("host=127.0.0.1 port=1 user=alice password=") + password +
                                     " dbname=llmproxy");
  INFO("url form: " << url.substr(0, 10));
  config::DatabaseConfig config;
  config.driver = config::DbDriver::postgres;
  config.url = url;
  config.connect_timeout = 1s;
  config.startup_timeout = 500ms;
  LogCapture logs;
  const auto message = unavailable([&] { storage::open_with_retry(config); });
  CHECK_THAT(message, Contains("could not connect to the database at "));
  CHECK_THAT(message, Contains("127.0.0.1"));
  CHECK_THAT(message, Contains("within DATABASE_STARTUP_TIMEOUT=500ms"));
  CHECK_THAT(message, !Contains(password));
  CHECK_THAT(logs.text(), Contains(R"("event":"database_unreachable","attempt":2,)"));
  CHECK_THAT(logs.text(), !Contains(password));
}

TEST_CASE("open: an invalid PostgreSQL URL fails at once, without retrying", "[storage]") {
  config::DatabaseConfig config;
  config.driver = config::DbDriver::postgres;
  // One rejected by libpq's parser, one whose port only fails when libpq converts it: both are typos in
  // DATABASE_URL that no amount of waiting fixes.
  config.url = GENERATE(as<std::string>(), "postgresql://alice:pw@127.0.0.1:5432/llmproxy?no_such_option=1",
                        "postgresql://alice:pw@127.0.0.1:notaport/llmproxy");
  INFO("url: " << config.url);
  config.startup_timeout = 3s;
  const auto start = steady_clock::now();
  try {
    storage::open_with_retry(config);
    FAIL("expected db::Error");
  } catch (const db::Unavailable& e) {
    FAIL("an invalid URL is not worth retrying, got db::Unavailable: " << e.what());
  } catch (const db::Error& e) {
    CHECK_THAT(std::string(e.what()), !Contains(":pw@"));
  }
  CHECK(seconds_since(start) < 2.0);
}
#else
TEST_CASE("open: DB_DRIVER=postgres in a build without PostgreSQL says so", "[storage]") {
  config::DatabaseConfig config;
  config.driver = config::DbDriver::postgres;
  config.url = "postgresql://127.0.0.1/x";
  CHECK_THROWS_WITH(storage::open(config), Contains("built without PostgreSQL"));
}
#endif

}  // namespace
}  // namespace llmproxy::contract
