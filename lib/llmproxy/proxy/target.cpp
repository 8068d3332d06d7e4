#include "llmproxy/proxy/target.hpp"

namespace llmproxy::proxy {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7F; }

bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/// Whether `path` (starting with '/') is already in normal form: letters, digits, '-', '_', '~' and single '/',
/// so nothing to decode and no dot or empty segment. What clients send almost always.
bool is_plain_path(std::string_view path) noexcept {
  for (std::size_t i = 1; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '~') {
      continue;
    }
    if (c != '/' || path[i - 1] == '/') return false;
  }
  return true;
}

NormalisedTarget refuse(std::string reason) {
  NormalisedTarget t;
  t.error = std::move(reason);
  return t;
}

}  // namespace

std::string NormalisedTarget::target() const { return has_query ? path + "?" + query : path; }

NormalisedTarget normalise_target(std::string_view raw) {
  const std::size_t question = raw.find('?');
  const std::string_view path = raw.substr(0, question);
  if (path.empty() || path.front() != '/') return refuse("the request path must start with '/'");

  NormalisedTarget out;
  if (question != std::string_view::npos) {
    out.has_query = true;
    const std::string_view query = raw.substr(question + 1);
    for (const char c : query) {
      if (is_control(static_cast<unsigned char>(c))) return refuse("the query string contains a control character");
    }
    out.query.assign(query);
  }

  if (is_plain_path(path)) {
    out.path.assign(path);
    return out;
  }

  // One pass: decode into the current segment, then judge the segment when its '/' (or the end) arrives.
  // `decoded` holds the segment with unreserved escapes decoded (the form '.' and '..' are recognised in);
  // the segment's text is appended to the output as it goes, so dot-segments are undone by truncation.
  out.path.reserve(path.size());
  out.path.push_back('/');
  std::size_t segment_start = out.path.size();
  auto close_segment = [&](bool last) -> const char* {
    const std::string_view segment = std::string_view(out.path).substr(segment_start);
    if (segment == "..") return "the request path contains a '..' segment";
    if (segment == ".") {
      out.path.resize(segment_start);  // drop it; its trailing '/' (if any) is the one already there
    } else if (segment.empty()) {
      // Empty segment ("//" or the trailing one): nothing to add; the '/' already there stands for it.
    } else if (!last) {
      out.path.push_back('/');
    }
    segment_start = out.path.size();
    return nullptr;
  };

  for (std::size_t i = 1; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c == '/') {
      if (const char* problem = close_segment(false)) return refuse(problem);
      continue;
    }
    if (c == '\\') return refuse("the request path contains a backslash");
    if (is_control(c)) return refuse("the request path contains a control character");
    if (c != '%') {
      out.path.push_back(static_cast<char>(c));
      continue;
    }
    if (i + 2 >= path.size()) return refuse("the request path has a malformed percent-escape");
    const int hi = hex_value(path[i + 1]);
    const int lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return refuse("the request path has a malformed percent-escape");
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (decoded == '/') return refuse("the request path contains an encoded '/'");
    if (decoded == '\\') return refuse("the request path contains an encoded backslash");
    if (is_control(decoded)) return refuse("the request path contains an encoded control character");
    if (is_unreserved(decoded)) {
      out.path.push_back(static_cast<char>(decoded));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.path.push_back('%');
      out.path.push_back(kHex[decoded >> 4]);
      out.path.push_back(kHex[decoded & 0x0F]);
    }
  }
  if (const char* problem = close_segment(true)) return refuse(problem);
  return out;
}

bool endpoint_matches(std::string_view prefix, std::string_view path) noexcept {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.empty() || prefix.back() == '/') return true;
  return path[prefix.size()] == '/';
}

}  // namespace llmproxy::proxy
