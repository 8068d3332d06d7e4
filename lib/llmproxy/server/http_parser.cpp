#include "llmproxy/server/http_parser.hpp"
#include "llmproxy/server/token_chars.hpp"

#include <boost/beast/http/error.hpp>

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace llmproxy::server {

namespace {

using boost::beast::error_code;
using boost::beast::http::error;


/// Field value, reason phrase and chunk extension characters: HTAB, SP, VCHAR, obs-text (no other controls).
constexpr std::array<bool, 256> kTextChar = [] {
  std::array<bool, 256> t{};
  t['\t'] = true;
  for (int c = 0x20; c < 0x7f; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 0x80; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = true;
  return t;
}();

/// Request target characters: anything visible, obs-text included (decoded and judged later); no space, no
/// control character.
constexpr std::array<bool, 256> kTargetChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 0x7f; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 0x80; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = true;
  return t;
}();

/// Chunk sizes are at most 16 hex digits (64 bits); a chunk-size line, extensions included, at most this long.
constexpr std::size_t kMaxChunkLine = 4096;

bool all_of(std::string_view s, const std::array<bool, 256>& table) {
  for (const char c : s) {
    if (!table[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls `fn(element)` for each non-empty element of a comma-separated list, trimmed.
template <class Fn>
void for_each_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

/// A decimal Content-Length: digits only (leading zeros allowed), no sign, no list, below 10^19.
std::optional<std::uint64_t> parse_length(std::string_view v) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  while (v.size() > 1 && v.front() == '0') v.remove_prefix(1);
  if (v.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The end of the line starting at `from` (the index of its CR), npos when no CRLF is there yet, or
/// `bad` set when a CR is not followed by LF.
std::size_t line_end(std::string_view s, std::size_t from, bool& bad) {
  const void* cr = from < s.size() ? std::memchr(s.data() + from, '\r', s.size() - from) : nullptr;
  if (cr == nullptr) return std::string_view::npos;
  const auto at = static_cast<std::size_t>(static_cast<const char*>(cr) - s.data());
  if (at + 1 == s.size()) return std::string_view::npos;
  if (s[at + 1] != '\n') bad = true;
  return at;
}

/// True if `head` (a whole header, CRLFs included) has no control characters but HTAB, CR and LF, and every LF
/// follows a CR. Then, with every CR checked to be followed by LF (line_end() sees each one), every line is well
/// ended and no reason phrase or field value needs a check of its own. 16 bytes per step with SSE2 (every x86-64
/// has it); the last step overlaps the one before rather than going byte by byte.
bool plain_text_lines(std::string_view head) {
  const auto scalar = [](std::string_view s, char before) {
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '\n' ? before != '\r' : c != '\r' && !kTextChar[c]) return false;
      before = ch;
    }
    return true;
  };
#if defined(__SSE2__)
  if (head.size() < 17) return scalar(head, '\0');
  if (head[0] == '\n') return false;
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i del = _mm_set1_epi8(0x7f);
  __m128i bad = _mm_setzero_si128();
  // Each step looks at bytes [i, i + 16) and, for the LF rule, the bytes one before them.
  const auto step = [&](std::size_t i) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(head.data() + i));
    const __m128i before = _mm_loadu_si128(reinterpret_cast<const __m128i*>(head.data() + i - 1));
    const __m128i is_cr = _mm_cmpeq_epi8(x, cr);
    const __m128i is_lf = _mm_cmpeq_epi8(x, lf);
    const __m128i is_ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, ctl_max), x);  // x <= 0x1f
    const __m128i allowed = _mm_or_si128(_mm_or_si128(is_cr, is_lf), _mm_cmpeq_epi8(x, tab));
    const __m128i bare_lf = _mm_andnot_si128(_mm_cmpeq_epi8(before, cr), is_lf);
    bad = _mm_or_si128(bad, _mm_or_si128(_mm_andnot_si128(allowed, is_ctl), _mm_cmpeq_epi8(x, del)));
    bad = _mm_or_si128(bad, bare_lf);
  };
  std::size_t i = 1;
  for (; i + 16 <= head.size(); i += 16) step(i);
  if (i < head.size()) step(head.size() - 16);
  const auto first = static_cast<unsigned char>(head[0]);
  return _mm_movemask_epi8(bad) == 0 && (first == '\r' || kTextChar[first]);
#else
  return scalar(head, '\0');
#endif
}

/// The offset of the first "\r\n\r\n" in `s` at or after `from`, or npos.
std::size_t find_blank_line(std::string_view s, std::size_t from) {
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const auto at = [&](std::size_t i) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i)), cr));
  };
  const auto lf_at = [&](std::size_t i) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i)), lf));
  };
  // 16 starting positions per step, each needing the 3 bytes after it.
  for (; from + 19 <= s.size(); from += 16) {
    const int hits = at(from) & lf_at(from + 1) & at(from + 2) & lf_at(from + 3);
    if (hits != 0) return from + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
  }
