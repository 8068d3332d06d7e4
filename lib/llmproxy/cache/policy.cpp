#include "llmproxy/cache/policy.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "llmproxy/util/crypto.hpp"

namespace llmproxy::cache {

namespace {

using server::iequals;
using server::trim_ows;

constexpr std::int64_t kMaxDelta = std::numeric_limits<std::int32_t>::max();  // 2^31-1 (RFC 9111 §1.2.2)
constexpr std::size_t kKeyPartHex = 32;                                        // 128 bits of SHA-256

/// Calls `f(item)` for every non-empty, trimmed comma-separated item of every `name` field.
template <class F>
void for_each_item(const server::Headers& headers, std::string_view name, F f) {
  for (const auto& field : headers) {
    if (!iequals(field.name, name)) continue;
    std::string_view rest = field.value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = trim_ows(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (!item.empty()) f(item);
    }
  }
}

/// Every `name` field's value, trimmed, joined with ", " (one field list value, RFC 9110 §5.3); "" if none.
std::string combined_value(const server::Headers& headers, std::string_view name) {
  std::string out;
  bool first = true;
  for (const auto& field : headers) {
    if (!iequals(field.name, name)) continue;
    if (!first) out.append(", ");
    out.append(trim_ows(field.value));
    first = false;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return out;
}

/// delta-seconds (digits only, optionally quoted); nullopt when malformed; clamped at 2^31-1.
std::optional<std::int64_t> delta_seconds(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return std::nullopt;
  std::int64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = std::min(n * 10 + (c - '0'), kMaxDelta);
  }
  return n;
}

/// An unambiguous concatenation: each part preceded by its length.
void add_part(std::string& out, std::string_view part) {
  out.append(std::to_string(part.size())).push_back(':');
  out.append(part);
}

std::string hash_part(std::string_view data) { return util::sha256_hex(data).substr(0, kKeyPartHex); }

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

/// The query with its '&'-separated raw parameters sorted bytewise (so their order does not matter).
std::string sorted_query(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  std::vector<std::string_view> params;
  while (true) {
    const auto amp = rest.find('&');
    params.push_back(rest.substr(0, amp));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out.push_back('&');
    out.append(params[i]);
  }
  return out;
}

std::string resource_part(std::string_view method, std::string_view target) {
  std::string raw;
  add_part(raw, method);
  add_part(raw, path_of(target));
  add_part(raw, sorted_query(target));
  return hash_part(raw);
}

// ---- HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms ----

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, int& out) {
  if (s.empty()) return false;
  out = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

int month_of(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (s == kMonths[i]) return static_cast<int>(i) + 1;
  }
  return 0;
}

/// "HH:MM:SS" -> seconds of the day.
bool time_of_day(std::string_view s, int& seconds) {
  int h = 0;
  int m = 0;
  int sec = 0;
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  if (!digits(s.substr(0, 2), h) || !digits(s.substr(3, 2), m) || !digits(s.substr(6, 2), sec)) return false;
  if (h > 23 || m > 59 || sec > 60) return false;
  seconds = h * 3600 + m * 60 + std::min(sec, 59);
  return true;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto start = s.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    const auto end = s.find(' ');
    out.push_back(s.substr(0, end));
    s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  }
  return out;
}

