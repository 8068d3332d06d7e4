#pragma once
/// Writes an HTTP head (a request or status line and its fields) into a string, sized once: the server's
/// response heads and the upstream request heads are built on every proxied request, and a std::string append
/// per piece (a capacity check, a length, a call) cost more than the bytes themselves.
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

namespace llmproxy::server {

class HeadWriter {
 public:
  /// Clears `out` (its capacity is kept) and makes room for `bound` bytes, the most the caller will put. Putting
  /// more stays correct (the string grows), just slower.
  HeadWriter(std::string& out, std::size_t bound) : out_(out) {
    out_.clear();
    out_.resize(bound);
  }
  /// Trims `out` to what was put.
  ~HeadWriter() { out_.resize(at_); }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  /// Inlined on purpose: most pieces are literals, whose copy then compiles to a few moves.
  [[gnu::always_inline]] HeadWriter& put(std::string_view piece) {
    if (piece.empty()) return *this;
    if (piece.size() > out_.size() - at_) [[unlikely]] out_.resize(std::max(out_.size() * 2, at_ + piece.size()));
    std::memcpy(out_.data() + at_, piece.data(), piece.size());
    at_ += piece.size();
    return *this;
  }

  /// Bytes put so far.
  std::size_t size() const { return at_; }

 private:
  std::string& out_;
  std::size_t at_ = 0;
};

}  // namespace llmproxy::server
