// The /v1 pipeline end to end (SPEC §5, §6): key swap, header rules, pass-through, streaming, every error row,
// quotas, revocation, usage accounting, encryption at rest. Each case runs on SQLite and on PostgreSQL.
#include <atomic>
#include <thread>

#include "integration/proxy_fixture.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

void forwards_with_the_project_key(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto token = f.project_token();
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi \u00fc"}]})";
  auto r = f.chat(token, body,
                  {{"X-Forwarded-For", "10.1.2.3"}, {"X-Real-IP", "10.1.2.3"}, {"CF-Connecting-IP", "10.1.2.3"},
                   {"OpenAI-Organization", "org-123"}, {"X-Request-ID", "trace-abc"}, {"User-Agent", "it/1.0"},
                   {"Accept-Encoding", "gzip, deflate, br"}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["choices"][0]["message"]["content"] == "Hello from mock");
  CHECK(r.header("X-Upstream-Header") == "yes");
  CHECK(r.header("X-Request-ID") == "trace-abc");
  CHECK(r.header("X-Proxy") == "llm-proxy");

  auto requests = f.mock.requests();
  REQUIRE(requests.size() == 1);
  const auto& seen = requests[0];
  CHECK(seen["method"] == "POST");
  CHECK(seen["target"] == "/v1/chat/completions");
  CHECK(seen["body"] == body);
  CHECK(test::MockUpstream::header(seen, "Authorization") == "Bearer sk-upstream-project-key");
  CHECK(test::MockUpstream::header(seen, "Host") == "127.0.0.1:" + std::to_string(f.mock.port()));
  CHECK(test::MockUpstream::header(seen, "OpenAI-Organization") == "org-123");
  CHECK(test::MockUpstream::header(seen, "User-Agent") == "it/1.0");
  CHECK(test::MockUpstream::header(seen, "X-Request-ID") == "trace-abc");
  // Accept-Encoding is dropped too: the provider answers uncompressed, so the usage in its answer can be read.
  for (const char* h : {"X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP", "Accept-Encoding"}) {
    CHECK_FALSE(test::MockUpstream::header(seen, h).has_value());
  }
  CHECK_THAT(seen.dump(), !Contains(token));

  SECTION("upstream errors pass through unchanged") {
    auto e = f.chat(token, R"({"model":"gpt-4o"})", {{"X-Mock-Status", "429"}});
    CHECK(e.status == 429);
    CHECK(nlohmann::json::parse(e.body)["error"]["message"] == "mock error");
    auto e500 = f.chat(token, R"({"model":"gpt-4o"})", {{"X-Mock-Status", "500"}});
    CHECK(e500.status == 500);
  }
  SECTION("GET endpoints and large bodies are relayed byte for byte") {
    auto big = f.chat(token, R"({"model":"gpt-4o"})", {{"X-Mock-Body-Bytes", "2000000"}});
    CHECK(big.status == 200);
    CHECK(big.body.size() >= 2000000);
    CHECK(nlohmann::json::parse(big.body)["object"] == "chat.completion");
    auto models = f.proxy->request("GET", "/v1/models", "", {{"Authorization", "Bearer " + token}});
    CHECK(models.status == 200);
  }
}
BOTH_DRIVERS("proxy: the upstream sees the project key and no client identity, the client sees the upstream answer",
             "[proxy]", forwards_with_the_project_key)

void streams_chunk_by_chunk(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto token = f.project_token();
  const auto sent = std::chrono::steady_clock::now();
  test::StreamingResponse s(f.proxy->port(), "POST", "/v1/chat/completions", R"({"model":"gpt-4o","stream":true})",
                            {{"Authorization", "Bearer " + token},
                             {"Content-Type", "application/json"},
                             {"X-Mock-Chunks", "5"},
                             {"X-Mock-Delay-Ms", "100"}});
  REQUIRE(s.status() == 200);
  CHECK_THAT(s.header("Content-Type"), StartsWith("text/event-stream"));
  CHECK(s.header("X-Accel-Buffering") == "no");
  CHECK(s.header("Cache-Control") == "no-cache");
  auto first = s.next_chunk(5s);
  REQUIRE(first);
  const auto first_at = s.last_chunk_time();
  std::string all = *first + s.read_rest(10s);
  CHECK(s.finished());
  const auto last_at = s.last_chunk_time();
  // The first event arrived while the upstream was still producing (5 events, 100 ms apart).
  CHECK(last_at - first_at >= 300ms);
  CHECK(first_at - sent < 2s);
  std::string expected;
  for (int i = 0; i < 5; ++i) {
    expected += "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                "\"delta\":{\"content\":\"tok" + std::to_string(i) + "\"}}]}\n\n";
  }
  expected += "data: [DONE]\n\n";
  CHECK(all == expected);
}
BOTH_DRIVERS("proxy: SSE is relayed event by event as it arrives", "[proxy][streaming]", streams_chunk_by_chunk)

void client_disconnect_cancels_upstream(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  auto token = f.project_token();
  {
    test::StreamingResponse s(f.proxy->port(), "POST", "/v1/chat/completions", R"({"stream":true})",
                              {{"Authorization", "Bearer " + token},
                               {"X-Mock-Chunks", "100"},
                               {"X-Mock-Delay-Ms", "100"}});
    REQUIRE(s.status() == 200);
    REQUIRE(s.next_chunk(5s));
    s.close();
  }
  const bool aborted = f.mock.wait_for_stats(
      [](const nlohmann::json& st) { return st["streams_aborted"].get<int>() >= 1; }, 3s);
  INFO(f.mock.stats().dump());
  CHECK(aborted);
  CHECK(f.mock.stats()["streams_completed"] == 0);
  // The proxy is still fine.
  CHECK(f.chat(token).status == 200);
}
BOTH_DRIVERS("proxy: a client leaving mid-stream closes the upstream connection", "[proxy][streaming]",
             client_disconnect_cancels_upstream)

void every_error_row(TestDatabase::Kind kind) {
  ProxyFixture f(
      kind,
      [](Environment& env) {
        env["MAX_REQUEST_SIZE"] = "4096";
        env["CIRCUIT_BREAKER_THRESHOLD"] = "2";
        env["CIRCUIT_BREAKER_COOLDOWN"] = "60s";
        env["REQUEST_TIMEOUT"] = "1s";
      },
      "    param_whitelist:\n      model: [gpt-4o, \"gpt-4o-*\"]\n"
      "    allowed_origins: [https://app.example.com]\n");
  auto project = f.create_project("errors-" + random_suffix());
  auto token = f.create_token(project).at("token").get<std::string>();
  auto expect = [&](const test::HttpResponse& r, int status, const std::string& code) {
    INFO(r.body);
    CHECK(r.status == status);
    CHECK(api_error_code(r) == code);
    CHECK(api_error_type(r) == (status == 429 ? "rate_limit_error"
                                : status >= 500 ? "server_error"
                                                : "invalid_request_error"));
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(!r.header("X-Request-ID").empty());
  };

  SECTION("preflight") {
    auto r = f.proxy->request("OPTIONS", "/v1/chat/completions", "",
                              {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(r.status == 204);
    CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK_THAT(r.header("Vary"), Contains("Origin"));
    CHECK_THAT(r.header("Access-Control-Allow-Methods"), Contains("POST"));
    auto other = f.proxy->request("OPTIONS", "/v1/chat/completions", "", {{"Origin", "https://evil.example"}});
    CHECK(other.status == 204);
    CHECK_FALSE(other.has_header("Access-Control-Allow-Origin"));
  }
  SECTION("request checks") {
    expect(f.proxy->request("DELETE", "/v1/chat/completions", "", {{"Authorization", "Bearer " + token}}), 405,
           "method_not_allowed");
    expect(f.proxy->request("POST", "/v1/fine_tuning/jobs", "{}", {{"Authorization", "Bearer " + token}}), 404,
           "endpoint_not_found");
    expect(f.chat(token, R"({"model":"gpt-5"})"), 400, "param_not_allowed");
    expect(f.chat(token, R"({"model":42})"), 400, "param_not_allowed");
    CHECK(f.chat(token, R"({"model":"gpt-4o-mini"})").status == 200);
    expect(f.chat(token, R"({"model":"gpt-4o"})", {{"Origin", "https://evil.example"}}), 403, "origin_not_allowed");
    auto cors = f.chat(token, R"({"model":"gpt-4o"})", {{"Origin", "https://app.example.com"}});
    CHECK(cors.status == 200);
    CHECK(cors.header("Access-Control-Allow-Origin") == "https://app.example.com");
    expect(f.proxy->request("POST", "/v1/chat/completions", "{}"), 401, "invalid_token");
    expect(f.proxy->request("POST", "/v1/chat/completions", "{}", {{"Authorization", "Basic abc"}}), 401,
           "invalid_token");
    expect(f.chat("sk-not-a-real-token"), 401, "invalid_token");
    expect(f.chat("sk-AAAAAAAAAAAAAAAAAAAAAA"), 401, "token_not_found");
    expect(f.chat(token, std::string(5000, ' ')), 413, "request_too_large");
    auto elsewhere = f.proxy->get("/elsewhere");  // outside /v1: the management shape
    CHECK(elsewhere.status == 404);
    CHECK(error_code(elsewhere) == "not_found");
  }
  SECTION("token and project state") {
    auto revoked = f.create_token(project);
    REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + revoked["id"].get<std::string>()).status == 204);
    expect(f.chat(revoked["token"]), 401, "token_inactive");

    auto expired = f.create_token(project);
    f.db.query("UPDATE tokens SET expires_at = " +
               std::string(kind == TestDatabase::Kind::sqlite ? "'2020-01-01T00:00:00.000000Z'"
                                                              : "'2020-01-01T00:00:00Z'") +
               " WHERE id = '" + expired["id"].get<std::string>() + "'");
    expect(f.chat(expired["token"]), 401, "token_expired");

    auto limited = f.create_token(project, 1);
    CHECK(f.chat(limited["token"]).status == 200);
    expect(f.chat(limited["token"]), 429, "rate_limit_exceeded");

    auto other_project = f.create_project("inactive-" + random_suffix());
    auto other_token = f.create_token(other_project)["token"].get<std::string>();
    REQUIRE(f.proxy->manage("PATCH", "/manage/projects/" + other_project, R"({"is_active":false})").status == 200);
    expect(f.chat(other_token), 403, "project_inactive");
  }
  SECTION("upstream failures") {
    expect(f.chat(token, R"({"model":"gpt-4o"})", {{"X-Mock-Stall-Ms", "3000"}}), 504, "upstream_timeout");
    // 504 above counted once; one 503 more reaches the threshold of 2 and opens the circuit.
    CHECK(f.chat(token, R"({"model":"gpt-4o"})", {{"X-Mock-Status", "503"}}).status == 503);
    auto before = f.mock.requests().size();
    expect(f.chat(token), 503, "upstream_unavailable");
    CHECK(f.mock.requests().size() == before);
  }
}
BOTH_DRIVERS("proxy: every error row of the pipeline has its status and code", "[proxy][errors]", every_error_row)

void upstream_unreachable(TestDatabase::Kind kind) {
  const int closed_port = test::free_port();
  ProxyFixture f(kind, {}, "", "http://127.0.0.1:" + std::to_string(closed_port));
  auto token = f.project_token();
  auto r = f.chat(token);
  INFO(r.body);
  CHECK(r.status == 502);
  CHECK(api_error_code(r) == "upstream_error");
}
BOTH_DRIVERS("proxy: an unreachable upstream is 502 upstream_error", "[proxy][errors]", upstream_unreachable)

void quota_is_exact_under_concurrency(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["IO_THREADS"] = "2"; });
  auto project = f.create_project("quota-" + random_suffix());
  auto created = f.create_token(project, 10);
  const std::string token = created["token"];
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto r = f.chat(token);
        if (r.status == 200) ++ok;
        else if (r.status == 429 && api_error_code(r) == "rate_limit_exceeded") ++limited;
        else ++other;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 10);
  CHECK(limited == 20);
  CHECK(other == 0);
  CHECK(f.db.query("SELECT request_count FROM tokens WHERE id = '" + created["id"].get<std::string>() + "'") == "10");
  CHECK(f.mock.requests().size() == 10);
}
BOTH_DRIVERS("proxy: a quota of N lets exactly N concurrent requests through", "[proxy][quota]",
             quota_is_exact_under_concurrency)

