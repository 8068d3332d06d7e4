#pragma once
/// `$n` -> `?n` rewriting, so every query is written once in the PostgreSQL style.
#include <string>
#include <string_view>

namespace llmproxy::db::sqlite::detail {

/// Rewrites each positional parameter `$<digits>` to `?<digits>` (same number, so `$2` used twice stays one
/// parameter). SQLite would read a bare `$1` as a *named* parameter with its own index. Text inside '...'
/// strings, "..." / `...` / [...] identifiers and -- / /* */ comments is copied unchanged, as is a `$` not
/// followed by a digit. Pure function; any thread.
std::string rewrite_placeholders(std::string_view sql);

}  // namespace llmproxy::db::sqlite::detail
