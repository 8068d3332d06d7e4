#include "llmproxy/upstream/detail/request_head.hpp"

#include <charconv>

namespace llmproxy::upstream::detail {

namespace {

/// RFC 9110 token characters (method and field names).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

/// Field values may hold any visible character, spaces and obs-text, but nothing that ends a line.
bool is_field_value(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
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

  out.clear();
  out.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& field : request.headers) {
    if (!is_token(field.name) || !is_field_value(field.value)) {
      throw Error(ErrorKind::protocol, "invalid header field in upstream request");
    }
    if (server::iequals(field.name, "content-length") || server::iequals(field.name, "transfer-encoding")) continue;
    has_host = has_host || server::iequals(field.name, "host");
    out.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  if (!has_host) out.append("Host: ").append(default_host).append("\r\n");
  if (!request.body.empty() || method_has_body(request.method)) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, request.body.size()).ptr;
    out.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace llmproxy::upstream::detail
