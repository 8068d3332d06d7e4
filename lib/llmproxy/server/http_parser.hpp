#pragma once
/// The HTTP/1.1 message parser (RFC 9112) of both sides of the proxy: requests from clients (the session) and
/// responses from upstreams (upstream::Client). Header fields go straight into a Headers and body bytes,
/// de-chunked, straight into a caller-chosen string. Our own rather than Beast's basic_parser: two messages are
/// parsed per proxied request, and this costs about half the instructions (no field-name table lookup, no
/// virtual call per field, reason phrase and values checked in one vector pass).
///
/// Strict where a lenient reading could desynchronise a connection: CRLF line endings only, no obs-fold, no
/// whitespace before a field's colon, field values and reason phrases without control characters but HTAB,
/// request targets without spaces or control characters, HTTP/1.0 and HTTP/1.1 only, chunk sizes of at most 16
/// hex digits and chunk lines of at most 4 KiB. Trailer fields are read, checked and dropped.
///
/// Requests: the parser tallies Host, Content-Length and Transfer-Encoding fields (`Tally`) and frames the body
/// by a single valid Content-Length, or by chunked when Transfer-Encoding's last coding is chunked; the session
/// refuses every other combination (check_head) before reading a body. A declared length above the body limit is
/// http::error::body_limit as soon as the header is parsed; a chunked body is cut off there too.
/// Responses (RFC 9112 §6.3): no body for an answer to HEAD and for 1xx, 204 and 304; chunked when the last
/// transfer coding is chunked (anything after chunked, chunked twice, or a coding with parameters is an error);
/// else until the connection
/// closes when any transfer coding is named; else Content-Length (repeats only if equal; never together with
/// Transfer-Encoding); else until the connection closes.
#include <boost/beast/core/error.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::server {

class HttpParser {
 public:
  enum class Kind { request, response };

  /// For requests: how many fields of each kind framing depends on, and where the last ones are in `headers`.
  struct Tally {
    std::size_t fields = 0, hosts = 0, lengths = 0, encodings = 0;
    std::size_t length_at = 0, encoding_at = 0;
  };

  /// Fields are appended to `headers`, which must outlive the parser.
  HttpParser(Kind kind, Headers& headers) : kind_(kind), headers_(headers) {}

  /// The most header bytes accepted (start line and fields, up to the empty line included).
  void header_limit(std::uint32_t bytes) noexcept { header_limit_ = bytes; }
  /// The largest body accepted (requests; decoded size for a chunked one).
  void body_limit(std::uint64_t bytes) noexcept { body_limit_ = bytes; }
  /// The answer is to a HEAD request: it has no body, whatever its header says (responses).
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

  /// 10 or 11.
  unsigned version() const noexcept { return 10 + static_cast<unsigned>(minor_version_); }
  /// Requests: the method and the target as sent.
  const std::string& method() const noexcept { return method_; }
  std::string& method() noexcept { return method_; }
  const std::string& target() const noexcept { return target_; }
  const Tally& tally() const noexcept { return tally_; }
  /// Responses: the status code.
  int status() const noexcept { return status_; }
  /// The connection may carry another message after this one.
  bool keep_alive() const noexcept { return keep_alive_ && !need_eof_; }
  bool chunked() const noexcept { return chunked_; }
  /// The body ends when the connection closes (responses).
  bool need_eof() const noexcept { return need_eof_; }
  /// Body bytes still expected, for a body framed by Content-Length.
  std::optional<std::uint64_t> content_length_remaining() const {
    if (state_ == State::length) return remaining_;
    if (state_ == State::done && content_length_ && !chunked_) return 0;
    return std::nullopt;
  }

 private:
  enum class State { header, length, until_close, chunk_size, chunk_data, chunk_end, trailer, done };

  struct LineIndex;
  std::size_t parse_header(std::string_view input, boost::beast::error_code& ec);
  /// Finds every line and first colon of `head` in one vector pass; false (and nothing changed) unless every line
  /// ends in CRLF and no control character but HTAB is in it.
  static bool index_lines(std::string_view head, LineIndex& lines);
  /// The header of such a head: the fields' bytes copied at once, each field an offset into them.
  bool parse_plain_head(std::string_view head, const LineIndex& lines, boost::beast::error_code& ec);
  /// Any head, line by line, with the exact error for a bad one.
  bool parse_lines(std::string_view head, boost::beast::error_code& ec);
  /// The tally and framing facts of the field just added.
  void note_field(std::string_view name, std::string_view value);
  /// `checked`: the line has no control characters but HTAB (plain_text_lines()).
  bool parse_request_line(std::string_view line, boost::beast::error_code& ec);
  bool parse_status_line(std::string_view line, bool checked, boost::beast::error_code& ec);
  bool parse_field(std::string_view line, bool checked, boost::beast::error_code& ec);
  /// Decides how the body is framed once the header is parsed; false with `ec` set if it cannot be.
  bool frame_request(boost::beast::error_code& ec);
  bool frame_response(boost::beast::error_code& ec);
  std::size_t parse_body(std::string_view input, boost::beast::error_code& ec);
  std::size_t parse_chunked(std::string_view input, boost::beast::error_code& ec);

  const Kind kind_;
  Headers& headers_;
  std::string* sink_ = nullptr;
  std::uint32_t header_limit_ = 8192;
  std::uint64_t body_limit_ = std::numeric_limits<std::uint64_t>::max();
  bool head_ = false;
  bool got_some_ = false;
  State state_ = State::header;
  std::size_t scanned_ = 0;  // header bytes already searched for the empty line

  std::string method_, target_;
  Tally tally_;
  int status_ = 0;
  int minor_version_ = 1;
  bool keep_alive_ = true;
  bool connection_close_ = false, connection_keep_alive_ = false;
  std::optional<std::uint64_t> content_length_;
  bool bad_content_length_ = false;  // a Content-Length that is no number, or repeated with another value
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;
  bool bad_transfer_encoding_ = false;  // something after chunked, chunked twice, or a coding that is no token
  bool need_eof_ = false;
  std::uint64_t remaining_ = 0;  // of the Content-Length body, or of the current chunk
  std::uint64_t body_bytes_ = 0;  // of a chunked body so far
  std::size_t trailer_bytes_ = 0;
};

}  // namespace llmproxy::server
