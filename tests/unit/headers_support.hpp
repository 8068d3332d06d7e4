#pragma once
// Building and reading server::Headers in unit tests.
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::test {

inline server::Headers make_headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
  server::Headers h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

inline std::vector<std::string> header_names(const server::Headers& h) {
  std::vector<std::string> out;
  for (const auto& f : h) out.emplace_back(f.name);
  return out;
}

}  // namespace llmproxy::test