/// Seconds since the epoch of an HTTP-date, or nullopt.
std::optional<std::int64_t> parse_http_date(std::string_view text) {
  const auto w = split_spaces(trim_ows(text));
  int day = 0;
  int month = 0;
  int year = 0;
  int tod = 0;
  if (w.size() == 6 && w[0].size() == 4 && w[0].back() == ',' && w[5] == "GMT") {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (w[1].size() != 2 || !digits(w[1], day) || w[3].size() != 4 || !digits(w[3], year)) return std::nullopt;
    month = month_of(w[2]);
    if (!time_of_day(w[4], tod)) return std::nullopt;
  } else if (w.size() == 4 && w[0].size() > 1 && w[0].back() == ',' && w[3] == "GMT") {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: 70..99 -> 19xx, else 20xx, RFC 9110 §5.6.7)
    const std::string_view d = w[1];
    if (d.size() != 9 || d[2] != '-' || d[6] != '-') return std::nullopt;
    if (!digits(d.substr(0, 2), day) || !digits(d.substr(7, 2), year)) return std::nullopt;
    month = month_of(d.substr(3, 3));
    year += year >= 70 ? 1900 : 2000;
    if (!time_of_day(w[2], tod)) return std::nullopt;
  } else if (w.size() == 5 && w[0].size() == 3) {
    // asctime: Sun Nov  6 08:49:37 1994
    month = month_of(w[1]);
    if (w[2].size() > 2 || !digits(w[2], day) || w[4].size() != 4 || !digits(w[4], year)) return std::nullopt;
    if (!time_of_day(w[3], tod)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (month == 0 || day < 1 || day > 31) return std::nullopt;
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + tod;
}

/// The opaque part of an entity-tag (`W/"x"` and `"x"` both give `"x"`), for the weak comparison.
std::string_view opaque_tag(std::string_view tag) {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kHop = {"Connection", "Keep-Alive",        "Proxy-Authenticate",
                                                           "Proxy-Authorization", "Proxy-Connection", "TE",
                                                           "Trailer",    "Transfer-Encoding", "Upgrade"};
  return std::any_of(kHop.begin(), kHop.end(), [&](std::string_view h) { return iequals(h, name); });
}

/// Fields about one exchange (set by the pipeline, or timings of a proxy upstream, as the reference drops them):
/// a stored copy would be wrong on every replay.
bool is_per_request(std::string_view name) {
  static constexpr std::array<std::string_view, 14> kPerRequest = {
      "Date", "Set-Cookie", "Set-Cookie2", "Age", "X-Request-ID", "X-Correlation-ID",
      "Cache-Status", "X-PROXY-CACHE", "X-PROXY-CACHE-KEY", "X-Upstream-Request-Start", "X-Upstream-Request-Stop",
      "X-Proxy-Received-At", "X-Proxy-First-Response-At", "X-Proxy-Final-Response-At"};
  if (std::any_of(kPerRequest.begin(), kPerRequest.end(), [&](std::string_view h) { return iequals(h, name); })) {
    return true;
  }
  constexpr std::string_view kCors = "Access-Control-";
  return name.size() >= kCors.size() && iequals(name.substr(0, kCors.size()), kCors);
}

}  // namespace

CacheControl cache_control(const server::Headers& headers) {
  CacheControl cc;
  for_each_item(headers, "Cache-Control", [&](std::string_view item) {
    const auto eq = item.find('=');
    const std::string_view name = trim_ows(item.substr(0, eq));
    const std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim_ows(item.substr(eq + 1));
    if (iequals(name, "no-store")) {
      cc.no_store = true;
    } else if (iequals(name, "no-cache")) {
      cc.no_cache = true;  // with a field list (`no-cache="Set-Cookie"`) too: the stricter reading
    } else if (iequals(name, "private")) {
      cc.is_private = true;
    } else if (iequals(name, "public")) {
      cc.is_public = true;
    } else if (iequals(name, "max-age")) {
      if (!cc.max_age) cc.max_age = delta_seconds(value);  // the first valid one wins
    } else if (iequals(name, "s-maxage")) {
      if (!cc.s_maxage) cc.s_maxage = delta_seconds(value);
    }
  });
  return cc;
}

bool request_may_use_cache(std::string_view method, const server::Headers& request_headers, std::size_t body_size,
                           std::size_t max_object_bytes) {
  const bool get_or_head = method == "GET" || method == "HEAD";
  if (!get_or_head && method != "POST") return false;
  const CacheControl cc = cache_control(request_headers);
  if (cc.no_store) return false;
  if (get_or_head) return true;
  const bool opted_in = cc.is_public && (cc.max_age.value_or(0) > 0 || cc.s_maxage.value_or(0) > 0);
  return opted_in && body_size <= max_object_bytes;
}

bool wants_revalidation(const server::Headers& request_headers) {
  const CacheControl cc = cache_control(request_headers);
  return cc.no_cache || cc.max_age == 0;
}

