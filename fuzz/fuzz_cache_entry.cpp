// fuzz_cache_entry: cache::decode() (lib/llmproxy/cache/cache.hpp), which reads what a shared store (Redis) hands
// back, so any bytes at all.
//
// Properties: decode never crashes, reads out of bounds or allocates beyond the input's claims; when it accepts
// the input, the entry is well-formed (status 100..999, no CR/LF/NUL in header or vary fields, no empty name)
// and encode() gives back exactly the input (one encoding per entry), which decodes to the same entry again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "llmproxy/cache/cache.hpp"
#include "llmproxy/cache/detail/entry_format.hpp"

namespace {

using llmproxy::cache::Entry;

bool clean(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

bool same(const Entry& a, const Entry& b) {
  if (a.status != b.status || a.body != b.body || a.stored_at_ms != b.stored_at_ms ||
      a.expires_at_ms != b.expires_at_ms || a.vary != b.vary || a.forced != b.forced || a.stream != b.stream ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name ||
        a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto entry = llmproxy::cache::decode(bytes);
  if (!entry) return 0;

  FUZZ_CHECK(entry->status >= 100 && entry->status <= 999);
  for (const auto& f : entry->headers) FUZZ_CHECK(!f.name.empty() && clean(f.name) && clean(f.value));
  for (const auto& [name, value] : entry->vary) FUZZ_CHECK(!name.empty() && clean(name) && clean(value));

  const std::string again = llmproxy::cache::encode(*entry);
  FUZZ_CHECK(again == bytes);
  FUZZ_CHECK(llmproxy::cache::detail::encoded_size(*entry) == again.size());
  const auto twice = llmproxy::cache::decode(again);
  FUZZ_CHECK(twice && same(*twice, *entry));
  return 0;
}
