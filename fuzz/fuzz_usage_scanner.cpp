// fuzz_usage_scanner: usage::Scanner (lib/llmproxy/usage/scanner.hpp), which reads every byte an upstream sends
// back, so any bytes at all, in any chunking.
//
// Input: byte 0 picks the format (bit 0), what is read (bit 1: usage and model, or the model only) and a seed
// for the cut positions; the rest is the body.
// Properties: feeding never crashes or reads out of bounds; the body fed whole, cut at pseudo-random places, and
// one byte at a time gives the same usage and model; counters are non-negative and total >= 0; a usage that is
// not present is all zeros; the model is at most kMaxModelBytes bytes. In both modes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "llmproxy/usage/scanner.hpp"

namespace {

using llmproxy::usage::Format;
using llmproxy::usage::Read;
using llmproxy::usage::Scanner;

bool same(const Scanner& a, const Scanner& b) {
  const auto x = a.usage(), y = b.usage();
  return x.present == y.present && x.prompt_tokens == y.prompt_tokens && x.completion_tokens == y.completion_tokens &&
         x.total_tokens == y.total_tokens && a.model() == b.model();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Format format = (data[0] & 1) != 0 ? Format::sse : Format::json;
  const Read read = (data[0] & 2) != 0 ? Read::model_only : Read::usage_and_model;
  std::uint32_t seed = data[0] | 0x100u;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  Scanner whole(format, read);
  whole.feed(body);

  Scanner split(format, read);
  for (std::size_t at = 0; at < body.size();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t len = 1 + (seed >> 16) % 17;
    const std::string_view piece = body.substr(at, len);
    split.feed(piece);
    at += piece.size();
  }

  Scanner bytes(format, read);
  for (char c : body) bytes.feed(std::string_view(&c, 1));

  FUZZ_CHECK(same(whole, split));
  FUZZ_CHECK(same(whole, bytes));
  const auto u = whole.usage();
  FUZZ_CHECK(u.prompt_tokens >= 0 && u.completion_tokens >= 0 && u.total_tokens >= 0);
  if (!u.present) FUZZ_CHECK(u.prompt_tokens == 0 && u.completion_tokens == 0 && u.total_tokens == 0);
  FUZZ_CHECK(whole.model().size() <= llmproxy::usage::kMaxModelBytes);
  return 0;
}
