// LLM token usage, budgets, rate limits and the event log through the real binary (SPEC §14): usage read from
// plain and streamed answers reaches the token, the project and usage_daily; a budget stops a token; a limit of
// 5 a minute refuses the 6th with Retry-After, also across two instances sharing Redis; one event line per request.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include "integration/proxy_fixture.hpp"
#include "support/redis_server.hpp"

namespace llmproxy::itest {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

constexpr const char* kPlainBody = R"({"model":"gpt-4o","messages":[]})";
constexpr const char* kStreamWithUsage =
    R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]})";
constexpr const char* kStreamWithoutUsage = R"({"model":"gpt-4o-mini","stream":true,"messages":[]})";

/// Polls `sql` until it returns `want` (usage is written by the periodic flush), for at most 5 s.
std::string flushed(const ProxyFixture& f, const std::string& sql, const std::string& want) {
  std::string got;
  for (int i = 0; i < 50 && got != want; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    got = f.db.query(sql);
  }
  return got;
}

nlohmann::json usage_json(ProxyFixture& f, const std::string& target) {
  auto r = f.proxy->manage("GET", target);
  INFO(target << " -> " << r.body);
  REQUIRE(r.status == 200);
  return nlohmann::json::parse(r.body);
}

nlohmann::json create_limited_token(ProxyFixture& f, const std::string& project, const nlohmann::json& limits) {
  nlohmann::json body{{"project_id", project}, {"duration_minutes", 60}};
  body.update(limits);
  auto r = f.proxy->manage("POST", "/manage/tokens", body.dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  return nlohmann::json::parse(r.body);
}

void usage_reaches_token_project_and_daily_rows(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  const std::string project = f.create_project("usage-" + random_suffix());
  const auto created = f.create_token(project);
  const std::string token = created["token"];
  const std::string id = created["id"];

  REQUIRE(f.chat(token, kPlainBody).status == 200);  // usage 5 + 3, model gpt-4o
  auto streamed = f.chat(token, kStreamWithUsage, {{"X-Mock-Chunks", "4"}});
  REQUIRE(streamed.status == 200);  // usage 7 + 4 in the last chunk, model gpt-4o-mini
  CHECK_THAT(streamed.body, Contains(R"("usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11})"));
  REQUIRE(f.chat(token, kStreamWithoutUsage, {{"X-Mock-Chunks", "2"}}).status == 200);  // no usage, no model

  const std::string where = " FROM tokens WHERE id = '" + id + "'";
  CHECK(flushed(f, "SELECT prompt_tokens || '/' || completion_tokens" + where, "12/7") == "12/7");
  // The third answer carries no usage, so reaching 12/7 does not mean its request was flushed too: it is
  // recorded once its answer is out, which may be after the flush that wrote the second one's tokens.
  CHECK(flushed(f, "SELECT request_count" + where, "3") == "3");
  CHECK(flushed(f,
                "SELECT model || ':' || requests || '/' || prompt_tokens || '/' || completion_tokens || '/' || "
                "cache_hits FROM usage_daily WHERE token_id = '" + id + "' ORDER BY model",
                ":1/0/0/0\ngpt-4o:1/5/3/0\ngpt-4o-mini:1/7/4/0") == ":1/0/0/0\ngpt-4o:1/5/3/0\ngpt-4o-mini:1/7/4/0");

  auto shown = usage_json(f, "/manage/tokens/" + id);
  CHECK(shown["prompt_tokens"] == 12);
  CHECK(shown["completion_tokens"] == 7);
  CHECK(shown["total_tokens"] == 19);
  CHECK(shown["max_tokens"].is_null());
  auto totals = usage_json(f, "/manage/projects/" + project)["usage"];
  CHECK(totals == nlohmann::json{{"requests", 3}, {"prompt_tokens", 12}, {"completion_tokens", 7},
                                 {"total_tokens", 19}, {"cache_hits", 0}});

  auto by_model = usage_json(f, "/manage/usage?group_by=model&project_id=" + project);
  REQUIRE(by_model["series"].size() == 3);
  CHECK(by_model["series"][1] == nlohmann::json{{"model", "gpt-4o"}, {"requests", 1}, {"prompt_tokens", 5},
                                                {"completion_tokens", 3}, {"total_tokens", 8}, {"cache_hits", 0}});
  CHECK(by_model["totals"]["total_tokens"] == 19);
  CHECK(f.proxy->metric(R"(llm_proxy_llm_tokens_total{kind="prompt",model="gpt-4o-mini"})") == 7);
  CHECK(f.proxy->metric(R"(llm_proxy_llm_tokens_total{kind="completion",model="gpt-4o"})") == 3);
  auto by_day = usage_json(f, "/manage/usage?token_id=" + id);
  REQUIRE(by_day["series"].size() == 30);  // the last 30 days, quiet ones as zeros
  CHECK(by_day["series"][29]["day"] == by_day["to"]);
  CHECK(by_day["series"][29]["requests"] == 3);
  CHECK(by_day["series"][0]["requests"] == 0);
  CHECK(usage_json(f, "/manage/usage?group_by=token&model=gpt-4o-mini")["series"] ==
        nlohmann::json::array({{{"token_id", id}, {"requests", 1}, {"prompt_tokens", 7}, {"completion_tokens", 4},
                                {"total_tokens", 11}, {"cache_hits", 0}}}));

  // Bad queries are refused and say why.
  for (const char* bad : {"/manage/usage?group_by=week", "/manage/usage?from=2026-13-01",
                          "/manage/usage?from=2026-12-02&to=2026-12-01", "/manage/usage?from=2020-01-01&to=2026-01-01"}) {
    auto r = f.proxy->manage("GET", bad);
    INFO(bad << " -> " << r.body);
    CHECK(r.status == 400);
  }
}
BOTH_DRIVERS("usage: LLM tokens of plain and streamed answers reach the token, the project and usage_daily",
             "[proxy][usage]", usage_reaches_token_project_and_daily_rows)

void budget_stops_a_token(TestDatabase::Kind kind) {
  ProxyFixture f(kind);
  const std::string project = f.create_project("budget-" + random_suffix());
  const auto created = create_limited_token(f, project, {{"max_tokens", 10}});
  CHECK(created["max_tokens"] == 10);
  const std::string token = created["token"];
  // 8 LLM tokens an answer: 0 and 8 used are under 10, 16 is over it.
  CHECK(f.chat(token).status == 200);
  CHECK(f.chat(token).status == 200);
  auto refused = f.chat(token);
  CHECK(refused.status == 429);
  CHECK(api_error_code(refused) == "token_budget_exceeded");
  CHECK(f.mock.requests().size() == 2);
  // A larger budget lets it through again.
  const std::string id = created["id"];
  auto raised = f.proxy->manage("PATCH", "/manage/tokens/" + id, R"({"max_tokens":100})");
  INFO(raised.body);
  REQUIRE(raised.status == 200);
  CHECK(f.chat(token).status == 200);
  auto bad = f.proxy->manage("PATCH", "/manage/tokens/" + id, R"({"max_tokens":-1})");
  CHECK(bad.status == 400);
  CHECK(usage_json(f, "/manage/tokens/" + id)["max_tokens"] == 100);
}
BOTH_DRIVERS("budget: a token at its max_tokens gets 429 token_budget_exceeded", "[proxy][usage]",
             budget_stops_a_token)

TEST_CASE("budget: requests in flight when it runs out overshoot it by at most their own usage", "[proxy][usage]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string project = f.create_project("overshoot-" + random_suffix());
  const auto created = create_limited_token(f, project, {{"max_tokens", 10}});
  const std::string token = created["token"];
  // Four slow requests admitted together, while the token has used nothing: each uses 8 LLM tokens.
  std::vector<std::thread> clients;
  std::vector<int> statuses(4, 0);
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] { statuses[i] = f.chat(token, kPlainBody, {{"X-Mock-Stall-Ms", "300"}}).status; });
  }
  for (auto& c : clients) c.join();
  CHECK(statuses == std::vector<int>{200, 200, 200, 200});
  // The overshoot is exactly what was in flight (4 x 8 = 32 against a budget of 10), and no more gets through.
  CHECK(api_error_code(f.chat(token)) == "token_budget_exceeded");
  CHECK(f.mock.requests().size() == 4);
  CHECK(flushed(f, "SELECT prompt_tokens + completion_tokens FROM tokens WHERE id = '" +
                       created["id"].get<std::string>() + "'", "32") == "32");
}

