#include "llmproxy/upstream/detail/request_head.hpp"

#include <array>
#include <charconv>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "llmproxy/server/head_writer.hpp"
#include "llmproxy/server/token_chars.hpp"

namespace llmproxy::upstream::detail {

namespace {

using server::kTokenChar;

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  return true;
}

/// Field values may hold any visible character, spaces and obs-text, but nothing that ends a line. 16 bytes per
/// step with SSE2 (every x86-64 has it): every forwarded value is checked, the API key's among them.
bool is_field_value(std::string_view s) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i nul = _mm_setzero_si128();
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(block, cr), _mm_cmpeq_epi8(block, lf)),
                                     _mm_cmpeq_epi8(block, nul));
    if (_mm_movemask_epi8(bad) != 0) return false;
  }
#endif
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
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
