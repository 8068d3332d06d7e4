#pragma once
/// What both limiters share besides window.hpp: the clock and the decision over a call's rules.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "llmproxy/ratelimit/limiter.hpp"
#include "llmproxy/ratelimit/window.hpp"

namespace llmproxy::ratelimit::detail {

/// Limits above this are treated as this: keeps window.hpp's arithmetic exact in 64-bit integers and in the Lua
/// script's doubles (limit * 60000 < 2^53).
inline constexpr std::int64_t kMaxLimit = 100'000'000'000;

inline std::int64_t effective_limit(const Rule& rule) noexcept { return std::min(rule.limit_per_minute, kMaxLimit); }

inline std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// All or nothing: allowed when every rule allows; otherwise refused by the first rule that does not, with the
/// largest Retry-After of the rules that do not. `states[i]` are rule i's counts before this call.
inline Decision decide(const std::vector<Rule>& rules, const std::vector<WindowState>& states) {
  Decision d;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::int64_t limit = effective_limit(rules[i]);
    if (allows(states[i], limit)) continue;
    if (d.allowed) {
      d.allowed = false;
      d.refused_rule = i;
    }
    d.retry_after = std::max(d.retry_after, retry_after(states[i], limit));
  }
  return d;
}

}  // namespace llmproxy::ratelimit::detail
