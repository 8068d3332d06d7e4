#pragma once
/// Serializes the head of an upstream HTTP/1.1 request straight into a reusable string (no Beast fields
/// container: one append per field instead of one allocation per field).
#include <string>
#include <string_view>

#include "llmproxy/upstream/client.hpp"

namespace llmproxy::upstream::detail {

/// Writes request line, the caller's headers (in order, as given), `Host: default_host` when the caller set
/// none, and `Content-Length` when there is a body or the method conventionally carries one. Framing fields the
/// caller passed (Content-Length, Transfer-Encoding) are dropped: the body is sent whole with its own length.
/// `out` is cleared first. Throws Error{protocol} if the method, target or a header could split the message
/// (CR, LF, NUL, or a bad token); the message never contains header values.
void write_request_head(const Request& request, std::string_view default_host, std::string& out);

}  // namespace llmproxy::upstream::detail
