#include "support/mock_upstream.hpp"

#include "support/http_client.hpp"

#include <regex>
#include <stdexcept>
#include <thread>

#ifndef MOCK_UPSTREAM_BINARY
#error "MOCK_UPSTREAM_BINARY must name the mock-upstream executable (set by tests/support/CMakeLists.txt)"
#endif

namespace llmproxy::test {
namespace {

nlohmann::json get_json(int port, std::string_view method, std::string_view target) {
  HttpResponse res = http_request(port, method, target, "", {}, std::chrono::seconds(10));
  if (res.status != 200) {
    throw std::runtime_error("mock-upstream " + std::string(target) + " answered " + std::to_string(res.status));
  }
  return nlohmann::json::parse(res.body);
}

}  // namespace

MockUpstream::MockUpstream(std::chrono::milliseconds startup_timeout)
    : process_(MOCK_UPSTREAM_BINARY, {"--port", "0"}) {
  static const std::regex kPortLine(R"(^PORT (\d+)$)");
  auto line = process_.wait_for_line(kPortLine, startup_timeout);
  if (!line) throw std::runtime_error("mock-upstream did not start; output:\n" + process_.output());
  port_ = std::stoi(line->substr(5));
}

std::string MockUpstream::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

nlohmann::json MockUpstream::requests() const { return get_json(port_, "GET", "/__mock/requests"); }

std::optional<std::string> MockUpstream::header(const nlohmann::json& request, std::string_view name) {
  const auto headers = request.find("headers");
  if (headers == request.end() || !headers->is_object()) return std::nullopt;
  const CaseInsensitiveLess less;
  for (const auto& [key, value] : headers->items()) {
    if (!less(key, name) && !less(name, key) && value.is_string()) return value.get<std::string>();
  }
  return std::nullopt;
}

void MockUpstream::clear() { get_json(port_, "DELETE", "/__mock/requests"); }

nlohmann::json MockUpstream::stats() const { return get_json(port_, "GET", "/__mock/stats"); }

bool MockUpstream::wait_for_stats(const std::function<bool(const nlohmann::json&)>& predicate,
                                  std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate(stats())) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace llmproxy::test
