// The HTTP front end driven through the real binary (SPEC §5.4 inbound): routing, keep-alive, limits, timeouts,
// and a clean stop on SIGTERM. The command line and boot refusals are in app_cli_test.cpp.
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/binary_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

bool looks_like_uuid(const std::string& s) {
  static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, kUuid);
}

}  // namespace

TEST_CASE("GET /live answers 200 with a request id", "[server]") {
  TempDir dir;
  TestDatabase db(TestDatabase::Kind::sqlite);
  auto env = base_env(dir);
  db.apply(env);
  Proxy proxy(env);

  auto r = proxy.get("/live");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"status", "alive"}});
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(looks_like_uuid(r.header("X-Request-ID")));
  CHECK(r.header("X-Proxy") == "llm-proxy");

  SECTION("a valid client request id is echoed, an invalid one replaced") {
    auto echoed = proxy.get("/live", {{"X-Request-ID", "client-req_1.2"}});
    CHECK(echoed.header("X-Request-ID") == "client-req_1.2");
    auto replaced = proxy.get("/live", {{"X-Request-ID", "bad id with spaces"}});
    CHECK(looks_like_uuid(replaced.header("X-Request-ID")));
    auto too_long = proxy.get("/live", {{"X-Request-ID", std::string(129, 'a')}});
    CHECK(looks_like_uuid(too_long.header("X-Request-ID")));
  }

  SECTION("the access log has one JSON line per request without secrets") {
    proxy.get("/live", {{"X-Request-ID", "access-log-check"}});
    auto line = proxy.process().wait_for_line("access-log-check", 5s);
    REQUIRE(line);
    auto j = nlohmann::json::parse(*line);
    CHECK(j["event"] == "access");
    CHECK(j["method"] == "GET");
    CHECK(j["path"] == "/live");
    CHECK(j["status"] == 200);
    CHECK(j.contains("duration_ms"));
    CHECK_THAT(proxy.process().output(), !Contains(kManagementToken));
  }
}

TEST_CASE("unknown paths get a JSON 404", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy proxy(env);
  auto r = proxy.get("/nope?x=1");
  CHECK(r.status == 404);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"error", "not found"}, {"code", "not_found"}});
  CHECK(!r.header("X-Request-ID").empty());
}

TEST_CASE("keep-alive carries several requests on one connection", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy proxy(env);
  test::HttpConnection conn("127.0.0.1", proxy.port());
  for (int i = 0; i < 5; ++i) {
    auto r = conn.request("GET", i % 2 ? "/live" : "/missing");
    CHECK(r.status == (i % 2 ? 200 : 404));
    CHECK(conn.is_open());
  }
}

TEST_CASE("request size limits: 413 for bodies, 431 for headers, 400 for garbage", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  env["MAX_REQUEST_SIZE"] = "1024";
  Proxy proxy(env);

  SECTION("declared Content-Length above the limit is refused before the body is sent") {
    bool closed = false;
    auto out = test::raw_exchange(proxy.port(),
                                  "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 5s,
                                  &closed);
    CHECK_THAT(out, Contains("HTTP/1.1 413"));
    CHECK_THAT(out, Contains("\"code\":\"request_too_large\""));
    CHECK_THAT(out, Contains("X-Request-ID"));
    CHECK(closed);
  }
  SECTION("a chunked body growing past the limit is cut off with 413") {
    std::string chunk(800, 'a');
    std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    req += "320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n";
    auto out = test::raw_exchange(proxy.port(), req, 5s);
    CHECK_THAT(out, Contains("HTTP/1.1 413"));
  }
  SECTION("a body within the limit is accepted") {
    auto r = proxy.request("POST", "/unknown", std::string(1000, 'x'));
    CHECK(r.status == 404);
  }
  SECTION("oversized headers get 431") {
    auto r = proxy.get("/live", {{"X-Big", std::string(20000, 'b')}});
    CHECK(r.status == 431);
  }
  SECTION("malformed HTTP gets 400 and the server keeps serving") {
    auto out = test::raw_exchange(proxy.port(), "THIS IS NOT HTTP\r\n\r\n", 5s);
    CHECK_THAT(out, Contains("HTTP/1.1 400"));
    CHECK(proxy.get("/live").status == 200);
  }
}

TEST_CASE("slow clients are dropped after HEADER_READ_TIMEOUT", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  env["HEADER_READ_TIMEOUT"] = "1s";
  Proxy proxy(env);
  bool closed = false;
  const auto start = std::chrono::steady_clock::now();
  test::raw_exchange(proxy.port(), "GET /live HTTP/1.1\r\nHost: x\r\n", 10s, &closed);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(closed);
  CHECK(waited >= 900ms);
  CHECK(waited < 5s);
  CHECK(proxy.get("/live").status == 200);
}

TEST_CASE("a keep-alive connection busy for longer than HEADER_READ_TIMEOUT stays open, and is closed once idle that long",
          "[server]") {
  // The read deadline is armed lazily (one timer wait per period, not per request): a wait that fires while the
  // connection is busy must wait again for the current deadline, not close it.
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  env["HEADER_READ_TIMEOUT"] = "1s";
  Proxy proxy(env);
  test::HttpConnection conn("127.0.0.1", proxy.port());
  const auto start = std::chrono::steady_clock::now();
  int answered = 0;
  std::chrono::steady_clock::time_point idle_since;
  while (std::chrono::steady_clock::now() - start < 2500ms) {
    std::this_thread::sleep_for(150ms);
    REQUIRE(conn.request("GET", "/live").status == 200);
    idle_since = std::chrono::steady_clock::now();  // the server's read deadline counts from its answer
    ++answered;
  }
  CHECK(answered >= 10);
  CHECK(conn.is_open());
  while (conn.is_open() && std::chrono::steady_clock::now() - idle_since < 5s) std::this_thread::sleep_for(20ms);
  const auto idle = std::chrono::steady_clock::now() - idle_since;
  CHECK_FALSE(conn.is_open());
  CHECK(idle >= 900ms);
  CHECK(idle < 4s);
}

TEST_CASE("SIGTERM stops the server with exit code 0", "[server]") {
  TempDir dir;
  auto env = base_env(dir);
  env["DATABASE_PATH"] = dir.file("db.sqlite");
  Proxy proxy(env);
  // An idle keep-alive connection must not hold the shutdown up.
  test::HttpConnection idle("127.0.0.1", proxy.port());
  CHECK(idle.request("GET", "/live").status == 200);
  auto code = proxy.terminate(10s);
  INFO(proxy.process().output());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(proxy.process().wait_for_line("\"event\":\"shutdown_complete\"", 1s));
}
