#include "llmproxy/usage/detail/json_scanner.hpp"

#include <algorithm>
#include <array>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "llmproxy/util/utf8.hpp"

namespace llmproxy::usage::detail {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Bytes that end a skip inside a nested value: a string starts, a bracket opens or closes.
constexpr std::array<bool, 256> kNestedStops = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : {'"', '{', '}', '[', ']'}) t[c] = true;
  return t;
}();

/// The next byte at or after `from` that ends a skip inside a nested value ('"', '{', '}', '[' or ']'), or
/// s.size(): 16 bytes per step with SSE2 (a skipped "choices" array is most of a completion), a byte at a time
/// for the last bytes of a chunk and without SSE2.
std::size_t next_nested_stop(std::string_view s, std::size_t from) {
  std::size_t i = from;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  // '{' and '}' are '[' and ']' with bit 0x20 set, and no other byte clears to '[' or ']'.
  const __m128i no_case = _mm_set1_epi8(static_cast<char>(~0x20));
  const __m128i open = _mm_set1_epi8('[');
  const __m128i close = _mm_set1_epi8(']');
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i folded = _mm_and_si128(block, no_case);
    const int hits = _mm_movemask_epi8(_mm_or_si128(
        _mm_cmpeq_epi8(block, quote), _mm_or_si128(_mm_cmpeq_epi8(folded, open), _mm_cmpeq_epi8(folded, close))));
    if (hits != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
  }
#endif
  for (; i < s.size(); ++i) {
    if (kNestedStops[static_cast<unsigned char>(s[i])]) return i;
  }
  return i;
}

/// Finds the end of runs of plain string bytes (the next '"' or '\\') in one chunk: 16 bytes per step with SSE2
/// (every x86-64 has it), a byte at a time elsewhere and for the last bytes of a chunk. Linear in the chunk.
class StringRuns {
 public:
  explicit StringRuns(std::string_view s) : s_(s) {}

  std::size_t end_of_run(std::size_t from) const {
    std::size_t i = from;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    for (; i + 16 <= s_.size(); i += 16) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s_.data() + i));
      const int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(block, quote), _mm_cmpeq_epi8(block, backslash)));
      if (hits != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
    }
#endif
    for (; i < s_.size(); ++i) {
      if (s_[i] == '"' || s_[i] == '\\') return i;
    }
    return i;
  }

 private:
  std::string_view s_;
};

}  // namespace

void JsonScanner::reset() noexcept {
  // Only what a new document reads before writing it (the buffers are written before they are read).
  state_ = State::start;
  depth_ = 0;
  key_ = Key::other;
  model_from_top_ = false;
  usage_from_top_ = false;
  has_usage_ = false;
  usage_top_ = false;
  prompt_ = completion_ = total_ = 0;
  model_.clear();
}

bool JsonScanner::counter_key() const {
  return key_ == Key::prompt_tokens || key_ == Key::completion_tokens || key_ == Key::total_tokens ||
         key_ == Key::input_tokens || key_ == Key::output_tokens;
}

void JsonScanner::on_key_end(std::string_view k) {
  key_ = Key::other;
  const Ctx ctx = ctx_[depth_ - 1];
  if (ctx == Ctx::usage) {
    if (k == "prompt_tokens") key_ = Key::prompt_tokens;
    else if (k == "completion_tokens") key_ = Key::completion_tokens;
    else if (k == "total_tokens") key_ = Key::total_tokens;
    else if (k == "input_tokens") key_ = Key::input_tokens;
    else if (k == "output_tokens") key_ = Key::output_tokens;
  } else {
    if (k == "model") key_ = Key::model;
    else if (k == "usage") key_ = Key::usage;
    else if (k == "response" && ctx == Ctx::top) key_ = Key::response;
  }
}

void JsonScanner::on_value_start(char c) {
  const Ctx ctx = ctx_[depth_ - 1];
  if (c == '"') {
    if (key_ == Key::model && ctx != Ctx::usage) {
      model_len_ = 0;
      model_ok_ = true;
      state_ = State::model;
    } else {
      state_ = State::skip_string;
    }
  } else if (c == '{' && key_ == Key::usage && ctx != Ctx::usage) {
    counters_ = Counters{};
    usage_from_top_ = ctx == Ctx::top;
    ctx_[depth_++] = Ctx::usage;
    state_ = State::key_or_end;
  } else if (c == '{' && key_ == Key::response && ctx == Ctx::top) {
    ctx_[depth_++] = Ctx::response;
    state_ = State::key_or_end;
  } else if (c == '{' || c == '[') {
    skip_depth_ = 1;
    state_ = State::skip_nested;
  } else if ((is_digit(c) || c == '-') && ctx == Ctx::usage && counter_key()) {
    number_ = 0;
    number_ok_ = c != '-';  // a negative count is ignored
    number_empty_ = c == '-';
    if (c != '-') number_ = static_cast<std::uint64_t>(c - '0');
    state_ = State::number;
  } else if (is_digit(c) || c == '-' || c == 't' || c == 'f' || c == 'n') {
    state_ = State::skip_scalar;
  } else {
    state_ = State::done;
  }
}

