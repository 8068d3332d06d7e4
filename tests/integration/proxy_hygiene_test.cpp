// Request hygiene on /v1 through the real binary over raw sockets (SPEC §5.5): target normalisation and
// whole-segment endpoint matching, Connection-named and client-identity headers, and the param whitelist that
// runs only after the token was accepted, bounded and failing closed.
#include <fstream>
#include <thread>

#include "integration/proxy_fixture.hpp"
#include "support/http_client.hpp"

using namespace llmproxy;
using namespace llmproxy::itest;
using Catch::Matchers::Contains;

namespace {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and header lines
  std::string body;

  /// Whether a header line named `name` is present (case-insensitive).
  bool has_header(std::string_view name) const {
    std::string lower_head = head, lower_name(name);
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower_head.find("\r\n" + lower_name + ":") != std::string::npos;
  }
  std::string code() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("code") && j["code"].is_string()) return j["code"].get<std::string>();
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("code") &&
        j["error"]["code"].is_string()) {
      return j["error"]["code"].get<std::string>();
    }
    return "<no code: " + body.substr(0, 200) + ">";
  }
};

RawResponse parse(const std::string& raw) {
  RawResponse r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) {
    r.body = raw;
    return r;
  }
  r.status = std::atoi(raw.substr(9, 3).c_str());
  r.head = raw.substr(0, end + 2);
  r.body = raw.substr(end + 4);
  return r;
}

/// One request written byte for byte on a fresh connection (`Connection: close` unless the caller sends its own
/// Connection header), answered by the proxy and read until it closes.
RawResponse send_raw(int port, const std::string& method, const std::string& target,
                     const std::vector<std::string>& header_lines, const std::string& body = "") {
  std::string bytes = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  bool connection = false;
  for (const auto& line : header_lines) {
    bytes += line + "\r\n";
    if (line.rfind("Connection:", 0) == 0) connection = true;
  }
  if (!connection) bytes += "Connection: close\r\n";
  if (!body.empty() || method == "POST") bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  bytes += "\r\n" + body;
  return parse(test::raw_exchange(port, bytes, 30s));
}

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token; }

std::string multipart(const std::string& boundary, const std::string& model) {
  return "--" + boundary + "\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"speech.wav\"\r\n"
         "Content-Type: audio/wav\r\n\r\n"
         "RIFF....WAVEfmt \r\n"
         "--" + boundary + "\r\n"
         "Content-Disposition: form-data; name=\"model\"\r\n\r\n" +
         model + "\r\n"
         "--" + boundary + "--\r\n";
}

}  // namespace

TEST_CASE("hygiene: the normalised path is checked against whole endpoint segments and forwarded", "[proxy][hygiene]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const auto token = f.project_token();
  const int port = f.proxy->port();

  SECTION("a prefix that is not a whole segment is not an allowed endpoint") {
    auto r = send_raw(port, "GET", "/v1/modelsX", {bearer(token)});
    INFO(r.head << r.body);
    CHECK(r.status == 404);
    CHECK(r.code() == "endpoint_not_found");
    CHECK(f.mock.requests().empty());
    CHECK(send_raw(port, "GET", "/v1/models/gpt-4o", {bearer(token)}).status == 200);
  }
  SECTION("paths that climb, or hide a separator, are 400 invalid_path and nothing is forwarded") {
    for (const char* target : {"/v1/models/../fine_tuning/jobs", "/v1/models/%2e%2e/batches", "/v1/models/.%2E/files",
                               "/v1/chat/completions/..", "/v1/models%2F..%2Ffiles", "/v1/models%5Cfiles",
                               "/v1/models/%00", "/v1/models%"}) {
      auto r = send_raw(port, "POST", target, {bearer(token), "Content-Type: application/json"}, R"({"model":"x"})");
      INFO(target << "\n" << r.head << r.body);
      CHECK(r.status == 400);
      CHECK(r.code() == "invalid_path");
      CHECK_THAT(r.head, Contains("application/json"));
    }
    CHECK(f.mock.requests().empty());
  }
  SECTION("the upstream receives the normalised path with the original query") {
    auto r = send_raw(port, "POST", "/v1/%63hat/completions", {bearer(token), "Content-Type: application/json"},
                      R"({"model":"gpt-4o"})");
    INFO(r.head << r.body);
    CHECK(r.status == 200);
    auto q = send_raw(port, "GET", "/v1/./models//gpt-4o?after=a%2Fb&limit=2", {bearer(token)});
    CHECK(q.status == 200);
    auto seen = f.mock.requests();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0]["target"] == "/v1/chat/completions");
    CHECK(seen[1]["target"] == "/v1/models/gpt-4o?after=a%2Fb&limit=2");
  }
}

