#pragma once
/// The mock LLM provider (tests/support/mock_upstream_main.cpp) as a test fixture: started on an ephemeral
/// port, inspected over its /__mock endpoints, killed when the object goes away.
#include "support/process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace llmproxy::test {

class MockUpstream {
 public:
  /// Starts the mock-upstream binary and waits for its `PORT <n>` line. Throws std::runtime_error (with the
  /// mock's output) if it does not start within `startup_timeout`.
  explicit MockUpstream(std::chrono::milliseconds startup_timeout = std::chrono::seconds(10));

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:<port>", the form a provider's base_url takes.
  std::string base_url() const;

  /// Requests to /v1/* received so far, oldest first: [{"method","target","headers":{...},"body","connection"}]
  /// (header names as sent; repeated names joined with ", "; "connection" numbers the TCP connection).
  nlohmann::json requests() const;
  /// A header of one recorded request, looked up ignoring case; nullopt when it was not sent.
  static std::optional<std::string> header(const nlohmann::json& request, std::string_view name);
  /// Forgets the recorded requests.
  void clear();
  /// {"connections_opened","connections_closed","active_connections","streams_started","streams_completed",
  ///  "streams_aborted","stalls_aborted"} (stalls_aborted: X-Mock-Stall-Ms waits ended by the client closing). The connection asking for the stats is itself counted as active.
  nlohmann::json stats() const;
  /// Polls stats() until `predicate` holds or `timeout` passes; returns whether it held.
  bool wait_for_stats(const std::function<bool(const nlohmann::json&)>& predicate,
                      std::chrono::milliseconds timeout) const;

  Process& process() noexcept { return process_; }

 private:
  Process process_;
  int port_ = 0;
};

}  // namespace llmproxy::test
