#include "llmproxy/usage/scanner.hpp"

#include <cstring>

namespace llmproxy::usage {

namespace {

constexpr std::string_view kData = "data";

bool is_line_end(char c) { return c == '\n' || c == '\r'; }

/// Finds line ends (the next CR or LF) in one chunk with memchr; the next LF found is remembered so CR-only
/// framing does not search to the end again after each line.
class LineRuns {
 public:
  explicit LineRuns(std::string_view s) : s_(s) {}

  std::size_t end_of_line(std::size_t from) {
    if (from >= lf_) {
      const void* p = std::memchr(s_.data() + from, '\n', s_.size() - from);
      lf_ = p != nullptr ? static_cast<std::size_t>(static_cast<const char*>(p) - s_.data()) : s_.size();
    }
    const void* cr = std::memchr(s_.data() + from, '\r', lf_ - from);
    return cr != nullptr ? static_cast<std::size_t>(static_cast<const char*>(cr) - s_.data()) : lf_;
  }

 private:
  std::string_view s_;
  std::size_t lf_ = 0;  // index of the next LF found by the last search (searched again once passed)
};

}  // namespace

Scanner::Scanner(Format format, Read read) : format_(format), model_only_(read == Read::model_only) {
  if (model_only_) json_.stop_at_model();
}

void Scanner::feed(std::string_view chunk) noexcept {
  if (format_ == Format::json) {
    json_.feed(chunk);
  } else {
    feed_sse(chunk);
  }
}

Usage Scanner::usage() const {
  if (model_only_) return {};  // not read
  if (format_ == Format::sse && !json_.has_usage()) return sse_usage_;
  if (!json_.has_usage()) return {};
  return Usage{json_.prompt_tokens(), json_.completion_tokens(), json_.total_tokens(), true};
}

const std::string& Scanner::model() const {
  if (format_ == Format::sse && !sse_model_.empty()) return sse_model_;
  return json_.model();
}

void Scanner::end_event() {
  if (json_.has_usage()) {
    sse_usage_ = Usage{json_.prompt_tokens(), json_.completion_tokens(), json_.total_tokens(), true};
  }
  if (sse_model_.empty() && !json_.model().empty()) sse_model_ = json_.model();
  json_.reset();
  event_has_data_ = false;
}

void Scanner::feed_sse(std::string_view s) {
  if (model_only_ && !sse_model_.empty()) return;  // what was wanted is known
  std::size_t i = 0;
  const std::size_t n = s.size();
  LineRuns lines(s);
  while (i < n) {
    const char c = s[i];
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') {  // the LF of a CRLF: the line already ended at the CR
        ++i;
        continue;
      }
    }
    switch (line_) {
      case Line::start:
        if (is_line_end(c)) {  // a blank line dispatches the event
          end_event();
          after_cr_ = c == '\r';
          break;
        }
        name_len_ = 0;
        name_ok_ = true;
        line_ = Line::name;
        continue;
      case Line::name:
        if (c == ':' || is_line_end(c)) {
          const bool data = name_ok_ && name_len_ == kData.size();
          if (data) {
            // Data lines of one event are joined with LF (whitespace to the JSON scanner).
            if (event_has_data_) json_.feed("\n");
            event_has_data_ = true;
          }
          if (c == ':') {
            line_ = data ? Line::value_start : Line::ignore;
          } else {
            after_cr_ = c == '\r';
            line_ = Line::start;
          }
          break;
        }
        if (name_ok_ && name_len_ < kData.size() && c == kData[name_len_]) {
          ++name_len_;
        } else {
          name_ok_ = false;
        }
        break;
      case Line::value_start:
        line_ = Line::data;
        if (c == ' ') break;  // one space after the colon is not part of the value
        continue;
      case Line::data:
      case Line::ignore: {
        const std::size_t end = lines.end_of_line(i);
        if (line_ == Line::data && end > i) json_.feed(s.substr(i, end - i));
        i = end;
        if (i == n) return;
        after_cr_ = s[i] == '\r';
        line_ = Line::start;
        break;
      }
    }
    ++i;
  }
}

}  // namespace llmproxy::usage