#endif
  return s.find("\r\n\r\n", from);
}

}  // namespace

/// Where the lines of a header and their first colons are (index_lines()).
struct HttpParser::LineIndex {
  static constexpr std::size_t kMaxLines = 128;
  static constexpr std::uint32_t kNone = 0xffffffff;
  std::array<std::uint32_t, kMaxLines> cr;     // each line's CR (its LF follows)
  std::array<std::uint32_t, kMaxLines> colon;  // its first ':', or kNone
  std::size_t count = 0;
};

bool HttpParser::index_lines(std::string_view head, LineIndex& lines) {
#if defined(__SSE2__)
  // One pass, 16 bytes a step: CR, LF and ':' positions as bit masks. A line ends at an LF whose CR is right
  // before it; any other CR or LF, any control character but HTAB, or more lines than the index holds, and the
  // header is left to parse_lines().
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i colon = _mm_set1_epi8(':');
  const __m128i del = _mm_set1_epi8(0x7f);
  unsigned cr_carry = 0;     // a CR in the last byte of the previous step
  bool line_has_colon = false;
  for (std::size_t i = 0; i < head.size(); i += 16) {
    __m128i x;
    if (i + 16 <= head.size()) {
      x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(head.data() + i));
    } else {
      alignas(16) char tail[16];
      std::memset(tail, 'x', sizeof tail);
      std::memcpy(tail, head.data() + i, head.size() - i);
      x = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
    }
    const __m128i is_cr = _mm_cmpeq_epi8(x, cr);
    const __m128i is_lf = _mm_cmpeq_epi8(x, lf);
    const __m128i is_ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, ctl_max), x);  // x <= 0x1f
    const __m128i allowed = _mm_or_si128(_mm_or_si128(is_cr, is_lf), _mm_cmpeq_epi8(x, tab));
    const __m128i bad = _mm_or_si128(_mm_andnot_si128(allowed, is_ctl), _mm_cmpeq_epi8(x, del));
    if (_mm_movemask_epi8(bad) != 0) return false;
    const auto crs = static_cast<unsigned>(_mm_movemask_epi8(is_cr));
    const auto lfs = static_cast<unsigned>(_mm_movemask_epi8(is_lf));
    if (lfs != (((crs << 1) & 0xffffu) | cr_carry)) return false;  // every LF after a CR, every CR before an LF
    cr_carry = crs >> 15;
    unsigned events = lfs | static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, colon)));
    while (events != 0) {
      const unsigned bit = static_cast<unsigned>(__builtin_ctz(events));
      events &= events - 1;
      const auto pos = static_cast<std::uint32_t>(i + bit);
      if (lines.count == LineIndex::kMaxLines) return false;
      if ((lfs >> bit) & 1u) {
        lines.cr[lines.count] = pos - 1;
        if (!line_has_colon) lines.colon[lines.count] = LineIndex::kNone;
        ++lines.count;
        line_has_colon = false;
      } else if (!line_has_colon) {
        lines.colon[lines.count] = pos;
        line_has_colon = true;
      }
    }
  }
  return cr_carry == 0 && lines.count > 0;
#else
  (void)head;
  (void)lines;
  return false;
#endif
}

std::size_t HttpParser::put(std::string_view input, error_code& ec) {
  ec = {};
  if (!input.empty()) got_some_ = true;
  if (state_ == State::header) return parse_header(input, ec);
  return parse_body(input, ec);
}

void HttpParser::put_eof(error_code& ec) {
  ec = {};
  if (state_ == State::until_close) {
    state_ = State::done;
  } else if (state_ != State::done) {
    ec = state_ == State::header && !got_some_ ? error::end_of_stream : error::partial_message;
  }
}

