#include "llmproxy/metrics/metrics.hpp"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace llmproxy::metrics {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Shortest text that reads back as the same double: 0.0025, not 0.0025000000000000001.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

double resident_bytes() {
  // /proc/self/statm: size resident shared ... in pages.
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{le=\"" + number(kBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_[kBuckets.size()].load(std::memory_order_relaxed);
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6) + "\n";
  out += name + "_count " + std::to_string(cumulative) + "\n";
}

namespace {
std::atomic<std::uint64_t> next_registry_id{1};
}  // namespace

Registry::Registry() : id_(next_registry_id.fetch_add(1, std::memory_order_relaxed)) {}

void Registry::count_request(const std::string& route, int status) {
  struct Last {
    std::uint64_t registry = 0;
    int status = 0;
    std::string route;
    std::atomic<std::uint64_t>* counter = nullptr;
  };
  thread_local Last last;
  if (last.registry != id_ || last.status != status || last.route != route) {
    std::lock_guard lock(mu_);
    last.counter = &requests_.try_emplace({route, status}).first->second;
    last.registry = id_;
    last.status = status;
    last.route = route;
  }
  last.counter->fetch_add(1, std::memory_order_relaxed);
}

void Registry::count_llm_tokens(const std::string& model, std::uint64_t prompt, std::uint64_t completion) {
  struct Last {
    std::uint64_t registry = 0;
    std::string model;
    TokenCounts* counts = nullptr;  // of `model` (or of "other") in that registry
  };
  thread_local Last last;
  if (last.registry != id_ || last.model != model) {
    std::lock_guard lock(mu_);
    auto it = llm_tokens_.find(model);
    if (it == llm_tokens_.end()) {
      const bool room = llm_tokens_.size() < kMaxModelLabels;
      it = llm_tokens_.try_emplace(room ? model : std::string("other")).first;
    }
    last.counts = &it->second;
    last.registry = id_;
    last.model = model;
  }
  last.counts->prompt.fetch_add(prompt, std::memory_order_relaxed);
  last.counts->completion.fetch_add(completion, std::memory_order_relaxed);
}

void Registry::add_gauge(std::string name, std::string help, std::function<double()> sample) {
  std::lock_guard lock(mu_);
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(sample), "gauge"});
}

void Registry::add_counter(std::string name, std::string help, std::function<double()> sample) {
  std::lock_guard lock(mu_);
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(sample), "counter"});
}

std::string Registry::render() const {
  std::string out;
  out.reserve(8192);
  header(out, "llm_proxy_requests_total", "counter", "HTTP requests handled, by route and status.");
  std::uint64_t proxy_errors = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, counter] : requests_) {
      const std::uint64_t count = counter.load(std::memory_order_relaxed);
      out += "llm_proxy_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(count) + "\n";
      if (key.first == "proxy" && key.second >= 400) proxy_errors += count;
    }
  }
  // The reference's (Go llm-proxy) names, derived here from the counters above so nothing is counted twice.
  // Its unlabelled llm_proxy_requests_total is ours summed: sum(llm_proxy_requests_total{route="proxy"}).
  header(out, "llm_proxy_errors_total", "counter",
         "Proxied (/v1) requests answered with a status of 400 or more (reference name; = the sum of "
         "llm_proxy_requests_total{route=\"proxy\",status>=400}).");
  out += "llm_proxy_errors_total " + std::to_string(proxy_errors) + "\n";
  header(out, "llm_proxy_llm_tokens_total", "counter",
         "LLM tokens used by proxied answers, by kind (prompt, completion) and the model the upstream named.");
  {
    std::lock_guard lock(mu_);
    for (const auto& [model, counts] : llm_tokens_) {
      // Model names the usage scanner keeps hold no quote, backslash or control byte; escaped anyway.
      std::string label;
      for (char c : model) {
        if (c == '"' || c == '\\') label += '\\';
        if (c == '\n') {
          label += "\\n";
          continue;
        }
        label += c;
      }
      out += "llm_proxy_llm_tokens_total{kind=\"prompt\",model=\"" + label + "\"} " + std::to_string(counts.prompt.load(std::memory_order_relaxed)) + "\n";
      out += "llm_proxy_llm_tokens_total{kind=\"completion\",model=\"" + label + "\"} " +
             std::to_string(counts.completion.load(std::memory_order_relaxed)) + "\n";
    }
  }
  // The response cache's counters, under the reference's names.
  const std::pair<const char*, const std::atomic<std::uint64_t>*> kCacheCounters[] = {
      {"llm_proxy_cache_hits_total", &cache_hits},
      {"llm_proxy_cache_misses_total", &cache_misses},
      {"llm_proxy_cache_bypass_total", &cache_bypass},
      {"llm_proxy_cache_stores_total", &cache_stores},
  };
  static constexpr const char* kCacheHelp[] = {
      "Answers served from the response cache (304s to conditional requests included).",
      "Response cache lookups that found nothing usable (nothing stored, another variant, or revalidation asked).",
      "Requests the response cache did not handle: not eligible (method, no opt-in, size), or the backend failed.",
      "Answers stored in the response cache.",
  };
  for (std::size_t i = 0; i < std::size(kCacheCounters); ++i) {
    header(out, kCacheCounters[i].first, "counter", kCacheHelp[i]);
    out += std::string(kCacheCounters[i].first) + " " + std::to_string(kCacheCounters[i].second->load()) + "\n";
  }
  header(out, "llm_proxy_request_duration_seconds", "histogram", "Time from request headers to the end of the response.");
  request_seconds.render(out, "llm_proxy_request_duration_seconds");
  header(out, "llm_proxy_upstream_duration_seconds", "histogram", "Time from sending upstream to its response headers.");
  upstream_seconds.render(out, "llm_proxy_upstream_duration_seconds");

  // A name may carry labels (`family{kind="x"}`): samples of one family registered one after the other share
  // one HELP/TYPE header.
  std::string family;
  auto gauge = [&](const std::string& name, const char* type, const std::string& help, double v) {
    const std::string this_family = name.substr(0, name.find('{'));
    if (this_family != family) header(out, this_family, type, help);
    family = this_family;
    out += name + " " + number(v) + "\n";
  };
  gauge("llm_proxy_in_flight_requests", "gauge", "Requests being handled now.", static_cast<double>(in_flight.load()));
  gauge("llm_proxy_open_connections", "gauge", "Open client connections.", static_cast<double>(open_connections.load()));
  gauge("llm_proxy_db_errors_total", "counter", "Requests answered 503 because the database was unavailable.",
        static_cast<double>(db_errors.load()));
  gauge("llm_proxy_upstream_errors_total", "counter", "Upstream exchanges that failed (connect, TLS, timeout).",
        static_cast<double>(upstream_errors.load()));
  std::vector<Gauge> gauges;
  {
    std::lock_guard lock(mu_);
    gauges = gauges_;
  }
  for (const auto& g : gauges) gauge(g.name, g.type, g.help, g.sample());
  gauge("llm_proxy_uptime_seconds", "gauge", "Seconds since the process started.",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  gauge("process_resident_memory_bytes", "gauge", "Resident set size of the process.", resident_bytes());
  return out;
}

}  // namespace llmproxy::metrics