void JsonScanner::on_number_end() {
  if (!number_ok_ || number_empty_ || number_ > static_cast<std::uint64_t>(kMaxCount)) return;
  const auto v = static_cast<std::int64_t>(number_);
  switch (key_) {
    case Key::prompt_tokens: counters_.prompt = v, counters_.has_prompt = true; break;
    case Key::completion_tokens: counters_.completion = v, counters_.has_completion = true; break;
    case Key::total_tokens: counters_.total = v, counters_.has_total = true; break;
    case Key::input_tokens: counters_.input = v, counters_.has_input = true; break;
    case Key::output_tokens: counters_.output = v, counters_.has_output = true; break;
    default: break;
  }
}

void JsonScanner::on_model_end() {
  // A model name goes into database rows (PostgreSQL refuses invalid UTF-8) and metric labels.
  if (!model_ok_ || !util::valid_utf8(std::string_view(model_buf_.data(), model_len_))) return;
  const bool from_top = ctx_[depth_ - 1] == Ctx::top;
  // A top-level model wins over response.model; at the same level the later one wins (as JSON parsers do).
  if (!from_top && model_from_top_ && !model_.empty()) return;
  model_.assign(model_buf_.data(), model_len_);
  model_from_top_ = from_top;
  if (stop_at_model_ && from_top) state_ = State::done;
}

void JsonScanner::on_object_end() {
  const Ctx ctx = ctx_[--depth_];
  if (ctx == Ctx::top) {
    state_ = State::done;
    return;
  }
  state_ = State::after_value;
  if (ctx != Ctx::usage) return;
  const Counters& c = counters_;
  if (!(c.has_prompt || c.has_completion || c.has_total || c.has_input || c.has_output)) return;
  if (!usage_from_top_ && has_usage_ && usage_top_) return;  // the top-level usage wins over response.usage
  const std::int64_t prompt = c.has_prompt ? c.prompt : c.input;
  const std::int64_t completion = c.has_completion ? c.completion : c.output;
  std::int64_t total = c.total;
  if (!c.has_total) {
    // Both are <= INT64_MAX; their sum saturates instead of overflowing.
    total = prompt > std::numeric_limits<std::int64_t>::max() - completion ? std::numeric_limits<std::int64_t>::max()
                                                                          : prompt + completion;
  }
  prompt_ = prompt;
  completion_ = completion;
  total_ = total;
  has_usage_ = true;
  usage_top_ = usage_from_top_;
}

