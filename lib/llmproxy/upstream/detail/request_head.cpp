#include "llmproxy/upstream/detail/request_head.hpp"

#include <array>
#include <charconv>

#include "llmproxy/server/head_writer.hpp"

namespace llmproxy::upstream::detail {

namespace {

/// RFC 9110 token characters (method and field names), as a table: the check runs for every forwarded field.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (unsigned char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'}) t[c] = true;
  return t;
}();

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  return true;
}

/// Field values may hold any visible character, spaces and obs-text, but nothing that ends a line.
bool is_field_value(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) <= '\r' && (c == '\r' || c == '\n' || c == '\0')) return false;
  return true;
}

bool is_target(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f) return false;
  return true;
}

bool method_has_body(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

}  // namespace

void write_request_head(const Request& request, std::string_view default_host, std::string& out) {
  if (!is_token(request.method)) throw Error(ErrorKind::protocol, "invalid method in upstream request");
  if (!is_target(request.target)) throw Error(ErrorKind::protocol, "invalid target in upstream request");

  // The head's size is bounded before writing it: one allocation at most, no capacity check per piece.
  std::size_t bound = request.method.size() + request.target.size() + default_host.size() + 64;
  for (const auto& field : request.headers) bound += field.name.size() + field.value.size() + 4;
  server::HeadWriter w(out, bound);
  w.put(request.method).put(" ").put(request.target).put(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& field : request.headers) {
    if (!is_token(field.name) || !is_field_value(field.value)) {
      throw Error(ErrorKind::protocol, "invalid header field in upstream request");
    }
    const std::string_view name = field.name;
    if (server::iequals(name, "content-length") || server::iequals(name, "transfer-encoding")) continue;
    has_host = has_host || server::iequals(name, "host");
    w.put(name).put(": ").put(field.value).put("\r\n");
  }
  if (!has_host) w.put("Host: ").put(default_host).put("\r\n");
  if (!request.body.empty() || method_has_body(request.method)) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, request.body.size()).ptr;
    w.put("Content-Length: ").put(std::string_view(digits, static_cast<std::size_t>(end - digits))).put("\r\n");
  }
  w.put("\r\n");
}

}  // namespace llmproxy::upstream::detail
