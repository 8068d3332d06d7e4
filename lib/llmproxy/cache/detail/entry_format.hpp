#pragma once
/// Sizes of an Entry: its binary form (entry.cpp) and what the memory backend charges for it. Internal to the module.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llmproxy/cache/cache.hpp"

namespace llmproxy::cache::detail {

/// encode(entry).size(), computed without encoding (the memory backend's accounting).
std::size_t encoded_size(const Entry& entry);

/// Bookkeeping the memory backend holds per entry beyond its bytes (LRU node, index node, shared_ptr control
/// block, the Entry and Headers objects), and per header or Vary field beyond the encoding's two length prefixes
/// (two std::string objects, allocator rounding, vector slack). Estimates for 64-bit libstdc++ and glibc malloc:
/// the charge came within 2% below to 15% above the heap really used with 0, 2 and 10 header fields (28% above
/// with 30).
inline constexpr std::uint64_t kEntryOverhead = 256;
inline constexpr std::uint64_t kFieldOverhead = 96;

/// What one entry under `key` counts against the memory backend's max_bytes: key + encoded size + the body's
/// unused capacity (a body grown by appending holds up to twice its size: shrink it before storing) + overheads.
std::uint64_t memory_footprint(std::string_view key, const Entry& entry);

}  // namespace llmproxy::cache::detail
