#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/cache/cache.hpp"
#include "llmproxy/cache/detail/entry_format.hpp"

namespace llmproxy::cache {

namespace {

// Layout (all integers little-endian):
//   "LPCE" | version u8 (=1) | flags u8 (bit 0 forced, bit 1 stream; other bits 0) | status u16 |
//   stored_at_ms i64 | expires_at_ms i64 |
//   header count u32 | count x (name len u32, name, value len u32, value) |
//   vary count u32   | count x (name len u32, name, value len u32, value) |
//   body len u32 | body
// Nothing may follow the body. decode() accepts exactly what encode() writes, so encode(decode(x)) == x.
constexpr std::string_view kMagic = "LPCE";
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kForced = 0x01;
constexpr std::uint8_t kStream = 0x02;
constexpr std::size_t kFixed = 4 + 1 + 1 + 2 + 8 + 8;  // magic .. expires_at_ms
constexpr std::size_t kLength = 4;

void put_uint(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::string_view s) {
  put_uint(out, s.size(), 4);
  out.append(s);
}

/// A bounds-checked reader: every read fails (and stays failed) past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool uint(int bytes, std::uint64_t& v) {
    if (in_.size() < static_cast<std::size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(static_cast<std::size_t>(bytes));
    return true;
  }
  bool bytes(std::string& s) {
    std::uint64_t n = 0;
    if (!uint(4, n) || n > in_.size()) return false;
    s.assign(in_.data(), static_cast<std::size_t>(n));
    in_.remove_prefix(static_cast<std::size_t>(n));
    return true;
  }
  bool literal(std::string_view s) {
    if (in_.substr(0, s.size()) != s) return false;
    in_.remove_prefix(s.size());
    return true;
  }
  std::size_t left() const { return in_.size(); }

 private:
  std::string_view in_;
};

bool clean_field(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

/// `count` (name, value) pairs, each checked; `add(name, value)` stores one.
template <class Add>
bool read_pairs(Reader& r, bool name_required, Add add) {
  std::uint64_t count = 0;
  if (!r.uint(4, count)) return false;
  // Each pair takes at least two length fields: a count beyond that is a lie (and no huge loop follows it).
  if (count > r.left() / (2 * kLength)) return false;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string name;
    std::string value;
    if (!r.bytes(name) || !r.bytes(value)) return false;
    if ((name_required && name.empty()) || !clean_field(name) || !clean_field(value)) return false;
    add(std::move(name), std::move(value));
  }
  return true;
}

}  // namespace

namespace detail {

std::size_t encoded_size(const Entry& entry) {
  std::size_t n = kFixed + 3 * kLength + entry.body.size();
  for (const auto& f : entry.headers) n += 2 * kLength + f.name.size() + f.value.size();
  for (const auto& [name, value] : entry.vary) n += 2 * kLength + name.size() + value.size();
  return n;
}

std::uint64_t memory_footprint(std::string_view key, const Entry& entry) {
  return key.size() + encoded_size(entry) + (entry.body.capacity() - entry.body.size()) + kEntryOverhead +
         kFieldOverhead * (entry.headers.size() + entry.vary.size());
}

}  // namespace detail

std::string encode(const Entry& entry) {
  std::string out;
  out.reserve(detail::encoded_size(entry));
  out.append(kMagic);
  put_uint(out, kVersion, 1);
  put_uint(out, (entry.forced ? kForced : 0) | (entry.stream ? kStream : 0), 1);
  put_uint(out, static_cast<std::uint16_t>(entry.status), 2);
  put_uint(out, static_cast<std::uint64_t>(entry.stored_at_ms), 8);
  put_uint(out, static_cast<std::uint64_t>(entry.expires_at_ms), 8);
  put_uint(out, entry.headers.size(), 4);
  for (const auto& f : entry.headers) {
    put_bytes(out, f.name);
    put_bytes(out, f.value);
  }
  put_uint(out, entry.vary.size(), 4);
  for (const auto& [name, value] : entry.vary) {
    put_bytes(out, name);
    put_bytes(out, value);
  }
  put_bytes(out, entry.body);
  return out;
}

std::optional<Entry> decode(std::string_view bytes) {
  Reader r(bytes);
  Entry e;
  std::uint64_t version = 0;
  std::uint64_t flags = 0;
  std::uint64_t status = 0;
  std::uint64_t stored = 0;
  std::uint64_t expires = 0;
  if (!r.literal(kMagic) || !r.uint(1, version) || version != kVersion) return std::nullopt;
  if (!r.uint(1, flags) || (flags & ~static_cast<std::uint64_t>(kForced | kStream)) != 0) return std::nullopt;
  if (!r.uint(2, status) || status < 100 || status > 999) return std::nullopt;
  if (!r.uint(8, stored) || !r.uint(8, expires)) return std::nullopt;
  e.status = static_cast<int>(status);
  e.forced = (flags & kForced) != 0;
  e.stream = (flags & kStream) != 0;
  e.stored_at_ms = static_cast<std::int64_t>(stored);
  e.expires_at_ms = static_cast<std::int64_t>(expires);
  if (!read_pairs(r, true, [&](std::string n, std::string v) { e.headers.add(n, v); })) return std::nullopt;
  if (!read_pairs(r, true, [&](std::string n, std::string v) { e.vary.emplace_back(std::move(n), std::move(v)); })) {
    return std::nullopt;
  }
  if (!r.bytes(e.body) || r.left() != 0) return std::nullopt;
  return e;
}

}  // namespace llmproxy::cache
