#pragma once
/// The byte-level JSON state machine behind usage::Scanner (see scanner.hpp for what it recognises). It tracks
/// the grammar only where keys matter (the top-level object, a top-level "response" object, a usage object in
/// either) and skips every other value by counting brackets outside strings.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmproxy::usage::detail {

inline constexpr std::size_t kMaxModelBytes = 256;
/// The largest count kept (10^12, far beyond any model's context): a larger one is ignored, so sums over a
/// token's lifetime cannot overflow.
inline constexpr std::int64_t kMaxCount = 1'000'000'000'000;

/// The usage counters of one usage object, as read so far.
struct Counters {
  std::int64_t prompt = 0, completion = 0, total = 0, input = 0, output = 0;
  bool has_prompt = false, has_completion = false, has_total = false, has_input = false, has_output = false;
};

class JsonScanner {
 public:
  /// Feeds the next bytes of the document. Never throws, never allocates except when the model is captured.
  void feed(std::string_view chunk) noexcept;

  /// Forgets everything (keeps the model string's capacity): the next byte starts a new document.
  void reset() noexcept;

  /// Whether a usage object with at least one counter closed; its counters (total filled in when absent).
  bool has_usage() const { return has_usage_; }
  std::int64_t prompt_tokens() const { return prompt_; }
  std::int64_t completion_tokens() const { return completion_; }
  std::int64_t total_tokens() const { return total_; }

  /// The model captured ("" if none).
  const std::string& model() const { return model_; }

  /// Stop reading the document once a top-level model was captured (what a cache hit needs: no usage).
  void stop_at_model() noexcept { stop_at_model_ = true; }

 private:
  enum class State : std::uint8_t {
    start,         // before the top-level value
    key_or_end,    // in a tracked object, after '{' : a key or '}'
    key_next,      // in a tracked object, after ',' : a key
    key,           // inside a key string
    key_escape,    // after a backslash in a key
    colon,         // after a key
    value,         // after ':'
    after_value,   // after a value in a tracked object: ',' or '}'
    skip_string,   // inside a string value that is skipped
    skip_escape,   // after a backslash in a skipped string
    skip_nested,   // inside a skipped array or object (skip_depth_ > 0)
    skip_nested_string,
    skip_nested_escape,
    skip_scalar,   // inside a number or literal that is skipped
    number,        // inside a usage counter's number
    model,         // inside the model string
    model_escape,  // after a backslash in the model string
    done,          // after the top-level value, or after invalid input: ignore the rest
  };
  // The tracked objects, innermost last: the top-level object, a "response" object in it, a "usage" object.
  enum class Ctx : std::uint8_t { top, response, usage };
  enum class Key : std::uint8_t {
    other, model, usage, response, prompt_tokens, completion_tokens, total_tokens, input_tokens, output_tokens
  };

  void on_key_end(std::string_view key);  // "" for a key that cannot be one we know (escaped, too long)
  void on_value_start(char c);
  void on_object_end();
  void on_number_end();
  void on_model_end();
  bool counter_key() const;

  State state_ = State::start;
  std::array<Ctx, 3> ctx_{};
  std::uint8_t depth_ = 0;  // tracked objects open (ctx_[0..depth_))
  Key key_ = Key::other;    // the key of the value being read in ctx_[depth_-1]
  // A key split across chunks (a key in one chunk is judged where it lies). key_buf_ and model_buf_ are written
  // before they are read, so they are left uninitialised: a scanner is made for every response.
  std::array<char, 24> key_buf_;
  std::uint8_t key_len_ = 0;
  bool key_bad_ = false;    // longer than key_buf_, or escaped: not a key we know
  std::uint64_t skip_depth_ = 0;

  // The number being read (a usage counter).
  std::uint64_t number_ = 0;
  bool number_ok_ = true;   // digits only so far, no overflow
  bool number_empty_ = true;

  // The model string being read.
  std::array<char, kMaxModelBytes> model_buf_;
  std::size_t model_len_ = 0;
  bool model_ok_ = true;
  bool model_from_top_ = false;  // model_ came from the top level (a "response" model does not replace it)

  Counters counters_;       // of the usage object being read
  bool usage_from_top_ = false;
  bool has_usage_ = false;
  bool usage_top_ = false;  // the committed usage came from the top level
  std::int64_t prompt_ = 0, completion_ = 0, total_ = 0;
  std::string model_;
  bool stop_at_model_ = false;  // kept by reset()
};

}  // namespace llmproxy::usage::detail
