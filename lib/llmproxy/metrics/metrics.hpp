#pragma once
/// Process-wide counters, gauges and histograms rendered in the Prometheus text format 0.0.4 (SPEC §8).
/// Every update is lock-free (atomics) or takes a short mutex on a rarely-written label map; any thread.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace llmproxy::metrics {

/// A latency histogram in seconds with fixed buckets. Lock-free.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void observe(double seconds);
  /// Appends `name_bucket{le=..}`, `name_sum`, `name_count` lines.
  void render(std::string& out, const std::string& name) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_micros_{0};
};

class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Requests by route and status: a small map (routes x statuses stays tiny) whose counters are atomics. Each
  // thread remembers the last route and status it counted and that counter, so a repeat takes no lock.
  void count_request(const std::string& route, int status);

  /// LLM tokens of one answer by model (SPEC §14: llm_proxy_llm_tokens_total{kind,model}). The model names come
  /// from the upstream's answers; past kMaxModelLabels distinct names, the others are counted as "other" so a
  /// provider cannot grow the exposition without bound. Remembered per thread like count_request()'s.
  static constexpr std::size_t kMaxModelLabels = 100;
  void count_llm_tokens(const std::string& model, std::uint64_t prompt, std::uint64_t completion);

  Histogram request_seconds;
  Histogram upstream_seconds;
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::uint64_t> db_errors{0};        // requests answered 503 because the database was unavailable
  std::atomic<std::uint64_t> upstream_errors{0};  // upstream exchanges that failed (connect, TLS, timeout)
  // The response cache (SPEC §13), counted by the proxy: answers served from it (304s included), lookups that
  // found nothing usable, requests it did not handle (not eligible, or the backend failed), answers stored.
  std::atomic<std::uint64_t> cache_hits{0};
  std::atomic<std::uint64_t> cache_misses{0};
  std::atomic<std::uint64_t> cache_bypass{0};
  std::atomic<std::uint64_t> cache_stores{0};

  /// Values owned elsewhere, sampled at render time (pool stats, cache counters, breaker state, ...).
  /// Register before the server starts. A name may carry labels (`name{kind="x"}`); register the samples of one
  /// family one after the other (they share the first one's HELP and TYPE).
  void add_gauge(std::string name, std::string help, std::function<double()> sample);
  void add_counter(std::string name, std::string help, std::function<double()> sample);

  /// The whole exposition text, including uptime and process RSS.
  std::string render() const;

 private:
  struct TokenCounts {
    std::atomic<std::uint64_t> prompt{0}, completion{0};
  };
  mutable std::mutex mu_;  // guards the maps' shape; entries are never removed, so a counter's address is stable
  std::map<std::pair<std::string, int>, std::atomic<std::uint64_t>> requests_;
  std::map<std::string, TokenCounts> llm_tokens_;  // model -> prompt, completion
  // Unique in the process (never reused, unlike an address): what a thread's remembered counter belongs to.
  const std::uint64_t id_;
  struct Gauge {
    std::string name, help;
    std::function<double()> sample;
    const char* type = "gauge";
  };
  std::vector<Gauge> gauges_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace llmproxy::metrics