TEST_CASE("usage: a request cut off by the end of the shutdown grace is recorded in the final flush",
          "[proxy][usage][shutdown]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, [](Environment& env) {
    env["SHUTDOWN_TIMEOUT"] = "1s";
    env["USAGE_FLUSH_INTERVAL"] = "1h";
  });
  const std::string project = f.create_project("grace-" + random_suffix());
  const auto created = f.create_token(project);
  const std::string token = created["token"];
  // The upstream holds the answer for 20 s: far past the grace.
  std::atomic<bool> answered{false};
  std::thread client([&] {
    try {
      f.chat(token, kPlainBody, {{"X-Mock-Stall-Ms", "20000"}});
      answered = true;
    } catch (const test::HttpError&) {
      // The connection is closed when the grace ends: what the client sees of a forced shutdown.
    }
  });
  for (int i = 0; i < 50 && f.mock.requests().empty(); ++i) std::this_thread::sleep_for(100ms);
  REQUIRE(f.mock.requests().size() == 1);
  const auto code = f.proxy->terminate(15s);
  client.join();
  INFO(f.proxy->process().output());
  CHECK_FALSE(answered);
  REQUIRE(code);
  CHECK(*code == 0);
  const std::string id = created["id"];
  CHECK(f.db.query("SELECT request_count FROM tokens WHERE id = '" + id + "'") == "1");
  CHECK(f.db.query("SELECT requests FROM usage_daily WHERE token_id = '" + id + "'") == "1");
}

