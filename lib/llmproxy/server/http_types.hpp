#pragma once
/// Light HTTP request/response types handed to handlers, so handlers (admin, ops, proxy) do not need Beast.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
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
///
/// Names and values live in one buffer (an index of offsets beside it), so adding a field copies its bytes
/// instead of allocating two strings: a proxied request copies some twenty fields between the parsers, the
/// filters and the serialisers. Views returned by get() and by iteration are valid until the next change.
class HttpParser;

class Headers {
 public:
  /// One field, viewing the list's buffer.
  struct Field {
    std::string_view name;
    std::string_view value;
  };

  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Field;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Field;

    const_iterator() = default;
    Field operator*() const { return owner_->field(i_); }
    Field operator[](difference_type n) const { return owner_->field(i_ + static_cast<std::size_t>(n)); }
    const_iterator& operator++() { ++i_; return *this; }
    const_iterator operator++(int) { auto old = *this; ++i_; return old; }
    const_iterator& operator--() { --i_; return *this; }
    const_iterator operator--(int) { auto old = *this; --i_; return old; }
    const_iterator& operator+=(difference_type n) { i_ = static_cast<std::size_t>(static_cast<difference_type>(i_) + n); return *this; }
    const_iterator& operator-=(difference_type n) { return *this += -n; }
    friend const_iterator operator+(const_iterator it, difference_type n) { return it += n; }
    friend const_iterator operator+(difference_type n, const_iterator it) { return it += n; }
    friend const_iterator operator-(const_iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const const_iterator& a, const const_iterator& b) { return a.i_ <=> b.i_; }

   private:
    friend class Headers;
    const_iterator(const Headers* owner, std::size_t i) : owner_(owner), i_(i) {}
    const Headers* owner_ = nullptr;
    std::size_t i_ = 0;
  };

  Headers() = default;
  Headers(const Headers& other) : Headers(other, 0, 0) {}
  /// A copy with room for `extra_bytes` more bytes of names and values and `extra_fields` more fields: adding
  /// that much to it allocates nothing.
  Headers(const Headers& other, std::size_t extra_bytes, std::size_t extra_fields);
  Headers& operator=(const Headers& other);
  Headers(Headers&& other) noexcept;
  Headers& operator=(Headers&& other) noexcept;
  ~Headers() = default;

  /// The first value of `name`, or empty.
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  /// Replaces every `name` field by one with `value`.
  void set(std::string_view name, std::string_view value);
  /// Appends a field (repeated fields allowed).
  void add(std::string_view name, std::string_view value);
  /// Removes every `name` field.
  void remove(std::string_view name);
  /// Removes every field for which `pred(Field)` is true, keeping the others in order. The bytes stay where they
  /// are (views of them remain valid while `pred` runs); nothing is allocated.
  template <class Pred>
  void remove_if(Pred pred) {
    std::erase_if(index_, [&](const Entry& e) {
      return pred(Field{std::string_view(bytes_.get() + e.name_at, e.name_len),
                        std::string_view(bytes_.get() + e.value_at, e.value_len)});
    });
  }
  /// Room for `n` fields without reallocating the index.
  void reserve(std::size_t n) { index_.reserve(n); }

  std::size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  /// Field `i` (0 <= i < size()), in the order added.
  Field operator[](std::size_t i) const { return field(i); }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, index_.size()}; }

 private:
  friend class HttpParser;
  /// Appends `bytes` (not a view of this list) to the byte buffer and returns the offset they start at. Fields
  /// inside them are then added by offset (add_at): one copy for a whole parsed header instead of one per field.
  std::uint32_t append_bytes(std::string_view bytes);
  void add_at(std::uint32_t name_at, std::size_t name_len, std::uint32_t value_at, std::size_t value_len) {
    index_.push_back(Entry{name_at, static_cast<std::uint32_t>(name_len), value_at,
                           static_cast<std::uint32_t>(value_len)});
  }
  /// Room for `extra` more bytes: the buffer grown (contents kept) if needed.
  void grow_for(std::size_t extra);

  struct Entry {
    std::uint32_t name_at;
    std::uint32_t name_len;
    std::uint32_t value_at;
    std::uint32_t value_len;
  };
  Field field(std::size_t i) const {
    const Entry& e = index_[i];
    return {std::string_view(bytes_.get() + e.name_at, e.name_len),
            std::string_view(bytes_.get() + e.value_at, e.value_len)};
  }
  bool is(const Entry& e, std::string_view name) const {
    return iequals(std::string_view(bytes_.get() + e.name_at, e.name_len), name);
  }
  bool inside(std::string_view v) const {
    return !v.empty() && v.data() >= bytes_.get() && v.data() < bytes_.get() + capacity_;
  }

  std::unique_ptr<char[]> bytes_;  // names and values, back to back (removed fields leave their bytes)
  std::uint32_t used_ = 0;
  std::uint32_t capacity_ = 0;
  std::vector<Entry> index_;
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
