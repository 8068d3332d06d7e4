#pragma once
/// Light HTTP request/response types handed to handlers, so handlers (admin, ops, proxy) do not need Beast.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmproxy::server {

/// ASCII case-insensitive equality, for header names.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  // Inline: header filtering compares every field with a few dozen names, most of other lengths.
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i];
    const char y = b[i];
    if (x == y) continue;
    // Equal ignoring case only if they differ in the 0x20 bit and are ASCII letters.
    const char fx = static_cast<char>(x | 0x20);
    if (fx != static_cast<char>(y | 0x20) || fx < 'a' || fx > 'z') return false;
  }
  return true;
}

/// `s` escaped for the inside of a JSON string literal (no quotes added); bytes that are not well-formed UTF-8
/// (a raw request path, say) become U+FFFD, so the output is always valid JSON.
std::string json_escape(std::string_view s);

/// `v` without leading and trailing optional white space (spaces and tabs, RFC 9110 §5.6.3), for header values
/// and their comma-separated items.
std::string_view trim_ows(std::string_view v);

/// An ordered header list with case-insensitive lookup. Not thread-safe (owned by one request).
class Headers {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  /// The first value of `name`, or empty.
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  /// Replaces every `name` field by one with `value`.
  void set(std::string_view name, std::string_view value);
  /// Appends a field (repeated fields allowed).
  void add(std::string_view name, std::string_view value);
  /// Removes every `name` field.
  void remove(std::string_view name);
  /// Room for `n` fields without reallocating.
  void reserve(std::size_t n) { fields_.reserve(n); }

  const std::vector<Field>& fields() const { return fields_; }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

struct Request {
  std::string method;  // as sent, e.g. "POST"
  std::string target;  // path + query, e.g. "/v1/models?x=1"
  Headers headers;
  std::string body;
  std::string request_id;  // the client's valid X-Request-ID or a new UUID (set by the session)
  std::string correlation_id;  // the client's valid X-Correlation-ID (same rule), else empty (set by the session)
  std::string client_ip;

  /// The target without the query string.
  std::string_view path() const;
  /// The query string without '?', or empty.
  std::string_view query() const;
  /// The decoded value of query parameter `name`, if present.
  bool query_param(std::string_view name, std::string& value) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  /// A JSON response (`Content-Type: application/json`).
  static Response json(int status, std::string body);
  /// The project's error shape: `{"error":message,"code":code[,"description":description]}`.
  static Response error(int status, std::string_view code, std::string_view message,
                        std::string_view description = {});
};

/// Fields a handler adds to the request's access-log line. Never secrets.
struct AccessInfo {
  std::string route;       // metrics label: "proxy", "manage", "ops", "not_found"
  std::string token_hint;  // sk-AbCd...wXyZ
  std::string project_id;
  double upstream_ms = -1;  // < 0: no upstream call
};

}  // namespace llmproxy::server
