#include "llmproxy/server/http_types.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/utf8.hpp"

namespace llmproxy::server {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t len = util::utf8_sequence(s.substr(i));
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* kHex = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

Headers::Headers(const Headers& other, std::size_t extra_bytes, std::size_t extra_fields)
    : used_(other.used_) {
  if (extra_bytes > std::numeric_limits<std::uint32_t>::max() - std::size_t{used_}) {
    throw std::length_error("header list too large");
  }
  capacity_ = static_cast<std::uint32_t>(used_ + extra_bytes);
  index_.reserve(other.index_.size() + extra_fields);
  index_ = other.index_;
  if (capacity_ > 0) {
    bytes_ = std::make_unique_for_overwrite<char[]>(capacity_);
    if (used_ > 0) std::memcpy(bytes_.get(), other.bytes_.get(), used_);
  }
}

Headers& Headers::operator=(const Headers& other) {
  if (this != &other) *this = Headers(other);
  return *this;
}

Headers::Headers(Headers&& other) noexcept
    : bytes_(std::move(other.bytes_)),
      used_(std::exchange(other.used_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      index_(std::move(other.index_)) {
  other.index_.clear();
}

Headers& Headers::operator=(Headers&& other) noexcept {
  if (this != &other) {
    bytes_ = std::move(other.bytes_);
    used_ = std::exchange(other.used_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    index_ = std::move(other.index_);
    other.index_.clear();
  }
  return *this;
}

std::string_view Headers::get(std::string_view name) const {
  for (const auto& e : index_) {
    if (is(e, name)) return std::string_view(bytes_.get() + e.value_at, e.value_len);
  }
  return {};
}

bool Headers::contains(std::string_view name) const {
  return std::any_of(index_.begin(), index_.end(), [&](const Entry& e) { return is(e, name); });
}

void Headers::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

void Headers::add(std::string_view name, std::string_view value) {
  if (inside(name) || inside(value)) {
    // A view of this list (e.g. add(n, get(m))): growing the buffer would free its bytes before they are copied.
    const std::string copy = std::string(name).append(value);
    add(std::string_view(copy).substr(0, name.size()), std::string_view(copy).substr(name.size()));
    return;
  }
  grow_for(name.size() + value.size());
  char* out = bytes_.get() + used_;
  if (!name.empty()) std::memcpy(out, name.data(), name.size());
  if (!value.empty()) std::memcpy(out + name.size(), value.data(), value.size());
  index_.push_back(Entry{used_, static_cast<std::uint32_t>(name.size()), static_cast<std::uint32_t>(used_ + name.size()),
                         static_cast<std::uint32_t>(value.size())});
  used_ += static_cast<std::uint32_t>(name.size() + value.size());
}

void Headers::grow_for(std::size_t extra) {
  const std::size_t needed = std::size_t{used_} + extra;
  // Header sections are bounded far below 4 GiB (MAX_HEADER_SIZE, the upstream header limit).
  if (needed > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("header list too large");
  if (needed <= capacity_) return;
  // A typical request's or response's fields fit the first allocation of each.
  const std::size_t grown = std::max<std::size_t>({512, std::size_t{capacity_} * 2, needed});
  const std::size_t capacity = std::min<std::size_t>(grown, std::numeric_limits<std::uint32_t>::max());
  auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
  if (used_ > 0) std::memcpy(bigger.get(), bytes_.get(), used_);
  bytes_ = std::move(bigger);
  capacity_ = static_cast<std::uint32_t>(capacity);
  if (index_.capacity() < 16) index_.reserve(16);
}

std::uint32_t Headers::append_bytes(std::string_view bytes) {
  grow_for(bytes.size());
  const std::uint32_t at = used_;
  if (!bytes.empty()) std::memcpy(bytes_.get() + used_, bytes.data(), bytes.size());
  used_ += static_cast<std::uint32_t>(bytes.size());
  return at;
}

void Headers::remove(std::string_view name) {
  std::erase_if(index_, [&](const Entry& e) { return is(e, name); });
}

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

bool Request::query_param(std::string_view name, std::string& value) const {
  std::string_view q = query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    auto eq = pair.find('=');
    std::string key = util::percent_decode(pair.substr(0, eq), util::Plus::space);
    if (key == name) {
      value = eq == std::string_view::npos ? std::string{} : util::percent_decode(pair.substr(eq + 1), util::Plus::space);
      return true;
    }
  }
  return false;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

Response Response::error(int status, std::string_view code, std::string_view message,
                         std::string_view description) {
  std::string body = "{\"error\":\"" + json_escape(message) + "\",\"code\":\"" + json_escape(code) + "\"";
  if (!description.empty()) body += ",\"description\":\"" + json_escape(description) + "\"";
  body += "}";
  return json(status, std::move(body));
}

}  // namespace llmproxy::server