void revoke_is_immediate(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["TOKEN_CACHE_TTL"] = "1h"; });
  auto project = f.create_project("revoke-" + random_suffix());
  auto created = f.create_token(project);
  REQUIRE(f.chat(created["token"]).status == 200);  // now cached
  REQUIRE(f.proxy->manage("DELETE", "/manage/tokens/" + created["id"].get<std::string>()).status == 204);
  auto r = f.chat(created["token"]);
  CHECK(r.status == 401);
  CHECK(api_error_code(r) == "token_inactive");

  auto second = f.create_token(project);
  REQUIRE(f.chat(second["token"]).status == 200);
  auto revoke_all = f.proxy->manage("POST", "/manage/projects/" + project + "/tokens/revoke");
  REQUIRE(revoke_all.status == 200);
  CHECK(api_error_code(f.chat(second["token"])) == "token_inactive");
}
BOTH_DRIVERS("proxy: revoking through the API takes effect on the next request", "[proxy][tokens]",
             revoke_is_immediate)

void usage_is_counted(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["USAGE_FLUSH_INTERVAL"] = "200ms"; });
  auto project = f.create_project("usage-" + random_suffix());
  auto created = f.create_token(project);
  const std::string id = created["id"];
  for (int i = 0; i < 5; ++i) REQUIRE(f.chat(created["token"]).status == 200);
  const std::string sql = "SELECT request_count FROM tokens WHERE id = '" + id + "'";
  std::string count;
  for (int i = 0; i < 50 && count != "5"; ++i) {
    std::this_thread::sleep_for(100ms);
    count = f.db.query(sql);
  }
  CHECK(count == "5");
  CHECK(f.db.query("SELECT last_used_at IS NOT NULL FROM tokens WHERE id = '" + id + "'") ==
        (kind == TestDatabase::Kind::sqlite ? "1" : "t"));
}
BOTH_DRIVERS("proxy: unlimited tokens' usage reaches the database after the flush interval", "[proxy][usage]",
             usage_is_counted)

