#pragma once
/// The purge pattern rule of cache::Backend::purge (cache.hpp). Internal to the module.
#include <string_view>

namespace llmproxy::cache::detail {

/// Whether `pattern` matches all of `text`: '*' matches any run of bytes (also none), every other byte only
/// itself. O(|pattern| * |text|) at worst (greedy with one backtrack point), never recursive.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace llmproxy::cache::detail
