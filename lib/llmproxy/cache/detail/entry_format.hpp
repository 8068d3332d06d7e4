#pragma once
/// The size of an Entry's binary form (entry.cpp), for the memory backend's accounting. Internal to the module.
#include <cstddef>

#include "llmproxy/cache/cache.hpp"

namespace llmproxy::cache::detail {

/// encode(entry).size(), computed without encoding (the memory backend's accounting).
std::size_t encoded_size(const Entry& entry);

}  // namespace llmproxy::cache::detail