void usage_flushed_at_shutdown(TestDatabase::Kind kind) {
  ProxyFixture f(kind, [](Environment& env) { env["USAGE_FLUSH_INTERVAL"] = "1h"; });
  auto project = f.create_project("shutdown-" + random_suffix());
  auto created = f.create_token(project);
  for (int i = 0; i < 7; ++i) REQUIRE(f.chat(created["token"]).status == 200);
  auto code = f.proxy->terminate(20s);
  INFO(f.proxy->process().output());
  REQUIRE(code);
  CHECK(*code == 0);
  const std::string id = created["id"];
  CHECK(f.db.query("SELECT request_count FROM tokens WHERE id = '" + id + "'") == "7");
  // The LLM tokens of those answers (5 + 3 each) and their usage_daily row go out with the same last flush.
  CHECK(f.db.query("SELECT prompt_tokens || '/' || completion_tokens FROM tokens WHERE id = '" + id + "'") == "35/21");
  CHECK(f.db.query("SELECT requests || '/' || prompt_tokens || '/' || completion_tokens FROM usage_daily "
                   "WHERE token_id = '" + id + "'") == "7/35/21");
}
BOTH_DRIVERS("proxy: SIGTERM persists every counted request", "[proxy][usage]", usage_flushed_at_shutdown)