std::size_t HttpParser::parse_header(std::string_view input, error_code& ec) {
  // The header is parsed once whole: find the empty line that ends it, resuming where the last search stopped.
  const std::size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
  const std::size_t blank = find_blank_line(input, from);
  if (blank == std::string_view::npos) {
    scanned_ = input.size();
    ec = input.size() >= header_limit_ ? error_code(error::header_limit) : error_code(error::need_more);
    return 0;
  }
  const std::size_t used = blank + 4;
  if (used > header_limit_) {
    ec = error::header_limit;
    return 0;
  }
  const std::string_view head = input.substr(0, blank + 2);  // every line with its CRLF
  // Usually one vector pass finds every line and colon and clears every value at once (parse_plain_head);
  // else each line is taken on its own, and checked for the error.
  LineIndex lines;
  if (index_lines(head, lines)) {
    if (!parse_plain_head(head, lines, ec)) return 0;
  } else if (!parse_lines(head, ec)) {
    return 0;
  }
  keep_alive_ = !connection_close_ && (minor_version_ >= 1 || connection_keep_alive_);
  if (!(kind_ == Kind::request ? frame_request(ec) : frame_response(ec))) {
    // The header is kept (the caller answers about it): it was parsed, only its framing is refused.
    if (ec == error::body_limit) state_ = State::done;
    return ec == error::body_limit ? used : 0;
  }
  return used;
}

bool HttpParser::parse_plain_head(std::string_view head, const LineIndex& lines, error_code& ec) {
  const std::string_view start = head.substr(0, lines.cr[0]);
  if (!(kind_ == Kind::request ? parse_request_line(start, ec) : parse_status_line(start, true, ec))) return false;
  // The fields' bytes are copied into the list once; each field is then an offset into them.
  const std::size_t fields_at = lines.cr[0] + 2;
  const std::uint32_t base = headers_.append_bytes(head.substr(fields_at));
  for (std::size_t k = 1; k < lines.count; ++k) {
    const std::size_t begin = lines.cr[k - 1] + 2;
    const std::size_t colon = lines.colon[k];
    const std::string_view name = head.substr(begin, colon - begin);
    if (colon == LineIndex::kNone || name.empty() || !all_of(name, kTokenChar)) {
      ec = error::bad_field;  // no colon, obs-fold, whitespace or a non-token byte before the colon
      return false;
    }
    std::size_t value_begin = colon + 1;
    std::size_t value_end = lines.cr[k];
    while (value_begin < value_end && is_ows(head[value_begin])) ++value_begin;
    while (value_end > value_begin && is_ows(head[value_end - 1])) --value_end;
    headers_.add_at(base + static_cast<std::uint32_t>(begin - fields_at), name.size(),
                    base + static_cast<std::uint32_t>(value_begin - fields_at), value_end - value_begin);
    note_field(name, head.substr(value_begin, value_end - value_begin));
  }
  return true;
}

bool HttpParser::parse_lines(std::string_view head, error_code& ec) {
  const bool checked = plain_text_lines(head);
  bool bad = false;
  std::size_t eol = line_end(head, 0, bad);
  if (bad) {
    ec = error::bad_line_ending;
    return false;
  }
  const std::string_view start = head.substr(0, eol);
  if (!(kind_ == Kind::request ? parse_request_line(start, ec) : parse_status_line(start, checked, ec))) return false;
  for (std::size_t at = eol + 2; at < head.size(); at = eol + 2) {
    eol = line_end(head, at, bad);
    if (bad) {
      ec = error::bad_line_ending;
      return false;
    }
    if (!parse_field(head.substr(at, eol - at), checked, ec)) return false;
  }
  return true;
}

bool HttpParser::frame_request(error_code& ec) {
  // Only what the session accepts needs a framing here: it refuses every other combination (check_head) before
  // it reads a body, so those get none.
  if (has_transfer_encoding_) {
    state_ = chunked_ && !bad_transfer_encoding_ && !content_length_ ? State::chunk_size : State::done;
  } else if (tally_.lengths == 1) {
    // One Content-Length: a body of that length, or refused. Never read as none, or its bytes would be taken
    // for the next request.
    if (bad_content_length_) {
      ec = error::bad_content_length;
      return false;
    }
    if (*content_length_ > body_limit_) {
      ec = error::body_limit;
      return false;
    }
    remaining_ = *content_length_;
    state_ = remaining_ == 0 ? State::done : State::length;
  } else {
    state_ = State::done;
  }
  return true;
}