/// The Retry-After of a 429: whole seconds, at least 1 and at most two minutes.
int retry_after(const test::HttpResponse& r) {
  const std::string v = r.header("Retry-After");
  INFO("Retry-After: " << v);
  REQUIRE_FALSE(v.empty());
  const int seconds = std::stoi(v);
  CHECK(seconds >= 1);
  CHECK(seconds <= 120);
  return seconds;
}

TEST_CASE("rate limit: 5 a minute gives the 6th request 429 with Retry-After, per token and per project",
          "[proxy][usage]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const std::string project = f.create_project("limits-" + random_suffix());
  const std::string token = create_limited_token(f, project, {{"rate_limit_rpm", 5}})["token"];
  for (int i = 0; i < 5; ++i) CHECK(f.chat(token).status == 200);
  auto refused = f.chat(token);
  CHECK(refused.status == 429);
  CHECK(api_error_code(refused) == "rate_limit_exceeded");
  CHECK_THAT(refused.body, Contains("Token rate limit"));
  retry_after(refused);
  CHECK(f.mock.requests().size() == 5);

  // The project's limit counts all its tokens together.
  const std::string limited = f.create_project("project-limit-" + random_suffix());
  auto set = f.proxy->manage("PATCH", "/manage/projects/" + limited, R"({"rate_limit_rpm":3})");
  INFO(set.body);
  REQUIRE(set.status == 200);
  const std::string a = f.create_token(limited)["token"];
  const std::string b = f.create_token(limited)["token"];
  CHECK(f.chat(a).status == 200);
  CHECK(f.chat(b).status == 200);
  CHECK(f.chat(a).status == 200);
  auto project_refused = f.chat(b);
  CHECK(project_refused.status == 429);
  CHECK_THAT(project_refused.body, Contains("Project rate limit"));
  retry_after(project_refused);
  CHECK(f.proxy->metric("llm_proxy_rate_limit_refused_total") == 2);
  CHECK(f.proxy->metric("llm_proxy_rate_limit_allowed_total") == 8);
}

