#pragma once
/// Parsing of the `Authorization` request header.
#include <optional>
#include <string_view>

namespace llmproxy::auth::detail {

/// The credentials of `Bearer <credentials>`: the scheme is case-insensitive, separated by spaces or tabs;
/// surrounding whitespace is ignored. nullopt for another scheme, no credentials or whitespace inside them.
/// Views `header`; allocates nothing.
std::optional<std::string_view> bearer_credentials(std::string_view header);

}  // namespace llmproxy::auth::detail
