#pragma once
/// A hash for keys that are random already: SHA-256 digests in hex (the token caches' keys) and generated ids
/// (UUIDs: project and token ids). std::hash reads every byte (64 for a digest, about 100 instructions); this
/// reads three 8-byte words, at the start, the middle and the end, and mixes them with the length. Keys shorter
/// than 16 bytes go to std::hash. Keys that share those 24 bytes all land in one bucket: use it only where keys
/// are not chosen by a client (a digest of a client's token is not chosen).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>

namespace llmproxy::auth::detail {

struct IdHash {
  using is_transparent = void;  // std::string keys searched with a string_view
  std::size_t operator()(std::string_view key) const noexcept {
    if (key.size() < 16) return std::hash<std::string_view>{}(key);
    std::uint64_t first = 0, middle = 0, last = 0;
    std::memcpy(&first, key.data(), 8);
    std::memcpy(&middle, key.data() + key.size() / 2 - 4, 8);
    std::memcpy(&last, key.data() + key.size() - 8, 8);
    std::uint64_t h = first * 0x9E3779B97F4A7C15ull ^ middle * 0xC2B2AE3D27D4EB4Full ^ last * 0x165667B19E3779F9ull ^
                      key.size();
    h ^= h >> 29;
    return static_cast<std::size_t>(h);
  }
};

}  // namespace llmproxy::auth::detail