void JsonScanner::feed(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t n = s.size();
  StringRuns runs(s);
  while (i < n) {
    char c = s[i];
    switch (state_) {
      case State::done:
        return;
      case State::start:
        if (is_space(c)) break;
        if (c == '{') {
          ctx_[depth_++] = Ctx::top;
          state_ = State::key_or_end;
        } else {
          state_ = State::done;  // not an object (e.g. SSE's [DONE]): nothing to read
        }
        break;
      case State::key_or_end:
      case State::key_next:
        if (is_space(c)) break;
        if (c == '"') {
          key_len_ = 0;
          key_bad_ = false;
          state_ = State::key;
        } else if (c == '}' && state_ == State::key_or_end) {
          on_object_end();
        } else {
          state_ = State::done;
        }
        break;
      case State::key: {
        const std::size_t end = runs.end_of_run(i);
        const std::size_t len = end - i;
        if (end < n && s[end] == '"' && key_len_ == 0 && !key_bad_) {
          // The whole key is in this chunk (the usual case): judged where it lies, and a ':' right after it is
          // taken too.
          on_key_end(s.substr(i, len));
          i = end;
          if (i + 1 < n && s[i + 1] == ':') {
            ++i;
            state_ = State::value;
          } else {
            state_ = State::colon;
          }
          break;
        }
        if (!key_bad_) {
          if (key_len_ + len > key_buf_.size()) {
            key_bad_ = true;
          } else {
            s.copy(key_buf_.data() + key_len_, len, i);
            key_len_ = static_cast<std::uint8_t>(key_len_ + len);
          }
        }
        i = end;
        if (i == n) return;
        if (s[i] == '"') {
          on_key_end(key_bad_ ? std::string_view() : std::string_view(key_buf_.data(), key_len_));
          state_ = State::colon;
        } else {
          key_bad_ = true;  // an escaped key is not one we know
          state_ = State::key_escape;
        }
        break;
      }
      case State::key_escape:
        state_ = State::key;
        break;
      case State::colon:
        if (is_space(c)) break;
        state_ = c == ':' ? State::value : State::done;
        break;
      case State::value:
        if (is_space(c)) break;
        on_value_start(c);
        break;
      case State::after_value:
        if (is_space(c)) break;
        if (c == ',') {
          state_ = State::key_next;
        } else if (c == '}') {
          on_object_end();
        } else {
          state_ = State::done;
        }
        break;
      case State::skip_string:
      case State::skip_nested_string: {
        i = runs.end_of_run(i);
        if (i == n) return;
        if (s[i] == '"') {
          state_ = state_ == State::skip_string ? State::after_value : State::skip_nested;
        } else {
          state_ = state_ == State::skip_string ? State::skip_escape : State::skip_nested_escape;
        }
        break;
      }
      case State::skip_escape:
        state_ = State::skip_string;
        break;
      case State::skip_nested_escape:
        state_ = State::skip_nested_string;
        break;
      case State::skip_nested: {
        // A skipped array or object (a completion's "choices" is most of it) is passed in this one loop, the
        // strings in it included: only brackets and string boundaries are looked at, 16 bytes at a time.
        std::uint64_t depth = skip_depth_;
        for (;;) {
          i = next_nested_stop(s, i);
          if (i == n) {
            skip_depth_ = depth;
            return;
          }
          const char b = s[i++];
          if (b == '{' || b == '[') {
            ++depth;
          } else if (b != '"') {
            if (--depth == 0) break;
          } else {
            for (;;) {  // to the string's closing quote
              i = runs.end_of_run(i);
              if (i < n && s[i] == '"') {
                ++i;
                break;
              }
              if (i + 1 >= n) {  // the chunk ends inside the string, or right after a backslash
                skip_depth_ = depth;
                state_ = i == n ? State::skip_nested_string : State::skip_nested_escape;
                return;
              }
              i += 2;  // a backslash and the byte it escapes
            }
          }
        }
        skip_depth_ = 0;
        state_ = State::after_value;
        continue;  // i is past the closing bracket
      }
      case State::skip_scalar:
        while (!(c == ',' || c == '}' || c == ']' || is_space(c))) {
          if (++i == n) return;
          c = s[i];
        }
        state_ = State::after_value;
        continue;  // the delimiter belongs to the object
      case State::number:
        if (is_digit(c)) {
          number_empty_ = false;
          const auto d = static_cast<std::uint64_t>(c - '0');
          if (number_ > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
            number_ok_ = false;
          } else {
            number_ = number_ * 10 + d;
          }
        } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
          number_ok_ = false;  // a float (or a malformed number): not a count
        } else if (c == ',' || c == '}' || is_space(c)) {
          on_number_end();
          state_ = State::after_value;
          continue;
        } else {
          state_ = State::done;
        }
        break;
      case State::model: {
        const std::size_t end = runs.end_of_run(i);
        for (std::size_t j = i; j < end; ++j) {
          if (static_cast<unsigned char>(s[j]) < 0x20) model_ok_ = false;
        }
        const std::size_t len = end - i;
        if (model_ok_) {
          if (model_len_ + len > model_buf_.size()) {
            model_ok_ = false;
          } else {
            s.copy(model_buf_.data() + model_len_, len, i);
            model_len_ += len;
          }
        }
        i = end;
        if (i == n) return;
        if (s[i] == '"') {
          state_ = State::after_value;
          on_model_end();  // may end the document (stop_at_model)
        } else {
          state_ = State::model_escape;
        }
        break;
      }
      case State::model_escape:
        if ((c == '"' || c == '\\' || c == '/') && model_ok_ && model_len_ < model_buf_.size()) {
          model_buf_[model_len_++] = c;
        } else {
          model_ok_ = false;
        }
        state_ = State::model;
        break;
    }
    ++i;
  }
}

}  // namespace llmproxy::usage::detail
