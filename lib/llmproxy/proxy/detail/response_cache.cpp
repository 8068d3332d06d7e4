#include "llmproxy/proxy/detail/response_cache.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <string_view>

namespace llmproxy::proxy::detail {

using server::Headers;
using server::Response;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

void set_key(Headers& h, const std::string& key) {
  if (!key.empty()) h.set("X-PROXY-CACHE-KEY", key);
}

}  // namespace

Response answer_from_entry(const cache::Entry& entry, const server::Request& request, const std::string& key,
                           std::int64_t now, bool revalidated) {
  Response r;
  const bool conditional = !revalidated && cache::not_modified(entry, request.headers);
  if (conditional) {
    // 304: the fields a 200 would carry that describe the representation (RFC 9110 §15.4.5), no body.
    r.status = 304;
    static constexpr std::array<std::string_view, 6> kKept = {"ETag", "Cache-Control", "Expires", "Vary",
                                                             "Last-Modified", "Content-Location"};
    for (const auto& f : entry.headers) {
      if (std::any_of(kKept.begin(), kKept.end(), [&](std::string_view n) { return server::iequals(n, f.name); })) {
        r.headers.add(f.name, f.value);
      }
    }
  } else {
    r.status = entry.status;
    r.headers = entry.headers;
    r.body = entry.body;
  }
  const std::int64_t age = std::max<std::int64_t>(0, (now - entry.stored_at_ms) / 1000);
  r.headers.set("Age", std::to_string(age));
  if (revalidated) {
    r.headers.set("Cache-Status", "llm-proxy; fwd=request; fwd-status=304");
    r.headers.set("X-PROXY-CACHE", "revalidated");
  } else {
    r.headers.set("Cache-Status", conditional ? "llm-proxy; hit; detail=conditional" : "llm-proxy; hit");
    r.headers.set("X-PROXY-CACHE", conditional ? "conditional-hit" : "hit");
  }
  set_key(r.headers, key);
  return r;
}

void mark_forwarded(Headers& h, const CacheState& state, bool stored, bool forced) {
  std::string status;
  switch (state.use) {
    case CacheUse::off: return;
    case CacheUse::bypass: h.set("Cache-Status", "llm-proxy; fwd=bypass"); return;
    case CacheUse::unavailable:
      h.set("Cache-Status", "llm-proxy; fwd=bypass; detail=unavailable");
      h.set("X-PROXY-CACHE", "bypass");
      set_key(h, state.key);
      return;
    case CacheUse::miss: status = "llm-proxy; fwd=miss"; break;
    case CacheUse::vary_miss: status = "llm-proxy; fwd=vary-miss"; break;
    case CacheUse::revalidate: status = "llm-proxy; fwd=request"; break;
    case CacheUse::hit: return;  // answered by answer_from_entry()
  }
  if (stored) {
    status += forced ? "; stored; detail=forced" : "; stored";
    h.set("X-PROXY-CACHE", "stored");
    set_key(h, state.key);
  }
  h.set("Cache-Status", status);
}

std::optional<cache::Lifetime> lifetime_for(int status, const Headers& headers, const Headers& request_headers,
                                            std::chrono::seconds default_ttl, bool stream_responses) {
  if (!stream_responses && headers.get("Content-Type").starts_with("text/event-stream")) return std::nullopt;
  return cache::storable(status, headers, request_headers, default_ttl);
}

std::shared_ptr<cache::Entry> make_entry(int status, const Headers& headers, std::string body,
                                         const cache::Lifetime& lifetime, const Headers& request_headers,
                                         std::int64_t now) {
  auto entry = std::make_shared<cache::Entry>();
  entry->status = status;
  entry->headers = cache::headers_to_store(headers);
  entry->body = std::move(body);
  entry->body.shrink_to_fit();  // a teed stream grew by appending: the memory backend charges unused capacity
  entry->stored_at_ms = now;
  entry->expires_at_ms = now + std::chrono::duration_cast<std::chrono::milliseconds>(lifetime.ttl).count();
  entry->vary = cache::vary_values(headers, request_headers);
  entry->forced = lifetime.forced;
  entry->stream = headers.get("Content-Type").starts_with("text/event-stream");
  return entry;
}

}  // namespace llmproxy::proxy::detail
