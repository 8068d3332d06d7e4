#pragma once
/// The HTTP/1.1 response parser of upstream connections (RFC 9112): header fields go straight into a
/// server::Headers and body bytes, de-chunked, straight into a caller-chosen string. Our own rather than Beast's
/// basic_parser: a proxied answer is parsed on every request, and this one costs about a third of the
/// instructions (no field-name table lookup, no per-field virtual calls, one pass over the header).
///
/// Strict where a lenient reading could desynchronise the connection: CRLF line endings only, no obs-fold, no
/// whitespace before a field's colon, field values without control characters, one Content-Length value (repeats
/// only if equal), Content-Length and Transfer-Encoding never together, chunk sizes of at most 16 hex digits.
/// A body is framed by (RFC 9112 §6.3): nothing for an answer to HEAD and for 1xx, 204 and 304; chunked when
/// the last transfer coding is `chunked`; else until the connection closes when any transfer coding is named;
/// else Content-Length; else until the connection closes. Trailer fields are read and dropped.
#include <boost/beast/core/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::upstream::detail {

class ResponseParser {
 public:
  /// Fields are appended to `headers`, which must outlive the parser.
  explicit ResponseParser(server::Headers& headers) : headers_(headers) {}

  /// The most header bytes accepted (status line and fields, up to the empty line included).
  void header_limit(std::uint32_t bytes) noexcept { header_limit_ = bytes; }
  /// The answer is to a HEAD request: it has no body, whatever its header says.
  void skip(bool head) noexcept { head_ = head; }
  /// Where decoded body bytes are appended from now on. Must be set before any body byte is parsed.
  void sink(std::string* out) noexcept { sink_ = out; }

  /// Parses the start of `input` and returns how many bytes it used (the caller drops them). The header is
  /// used only once complete (until then: 0 and http::error::need_more); parsing stops after it. In the body,
  /// everything usable is used; http::error::need_more when more input is needed to go on. Any other error is
  /// final.
  std::size_t put(std::string_view input, boost::beast::error_code& ec);
  /// The input ended: completes a body delimited by the close; anything else unfinished is
  /// http::error::partial_message (or end_of_stream when nothing came at all).
  void put_eof(boost::beast::error_code& ec);

  bool got_some() const noexcept { return got_some_; }
  bool is_header_done() const noexcept { return state_ != State::header; }
  bool is_done() const noexcept { return state_ == State::done; }

  int status() const noexcept { return status_; }
  /// The connection may carry another request once this answer is read.
  bool keep_alive() const noexcept { return keep_alive_ && !need_eof_; }
  bool chunked() const noexcept { return chunked_; }
  /// The body ends when the connection closes.
  bool need_eof() const noexcept { return need_eof_; }
  /// Body bytes still expected, for a body framed by Content-Length.
  std::optional<std::uint64_t> content_length_remaining() const {
    if (state_ == State::length) return remaining_;
    if (state_ == State::done && content_length_ && !chunked_) return 0;
    return std::nullopt;
  }

 private:
  enum class State { header, length, until_close, chunk_size, chunk_data, chunk_end, trailer, done };

  std::size_t parse_header(std::string_view input, boost::beast::error_code& ec);
  /// `checked`: the line has no control characters but HTAB (plain_text_lines()).
  bool parse_status_line(std::string_view line, bool checked, boost::beast::error_code& ec);
  bool parse_field(std::string_view line, bool checked, boost::beast::error_code& ec);
  std::size_t parse_body(std::string_view input, boost::beast::error_code& ec);
  std::size_t parse_chunked(std::string_view input, boost::beast::error_code& ec);

  server::Headers& headers_;
  std::string* sink_ = nullptr;
  std::uint32_t header_limit_ = 8192;
  bool head_ = false;
  bool got_some_ = false;
  State state_ = State::header;
  std::size_t scanned_ = 0;  // header bytes already searched for the empty line

  int status_ = 0;
  int minor_version_ = 1;
  bool keep_alive_ = true;
  bool connection_close_ = false, connection_keep_alive_ = false;
  std::optional<std::uint64_t> content_length_;
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;
  bool need_eof_ = false;
  std::uint64_t remaining_ = 0;   // of the Content-Length body, or of the current chunk
  std::size_t trailer_bytes_ = 0;
};

}  // namespace llmproxy::upstream::detail