bool HttpParser::frame_response(error_code& ec) {
  if (bad_content_length_) {
    ec = error::bad_content_length;
    return false;
  }
  if (bad_transfer_encoding_ || (has_transfer_encoding_ && content_length_)) {
    // Both framings at once (RFC 9112 §6.3) hints at response splitting: refused rather than guessed at.
    ec = error::bad_transfer_encoding;
    return false;
  }
  if (status_ == 101) keep_alive_ = false;  // 101 Switching Protocols ends HTTP on the connection
  if (head_ || (status_ >= 100 && status_ < 200) || status_ == 204 || status_ == 304) {
    chunked_ = false;
    state_ = State::done;
  } else if (chunked_) {
    state_ = State::chunk_size;
  } else if (has_transfer_encoding_ || !content_length_) {
    need_eof_ = true;
    state_ = State::until_close;
  } else {
    remaining_ = *content_length_;
    state_ = remaining_ == 0 ? State::done : State::length;
  }
  return true;
}

bool HttpParser::parse_request_line(std::string_view line, error_code& ec) {
  // method SP request-target SP HTTP-version
  const std::size_t method_end = line.find(' ');
  if (method_end == 0 || method_end == std::string_view::npos || !all_of(line.substr(0, method_end), kTokenChar)) {
    ec = error::bad_method;
    return false;
  }
  const std::string_view rest = line.substr(method_end + 1);
  const std::size_t target_end = rest.find(' ');
  if (target_end == 0 || target_end == std::string_view::npos || !all_of(rest.substr(0, target_end), kTargetChar)) {
    ec = error::bad_target;
    return false;
  }
  const std::string_view version = rest.substr(target_end + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    ec = error::bad_version;
    return false;
  }
  minor_version_ = version[7] - '0';
  method_.assign(line.data(), method_end);
  target_.assign(rest.data(), target_end);
  return true;
}

bool HttpParser::parse_status_line(std::string_view line, bool checked, error_code& ec) {
  // HTTP-version SP status-code [SP reason-phrase]: the reason is optional, and so is the space before an empty
  // one (some servers omit both).
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ') {
    ec = error::bad_version;
    return false;
  }
  minor_version_ = line[7] - '0';
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      ec = error::bad_status;
      return false;
    }
    code = code * 10 + (line[i] - '0');
  }
  if (code < 100 || (line.size() > 12 && line[12] != ' ')) {
    ec = error::bad_status;
    return false;
  }
  if (!checked && line.size() > 13 && !all_of(line.substr(13), kTextChar)) {
    ec = error::bad_reason;
    return false;
  }
  status_ = code;
  return true;
}

bool HttpParser::parse_field(std::string_view line, bool checked, error_code& ec) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    // Also a line starting with whitespace (obs-fold, RFC 9112 §5.2): refused.
    ec = error::bad_field;
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  if (name.empty() || !all_of(name, kTokenChar)) {
    ec = error::bad_field;
    return false;
  }
  const std::string_view value = trim(line.substr(colon + 1));
  if (!checked && !all_of(value, kTextChar)) {
    ec = error::bad_value;
    return false;
  }
  headers_.add(name, value);
  note_field(name, value);
  return true;
}

void HttpParser::note_field(std::string_view name, std::string_view value) {
  const std::size_t at = headers_.size() - 1;
  ++tally_.fields;

  switch (name.size()) {
    case 4:  // Host
      if (iequals(name, "host")) ++tally_.hosts;
      break;
    case 10:  // Connection
      if (iequals(name, "connection")) {
        for_each_element(value, [&](std::string_view option) {
          if (iequals(option, "close")) connection_close_ = true;
          if (iequals(option, "keep-alive")) connection_keep_alive_ = true;
        });
      }
      break;
    case 14:  // Content-Length
      if (iequals(name, "content-length")) {
        ++tally_.lengths;
        tally_.length_at = at;
        const auto length = parse_length(value);
        if (!length || (content_length_ && *content_length_ != *length)) bad_content_length_ = true;
        if (length) content_length_ = length;
      }
      break;
    case 17:  // Transfer-Encoding
      if (iequals(name, "transfer-encoding")) {
        ++tally_.encodings;
        tally_.encoding_at = at;
        // The codings of every Transfer-Encoding field, in order: chunked must come last and only once
        // (RFC 9112 §6.1), then it frames the body. A coding with parameters is refused: nothing real sends one,
        // and a reader that skipped them differently would frame the body differently.
        for_each_element(value, [&](std::string_view token) {
          if (chunked_ || !all_of(token, kTokenChar)) bad_transfer_encoding_ = true;
          if (iequals(token, "chunked")) chunked_ = true;
          has_transfer_encoding_ = true;
        });
      }
      break;
    default: break;
  }
}