void keys_encrypted_tokens_hashed(TestDatabase::Kind kind) {
  // base64 of 32 bytes 0x01..0x20
  ProxyFixture f(kind, [](Environment& env) { env["ENCRYPTION_KEY"] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="; });
  auto project = f.create_project("enc-" + random_suffix(), "sk-upstream-secret-key-123");
  auto created = f.create_token(project);
  const std::string token = created["token"];
  CHECK_THAT(f.db.query("SELECT api_key FROM projects WHERE id = '" + project + "'"), StartsWith("enc:v1:"));
  REQUIRE(f.chat(token).status == 200);
  CHECK(test::MockUpstream::header(f.mock.requests()[0], "Authorization") == "Bearer sk-upstream-secret-key-123");
  const std::string dump = f.db.query("SELECT * FROM projects") + f.db.query("SELECT * FROM tokens") +
                           f.db.query("SELECT * FROM audit_events");
  CHECK_THAT(dump, !Contains("sk-upstream-secret-key-123"));
  CHECK_THAT(dump, !Contains(token));
  CHECK_THAT(f.proxy->process().output(), !Contains(token));
  CHECK_THAT(f.proxy->process().output(), !Contains("sk-upstream-secret-key-123"));
}
BOTH_DRIVERS("proxy: API keys are encrypted at rest and tokens stored only hashed", "[proxy][security]",
             keys_encrypted_tokens_hashed)

void openai_style_client(TestDatabase::Kind kind) {
  // The documented OpenAI curl usage, unchanged except for the base URL and the key.
  ProxyFixture f(kind);
  auto token = f.project_token();
  const std::string base = "http://127.0.0.1:" + std::to_string(f.proxy->port()) + "/v1";
  auto [code, out] = test::run_command({"curl", "-sS", "--fail-with-body", base + "/chat/completions", "-H",
                                        "Content-Type: application/json", "-H", "Authorization: Bearer " + token,
                                        "-d", R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}]})"});
  INFO(out);
  REQUIRE(code == 0);
  CHECK(nlohmann::json::parse(out)["choices"][0]["message"]["content"] == "Hello from mock");
  auto [scode, sout] = test::run_command({"curl", "-sS", "-N", "--fail-with-body", base + "/chat/completions", "-H",
                                          "Content-Type: application/json", "-H", "Authorization: Bearer " + token,
                                          "-d", R"({"model":"gpt-4o","stream":true,"messages":[]})"});
  INFO(sout);
  REQUIRE(scode == 0);
  CHECK_THAT(sout, Contains("\"delta\":{\"content\":\"tok0\"}"));
  CHECK_THAT(sout, Contains("data: [DONE]\n\n"));
}
BOTH_DRIVERS("proxy: an OpenAI-style client works by changing only base URL and key", "[proxy][compat]",
             openai_style_client)

}  // namespace

