#pragma once
/// The sliding-window arithmetic (SPEC §14 "Rate limits") shared by the memory and the Redis limiter, so that both
/// decide and compute Retry-After the same way. Pure functions; any thread.
///
/// Two-bucket approximation (as Cloudflare's and nginx plus's limiters): time is cut into aligned minutes
/// ("buckets", b = floor(now_ms / W), W = 60 000 ms); each key counts the requests it allowed in the current
/// bucket (cur) and in the previous one (prev). At e ms into the current bucket (0 <= e < W) the number of
/// requests in the last 60 s is estimated as
///     estimate = prev * (W - e) / W + cur
/// (the previous minute's requests assumed spread uniformly over it), and one more is allowed when
/// estimate + 1 <= limit. In integers, exactly:  prev * (W - e) + (cur + 1) * W <= limit * W.
///
/// Retry-After, for a refused key with no further requests meanwhile (the estimate never rises then: it decays
/// within a bucket and is continuous across a boundary, where prev * 0 + cur becomes cur * 1 + 0), is the
/// smallest wait d (ms) after which the inequality holds, rounded up to whole seconds, at least 1:
///   1. Within this bucket (possible only while cur + 1 <= limit): with R = (limit - cur - 1) * W, we need
///      prev * (W - e - d) <= R, i.e. d >= W - e - floor(R / prev); taken if that is < W - e.
///   2. Otherwise in the next bucket, where cur becomes prev and the new cur is 0: at e' ms into it we need
///      cur * (W - e') <= (limit - 1) * W, i.e. e' >= W - floor((limit - 1) * W / cur), and d = (W - e) + e'.
///      (e' = W, possible only with limit 1, is the start of the bucket after: both counts 0 there.)
/// Example: limit 5, five requests at e = 15 s, none before: the 6th waits for the next bucket with e' >= 12 s,
/// d = 45 s + 12 s = 57 s. Limit 10, ten in the previous minute, five at e = 30 s: 6 s (10 * 24/60 + 5 + 1 = 10).
///
/// Accuracy against a true sliding window (the count of allowed requests in any 60 s interval):
///   - Over: a key is allowed fewer than 2 * limit requests in any 60 s interval, and at most k * limit in k
///     consecutive aligned minutes (so never more than `limit` per minute on average). Proof of the first: an
///     interval ending at e ms into bucket b holds requests of buckets b and b - 1 only (at most cur and prev);
///     the last of the cur requests was allowed at some e0 <= e with prev * (W - e0) / W + cur <= limit, so
///     cur + prev <= limit + prev * e0 / W < limit + prev <= 2 * limit (a bucket never counts more than limit,
///     its own estimate being at least its cur). The bound is approached only by a burst of `limit` just before
///     a minute boundary followed by nearly `limit` more just before the next one; for traffic spread evenly over
///     the previous minute the estimate is exact.
///   - Under: after a burst early in the previous minute, the estimate still counts part of it once it has left
///     the true window, so requests are refused that a true window would allow, until the decayed weight allows
///     them (at most W - e ms later, the end of the current minute).
///   - With the Redis limiter every instance uses its own clock to pick the bucket and e: instances whose clocks
///     differ by s ms see the minute boundaries s ms apart, so for s ms around each boundary a request may be
///     counted in the neighbouring bucket, and the decay weight differs by s / W (at most limit * s / W requests
///     of estimate). Keep the instances NTP-synchronised: with s of a few ms this is negligible.
#include <chrono>
#include <cstdint>

namespace llmproxy::ratelimit {

inline constexpr std::int64_t kWindowMs = 60'000;

/// One key's counts as seen at `elapsed_ms` into the current bucket (0 <= elapsed_ms < kWindowMs).
struct WindowState {
  std::int64_t cur = 0;   // allowed in the current bucket
  std::int64_t prev = 0;  // allowed in the previous bucket
  std::int64_t elapsed_ms = 0;
};

/// The aligned minute of an instant (Unix epoch ms), and how far into it the instant is.
constexpr std::int64_t bucket_of(std::int64_t now_ms) noexcept {
  return now_ms >= 0 ? now_ms / kWindowMs : -((-now_ms + kWindowMs - 1) / kWindowMs);
}
constexpr std::int64_t elapsed_in_bucket(std::int64_t now_ms) noexcept {
  return now_ms - bucket_of(now_ms) * kWindowMs;
}

/// True when one more request fits under `limit` (estimate + 1 <= limit). A limit below 1 allows nothing.
/// Exact in 64-bit integers for limits and counts up to 10^12.
constexpr bool allows(const WindowState& s, std::int64_t limit) noexcept {
  if (limit < 1) return false;
  return s.prev * (kWindowMs - s.elapsed_ms) + (s.cur + 1) * kWindowMs <= limit * kWindowMs;
}

/// The wait (ms, 0 when allows() already holds) until one more request fits, if nothing else is counted
/// meanwhile; see the derivation above. A limit below 1 never allows: one window (60 000 ms) is returned.
constexpr std::int64_t wait_ms(const WindowState& s, std::int64_t limit) noexcept {
  if (limit < 1) return kWindowMs;
  if (allows(s, limit)) return 0;
  const std::int64_t rest = kWindowMs - s.elapsed_ms;  // ms left in this bucket
  if (s.cur + 1 <= limit && s.prev > 0) {
    const std::int64_t d = rest - ((limit - s.cur - 1) * kWindowMs) / s.prev;
    if (d < rest) return d;
  }
  const std::int64_t e_next = s.cur > 0 ? kWindowMs - ((limit - 1) * kWindowMs) / s.cur : 0;
  return rest + (e_next > 0 ? e_next : 0);
}

/// wait_ms() as a Retry-After value: whole seconds, rounded up, at least 1.
constexpr std::chrono::seconds retry_after(const WindowState& s, std::int64_t limit) noexcept {
  const std::int64_t ms = wait_ms(s, limit);
  const std::int64_t secs = (ms + 999) / 1000;
  return std::chrono::seconds(secs < 1 ? 1 : secs);
}

}  // namespace llmproxy::ratelimit