TEST_CASE("hygiene: headers named by Connection and client-identity headers never cross the proxy",
          "[proxy][hygiene]") {
  ProxyFixture f(TestDatabase::Kind::sqlite);
  const auto token = f.project_token();
  auto r = send_raw(f.proxy->port(), "POST", "/v1/chat/completions",
                    {bearer(token), "Content-Type: application/json", "Connection: close, X-Secret-Hop",
                     "X-Secret-Hop: 1", "Forwarded: for=1.2.3.4;proto=http", "X-Forwarded-Host: evil.example",
                     "X-Forwarded-Proto: http", "True-Client-IP: 1.2.3.4", "X-Kept: yes",
                     "X-Mock-Header: Connection: X-Upstream-Hop", "X-Mock-Header: X-Upstream-Hop: 1"},
                    R"({"model":"gpt-4o"})");
  INFO(r.head << r.body);
  REQUIRE(r.status == 200);
  // The upstream's own Connection-named header stays with the proxy; its other headers pass.
  CHECK_FALSE(r.has_header("X-Upstream-Hop"));
  CHECK(r.has_header("X-Upstream-Header"));

  auto seen = f.mock.requests();
  REQUIRE(seen.size() == 1);
  INFO(seen.dump());
  for (const char* h : {"X-Secret-Hop", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto", "True-Client-IP"}) {
    INFO(h);
    CHECK_FALSE(test::MockUpstream::header(seen[0], h).has_value());
  }
  CHECK(test::MockUpstream::header(seen[0], "X-Kept") == "yes");
  CHECK_THAT(test::MockUpstream::header(seen[0], "Connection").value_or(""), !Contains("X-Secret-Hop"));
}

namespace {

const std::string kWhitelist = "    param_whitelist:\n      model: [gpt-4o, \"gpt-4o-*\"]\n";

void whitelist_runs_after_the_token_and_fails_closed(TestDatabase::Kind kind) {
  ProxyFixture f(kind, {}, kWhitelist);
  const int port = f.proxy->port();
  const auto token = f.project_token();
  const std::string json = "Content-Type: application/json";
  auto post = [&](const std::vector<std::string>& headers, const std::string& body) {
    return send_raw(port, "POST", "/v1/chat/completions", headers, body);
  };
  auto expect = [&](const RawResponse& r, int status, const std::string& code) {
    INFO(r.head << r.body);
    CHECK(r.status == status);
    CHECK(r.code() == code);
  };

  SECTION("without a valid token the body is never looked at") {
    expect(post({json}, std::string(1 << 20, '[')), 401, "invalid_token");
    expect(post({json}, R"({"model":"gpt-5"})"), 401, "invalid_token");
    expect(post({json, "Authorization: Bearer sk-AAAAAAAAAAAAAAAAAAAAAA"}, R"({"model":"gpt-5"})"), 401,
           "token_not_found");
  }
  SECTION("with a valid token a body that cannot be checked is refused") {
    expect(post({bearer(token), json}, std::string(1 << 20, '[')), 400, "param_not_allowed");
    expect(post({bearer(token), json}, "{\"a\":" + std::string(65, '[') + std::string(65, ']') + "}"), 400,
           "param_not_allowed");
    expect(post({bearer(token), json}, R"([{"model":"gpt-4o"}])"), 400, "param_not_allowed");
    expect(post({bearer(token), json}, R"("gpt-4o")"), 400, "param_not_allowed");
    expect(post({bearer(token), json}, R"({"model":"gpt-4o")"), 400, "param_not_allowed");
    expect(post({bearer(token), json}, R"({"model":"gpt-5"})"), 400, "param_not_allowed");
    CHECK(f.mock.requests().empty());
    // Nesting within the bound is fine.
    auto ok = post({bearer(token), json}, "{\"model\":\"gpt-4o\",\"a\":" + std::string(60, '[') +
                                              std::string(60, ']') + "}");
    INFO(ok.body);
    CHECK(ok.status == 200);
  }
  SECTION("a multipart body is judged on its model field") {
    const std::string type = "Content-Type: multipart/form-data; boundary=----llmproxy42";
    const std::string allowed = multipart("----llmproxy42", "gpt-4o-transcribe");
    auto r = post({bearer(token), type}, allowed);
    INFO(r.body);
    CHECK(r.status == 200);
    auto seen = f.mock.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0]["body"] == allowed);
    expect(post({bearer(token), type}, multipart("----llmproxy42", "whisper-1")), 400, "param_not_allowed");
    expect(post({bearer(token), type}, allowed.substr(0, allowed.size() - 20)), 400, "param_not_allowed");
    expect(post({bearer(token), "Content-Type: multipart/form-data"}, allowed), 400, "param_not_allowed");
    CHECK(f.mock.requests().size() == 1);
  }
  SECTION("a refused body does not consume quota") {
    const auto limited = f.project_token(1);
    expect(post({bearer(limited), json}, R"({"model":"gpt-5"})"), 400, "param_not_allowed");
    expect(post({bearer(limited), json}, "[]"), 400, "param_not_allowed");
    CHECK(post({bearer(limited), json}, R"({"model":"gpt-4o"})").status == 200);
    expect(post({bearer(limited), json}, R"({"model":"gpt-4o"})"), 429, "rate_limit_exceeded");
  }
}

}  // namespace

