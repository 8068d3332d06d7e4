#pragma once
/// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), for the places
/// that pass text from clients or upstreams on to JSON, logs and databases.
#include <cstddef>
#include <string_view>

namespace llmproxy::util {

/// The length (1-4) of the well-formed UTF-8 sequence at the start of `s`, or 0 if there is none (or `s` is
/// empty). An ASCII byte is a sequence of 1.
std::size_t utf8_sequence(std::string_view s);

/// Whether all of `s` is well-formed UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace llmproxy::util