std::optional<Lifetime> storable(int status, const server::Headers& response_headers,
                                 const server::Headers& request_headers, std::chrono::seconds default_ttl) {
  switch (status) {
    case 200: case 203: case 301: case 308: case 404: case 410: break;
    default: return std::nullopt;
  }
  const CacheControl response = cache_control(response_headers);
  if (response.no_store || response.is_private) return std::nullopt;
  bool vary_any = false;
  for_each_item(response_headers, "Vary", [&](std::string_view item) { vary_any = vary_any || item == "*"; });
  if (vary_any) return std::nullopt;

  // A response's `no-cache` (every use needs revalidation, which a hit never does) voids its own lifetimes and
  // the default; only the client's explicit opt-in still stores it. Providers send `no-cache` on every stream
  // (to keep intermediaries from buffering it), so this is how a stream is cached at all.
  Lifetime life;
  if (response.s_maxage && !response.no_cache) {
    life.ttl = std::chrono::seconds(*response.s_maxage);
  } else if (response.max_age && !response.no_cache) {
    life.ttl = std::chrono::seconds(*response.max_age);
  } else if (const CacheControl request = cache_control(request_headers);
             request.is_public && (request.s_maxage.value_or(0) > 0 || request.max_age.value_or(0) > 0)) {
    life.ttl = std::chrono::seconds(request.s_maxage.value_or(0) > 0 ? *request.s_maxage : *request.max_age);
    life.forced = true;
  } else if (!response.no_cache) {
    life.ttl = default_ttl;
  }
  if (life.ttl <= std::chrono::seconds(0)) return std::nullopt;
  return life;
}

std::string key(std::string_view project_id, std::string_view method, std::string_view target,
                const server::Headers& request_headers, std::string_view body) {
  std::string variant;
  for (const std::string_view name : {"Accept", "Accept-Encoding", "Accept-Language"}) {
    add_part(variant, combined_value(request_headers, name));
  }
  if (method == "POST") add_part(variant, util::sha256_hex(body));
  std::string out = hash_part(project_id);
  out.push_back(':');
  out.append(resource_part(method, target));
  out.push_back(':');
  out.append(hash_part(variant));
  return out;
}

std::string resource_pattern(std::string_view project_id, std::string_view method, std::string_view target) {
  std::string out = project_id.empty() ? std::string("*") : hash_part(project_id);
  out.push_back(':');
  out.append(resource_part(method, target));
  out.append(":*");
  return out;
}

std::string project_pattern(std::string_view project_id) { return hash_part(project_id) + ":*"; }

std::vector<std::pair<std::string, std::string>> vary_values(const server::Headers& response_headers,
                                                             const server::Headers& request_headers) {
  std::vector<std::pair<std::string, std::string>> out;
  for_each_item(response_headers, "Vary", [&](std::string_view item) {
    if (item == "*") return;
    std::string name = lower(item);
    const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
    if (!seen) out.emplace_back(std::move(name), std::string{});
  });
  for (auto& [name, value] : out) value = combined_value(request_headers, name);
  return out;
}

bool vary_matches(const Entry& entry, const server::Headers& request_headers) {
  return std::all_of(entry.vary.begin(), entry.vary.end(),
                     [&](const auto& p) { return combined_value(request_headers, p.first) == p.second; });
}

bool not_modified(const Entry& entry, const server::Headers& request_headers) {
  if (request_headers.contains("If-None-Match")) {
    // RFC 9110 §13.1.2: If-Modified-Since is ignored when If-None-Match is present.
    const std::string_view etag = trim_ows(entry.headers.get("ETag"));
    bool match = false;
    for_each_item(request_headers, "If-None-Match", [&](std::string_view item) {
      if (item == "*") {
        match = true;  // any current representation: the stored one is
      } else if (!etag.empty() && opaque_tag(item) == opaque_tag(etag)) {
        match = true;
      }
    });
    return match;
  }
  if (!request_headers.contains("If-Modified-Since")) return false;
  const auto since = parse_http_date(request_headers.get("If-Modified-Since"));
  const auto modified = parse_http_date(entry.headers.get("Last-Modified"));
  return since && modified && *modified <= *since;
}

server::Headers headers_to_store(const server::Headers& headers) {
  // Fields named by Connection are hop-by-hop too (RFC 9110 §7.6.1).
  std::vector<std::string> connection_named;
  for_each_item(headers, "Connection", [&](std::string_view item) { connection_named.emplace_back(item); });
  server::Headers out;
  out.reserve(headers.size());
  for (const auto& f : headers) {
    if (is_hop_by_hop(f.name) || is_per_request(f.name)) continue;
    if (std::any_of(connection_named.begin(), connection_named.end(),
                    [&](const std::string& n) { return iequals(n, f.name); })) {
      continue;
    }
    out.add(f.name, f.value);
  }
  return out;
}

}  // namespace llmproxy::cache