BOTH_DRIVERS("hygiene: the param whitelist runs after the token, is bounded and fails closed", "[proxy][hygiene]",
             whitelist_runs_after_the_token_and_fails_closed)

namespace {

/// Peak resident set size of a process, in bytes (VmHWM), or -1.
long long peak_rss(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

}  // namespace

TEST_CASE("hygiene: tokenless 10 MB deeply nested bodies cost no parse memory", "[proxy][hygiene][memory]") {
  ProxyFixture f(TestDatabase::Kind::sqlite, {}, kWhitelist);
  const int port = f.proxy->port();
  const long long before = peak_rss(f.proxy->process().pid());
  REQUIRE(before > 0);
  // MAX_REQUEST_SIZE is 10 MiB by default: 4 bodies of just under that, at the same time.
  const std::string body(10 * 1024 * 1024 - 1024, '[');
  std::vector<int> statuses(4, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      statuses[i] = send_raw(port, "POST", "/v1/chat/completions", {"Content-Type: application/json"}, body).status;
    });
  }
  for (auto& c : clients) c.join();
  const long long after = peak_rss(f.proxy->process().pid());
  const double grown_mib = static_cast<double>(after - before) / (1024.0 * 1024.0);
  WARN("peak RSS before " << before / (1024 * 1024) << " MiB, after " << after / (1024 * 1024) << " MiB (+"
                          << grown_mib << " MiB)");
  for (int s : statuses) CHECK(s == 401);
  // The bodies themselves are buffered (4 x 10 MiB, plus the reader's copies); a DOM parse of them took
  // more than 1 GiB. 200 MiB leaves room for allocator slack without letting a parse through.
  CHECK(grown_mib < 200);
}