TEST_CASE("proxy: required Origin header is enforced (400 origin_required)", "[proxy][errors]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, {}, "    required_headers: [origin]\n");
  auto token = f.project_token();
  auto r = f.chat(token);
  CHECK(r.status == 400);
  CHECK(api_error_code(r) == "origin_required");
  CHECK(f.chat(token, R"({"model":"gpt-4o"})", {{"Origin", "https://any.example"}}).status == 200);
}

TEST_CASE("proxy: SIGTERM lets an in-flight stream finish, then exits 0", "[proxy][streaming][shutdown]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  auto token = f.project_token();
  test::StreamingResponse s(f.proxy->port(), "POST", "/v1/chat/completions", R"({"stream":true})",
                            {{"Authorization", "Bearer " + token}, {"X-Mock-Chunks", "8"}, {"X-Mock-Delay-Ms", "100"}});
  REQUIRE(s.status() == 200);
  REQUIRE(s.next_chunk(5s));
  f.proxy->process().signal(SIGTERM);
  const std::string rest = s.read_rest(10s);
  CHECK(s.finished());
  CHECK_THAT(rest, Contains("\"content\":\"tok7\""));
  CHECK_THAT(rest, Contains("data: [DONE]\n\n"));
  auto code = f.proxy->process().wait_exit(10s);
  INFO(f.proxy->process().output());
  REQUIRE(code);
  CHECK(*code == 0);
}