TEST_CASE("rate limit on redis: two instances share one count", "[proxy][usage][redis]") {
  test::RedisServer redis;
  ProxyFixture f(TestDatabase::Kind::sqlite, [url = redis.url()](Environment& env) {
    env["RATE_LIMIT_BACKEND"] = "redis";
    env["RATE_LIMIT_REDIS_URL"] = url;
  });
  Proxy other(f.env);  // a second instance: same database, same Redis
  const std::string project = f.create_project("shared-limit-" + random_suffix());
  const std::string token = create_limited_token(f, project, {{"rate_limit_rpm", 5}})["token"];
  const auto on_other = [&] {
    return test::http_request(other.port(), "POST", "/v1/chat/completions", kPlainBody,
                              {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  };
  for (int i = 0; i < 3; ++i) CHECK(f.chat(token).status == 200);
  for (int i = 0; i < 2; ++i) CHECK(on_other().status == 200);
  auto refused_here = f.chat(token);
  auto refused_there = on_other();
  CHECK(refused_here.status == 429);
  CHECK(refused_there.status == 429);
  retry_after(refused_there);
  CHECK(f.mock.requests().size() == 5);
}

TEST_CASE("events: one JSON line per /v1 request with usage, status and cache status", "[proxy][usage]") {
  TempDir logs;
  const std::string file = logs.file("events.jsonl");
  ProxyFixture f(TestDatabase::Kind::sqlite, [&](Environment& env) {
    env["EVENT_LOG_FILE"] = file;
    env["EVENT_LOG_BODIES"] = "true";
    env["EVENT_LOG_MAX_BODY_BYTES"] = "16";
  });
  const std::string project = f.create_project("events-" + random_suffix());
  const auto created = f.create_token(project);
  auto ok = f.chat(created["token"], kPlainBody);
  REQUIRE(ok.status == 200);
  auto denied = f.chat("sk-" + std::string(43, 'A'));
  REQUIRE(denied.status == 401);

  std::vector<nlohmann::json> lines;
  for (int i = 0; i < 50 && lines.size() < 2; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    lines.clear();
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(lines.size() == 2);
  const auto& first = lines[0];
  CHECK(first["request_id"] == ok.header("X-Request-ID"));
  CHECK(first["project_id"] == project);
  CHECK(first["token_id"] == created["id"]);
  CHECK(first["method"] == "POST");
  CHECK(first["path"] == "/v1/chat/completions");
  CHECK(first["model"] == "gpt-4o");
  CHECK(first["status"] == 200);
  CHECK(first["upstream_ms"].is_number());
  CHECK(first["usage"] == nlohmann::json{{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}});
  CHECK(first["request_body"] == std::string(kPlainBody).substr(0, 16));
  CHECK(first["request_body_truncated"] == true);
  CHECK(first["response_body_truncated"] == true);
  const auto& second = lines[1];
  CHECK(second["status"] == 401);
  CHECK(second["token_id"].is_null());
  CHECK(second["usage"].is_null());
  CHECK(second["upstream_ms"].is_null());
  CHECK(f.proxy->metric("llm_proxy_event_log_written_total") == 2);
}

TEST_CASE("events: an EVENT_LOG_FILE that cannot be opened is fatal at boot, naming the variable", "[proxy][usage]") {
  TempDir dir;
  auto env = base_env(dir);
  env["EVENT_LOG_FILE"] = dir.file("missing-directory/events.jsonl");
  auto [code, output] = test::run_command({LLMPROXY_BINARY, "server"}, env, 20s);
  CHECK(code == 2);
  CHECK_THAT(output, Contains("EVENT_LOG_FILE"));
}

}  // namespace
}  // namespace llmproxy::itest