std::size_t HttpParser::parse_body(std::string_view input, error_code& ec) {
  switch (state_) {
    case State::length: {
      const std::size_t n = input.size() < remaining_ ? input.size() : static_cast<std::size_t>(remaining_);
      sink_->append(input.data(), n);
      remaining_ -= n;
      if (remaining_ == 0) {
        state_ = State::done;
      } else {
        ec = error::need_more;
      }
      return n;
    }
    case State::until_close:
      sink_->append(input.data(), input.size());
      ec = error::need_more;
      return input.size();
    case State::chunk_size:
    case State::chunk_data:
    case State::chunk_end:
    case State::trailer: return parse_chunked(input, ec);
    case State::header:
    case State::done: break;
  }
  return 0;
}

std::size_t HttpParser::parse_chunked(std::string_view input, error_code& ec) {
  std::size_t at = 0;
  for (;;) {
    const std::string_view rest = input.substr(at);
    switch (state_) {
      case State::chunk_size: {
        // chunk-size [chunk-ext] CRLF; extensions are checked for stray controls and otherwise ignored.
        bool bad = false;
        const std::size_t eol = line_end(rest, 0, bad);
        if (bad) {
          ec = error::bad_chunk;
          return at;
        }
        if (eol == std::string_view::npos) {
          ec = rest.size() > kMaxChunkLine ? error_code(error::bad_chunk) : error_code(error::need_more);
          return at;
        }
        const std::string_view line = rest.substr(0, eol);
        std::size_t digits = 0;
        std::uint64_t size = 0;
        for (; digits < line.size() && hex_value(line[digits]) >= 0; ++digits) {
          size = (size << 4) | static_cast<std::uint64_t>(hex_value(line[digits]));
        }
        std::string_view ext = line.substr(digits);
        while (!ext.empty() && is_ows(ext.front())) ext.remove_prefix(1);
        if (digits == 0 || digits > 16 || (!ext.empty() && (ext.front() != ';' || !all_of(ext, kTextChar)))) {
          ec = error::bad_chunk;
          return at;
        }
        if (size > body_limit_ - body_bytes_) {
          ec = error::body_limit;
          return at;
        }
        body_bytes_ += size;
        at += eol + 2;
        remaining_ = size;
        state_ = size == 0 ? State::trailer : State::chunk_data;
        break;
      }
      case State::chunk_data: {
        if (rest.empty()) {
          ec = error::need_more;
          return at;
        }
        const std::size_t n = rest.size() < remaining_ ? rest.size() : static_cast<std::size_t>(remaining_);
        sink_->append(rest.data(), n);
        at += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::chunk_end;
        break;
      }
      case State::chunk_end:
        if (rest.size() < 2) {
          ec = rest.empty() || rest[0] == '\r' ? error_code(error::need_more) : error_code(error::bad_chunk);
          return at;
        }
        if (rest[0] != '\r' || rest[1] != '\n') {
          ec = error::bad_chunk;
          return at;
        }
        at += 2;
        state_ = State::chunk_size;
        break;
      case State::trailer: {
        // Trailer fields up to an empty line, within the header limit; dropped (the head is out already).
        bool bad = false;
        const std::size_t eol = line_end(rest, 0, bad);
        if (bad) {
          ec = error::bad_line_ending;
          return at;
        }
        if (eol == std::string_view::npos) {
          ec = trailer_bytes_ + rest.size() > header_limit_ ? error_code(error::header_limit) : error_code(error::need_more);
          return at;
        }
        trailer_bytes_ += eol + 2;
        if (trailer_bytes_ > header_limit_) {
          ec = error::header_limit;
          return at;
        }
        const std::string_view line = rest.substr(0, eol);
        at += eol + 2;
        if (line.empty()) {
          state_ = State::done;
          return at;
        }
        const std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos || !all_of(line.substr(0, colon), kTokenChar) ||
            !all_of(line.substr(colon + 1), kTextChar)) {
          ec = error::bad_field;
          return at;
        }
        break;
      }
      case State::header:
      case State::length:
      case State::until_close:
      case State::done: return at;
    }
  }
}

}  // namespace llmproxy::server
