#pragma once
/// Reads the LLM token usage and the model name out of an OpenAI-compatible response body as it is relayed, chunk
/// by chunk, without parsing the whole JSON document and without holding the body (SPEC §14).
///
/// What is recognised:
/// - `json` (a whole response body): the top-level `"model"` string and the top-level `"usage"` object; when the
///   top level has none, the same keys one level down inside a top-level `"response"` object (the Responses API's
///   `response.completed` event carries `{"type":..., "response": {..., "usage": {...}}}`). Other keys at any depth
///   (a `"usage"` inside `"choices"`, `"metadata"`, a string containing `"usage"`...) are skipped.
/// - `sse` (a `text/event-stream` body): each event's `data:` lines (joined as the SSE standard says) form one JSON
///   document read as above. The model is the first event's that has one; the usage is the last event's whose
///   usage object has a counter (`"usage": null` on intermediate chunks does not erase it). `[DONE]` and other
///   non-object data are ignored. Events of any size are read incrementally, never buffered.
/// - usage counters: `prompt_tokens`, `completion_tokens`, `total_tokens`; the Responses API / Anthropic names
///   `input_tokens`, `output_tokens` stand for prompt / completion when the OpenAI names are absent; total is
///   prompt + completion when absent. A counter that is not a non-negative integer of at most kMaxCount (a float, a
///   string, a negative, a larger number) is ignored. Nested objects (`prompt_tokens_details`...) are ignored.
/// - the model: a JSON string of well-formed UTF-8, at most kMaxModelBytes bytes after decoding. Escapes `\"`,
///   `\\` and `\/` are decoded; a model with any other escape (`\n`, `\u0041`...) or a longer one is left ""
///   (unknown): a model name goes into metrics labels and database rows, so an odd one is dropped rather than
///   guessed.
/// - keys are compared byte for byte: a key written with escapes (`"\u0075sage"`) is not recognised.
/// Invalid or truncated input never throws: what was complete before the first invalid byte is kept (a model
/// whose closing quote was seen, a usage object whose closing brace was seen), the rest of that JSON document is
/// ignored (in `sse`, the next event is read afresh). Bytes after the top-level value are ignored.
///
/// Cost: O(n) in the bytes fed, a few branches per byte (string contents are skipped in a tight loop); no
/// allocation while feeding except one for the model name when it is captured. Not thread-safe: one scanner per
/// response, used by the connection's coroutine.
#include <cstdint>
#include <string>
#include <string_view>

#include "llmproxy/usage/detail/json_scanner.hpp"

namespace llmproxy::usage {

/// LLM token counts of one response.
struct Usage {
  std::int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
  bool present = false;  ///< a usage object with at least one of the counters was seen
};

/// The body's framing: one JSON document, or a server-sent event stream of JSON documents.
enum class Format { json, sse };

/// What is wanted: usage and model, or only the model (an answer from the response cache costs no LLM tokens;
/// reading stops at the first top-level model, which OpenAI sends before the choices; usage() is then empty).
enum class Read { usage_and_model, model_only };

/// The longest model name kept (bytes); a longer one is left "".
inline constexpr std::size_t kMaxModelBytes = detail::kMaxModelBytes;
/// The largest LLM-token count read (10^12); a larger one is ignored.
inline constexpr std::int64_t kMaxCount = detail::kMaxCount;

class Scanner {
 public:
  explicit Scanner(Format format, Read read = Read::usage_and_model);

  /// Feeds the next bytes of the body; any chunking gives the same result (one byte at a time included).
  /// Never throws.
  void feed(std::string_view chunk) noexcept;

  /// json: the top-level usage (or response.usage); sse: the last non-null usage of any event so far.
  Usage usage() const;

  /// json: the top-level model (or response.model); sse: the first event's model; "" if none.
  const std::string& model() const;

 private:
  void feed_sse(std::string_view chunk);
  void end_event();

  enum class Line : std::uint8_t { start, name, value_start, data, ignore };

  Format format_;
  bool model_only_ = false;
  detail::JsonScanner json_;  // json: the document; sse: the current event's data
  // sse only:
  Line line_ = Line::start;
  bool after_cr_ = false;       // the previous byte was a CR (a following LF belongs to the same line end)
  bool event_has_data_ = false; // a data line of the current event was fed (the next one is joined with LF)
  std::uint8_t name_len_ = 0;   // bytes of the field name matched against "data" so far
  bool name_ok_ = true;         // the field name read so far is a prefix of "data"
  Usage sse_usage_;             // from the last finished event that had one
  std::string sse_model_;       // from the first event that had one
};

}  // namespace llmproxy::usage
