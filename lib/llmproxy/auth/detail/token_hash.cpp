#include "llmproxy/auth/detail/token_hash.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "llmproxy/util/crypto.hpp"

namespace llmproxy::auth::detail {

namespace {

constexpr std::size_t kSlots = 64;            // a power of two
constexpr std::size_t kMaxTokenBytes = 64;    // longer inputs are hashed every time (well-formed ones are 25)
constexpr std::size_t kHexBytes = 64;         // SHA-256, hex

struct Slot {
  std::uint8_t size = 0;  // 0: empty
  std::array<char, kMaxTokenBytes> token{};
  std::array<char, kHexBytes> hash{};
};

/// The slot for `token`: its last 8 bytes (the random part of a well-formed token), mixed.
std::size_t slot_of(std::string_view token) {
  std::uint64_t tail = 0;
  const std::size_t n = token.size() < sizeof tail ? token.size() : sizeof tail;
  std::memcpy(&tail, token.data() + token.size() - n, n);
  return static_cast<std::size_t>((tail * 0x9E3779B97F4A7C15ull) >> 58) & (kSlots - 1);
}

}  // namespace

std::string_view token_hash(std::string_view token) {
  thread_local std::array<Slot, kSlots> slots;
  thread_local std::string scratch;  // for inputs too long for a slot
  if (token.empty() || token.size() > kMaxTokenBytes) {
    scratch = util::sha256_hex(token);
    return scratch;
  }
  Slot& slot = slots[slot_of(token)];
  if (slot.size != token.size() ||
      !util::constant_time_equal(std::string_view(slot.token.data(), token.size()), token)) {
    const std::string hash = util::sha256_hex(token);
    std::memcpy(slot.hash.data(), hash.data(), kHexBytes);
    std::memcpy(slot.token.data(), token.data(), token.size());
    slot.size = static_cast<std::uint8_t>(token.size());
  }
  return {slot.hash.data(), kHexBytes};
}

}  // namespace llmproxy::auth::detail
