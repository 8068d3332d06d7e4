#include <catch2/catch.hpp>

#include "llmproxy/config/config.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read_doc() {
  std::ifstream in(LLMPROXY_SOURCE_DIR "/docs/configuration.md");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_variable_name(const std::string& s) {
  if (s.empty() || s[0] < 'A' || s[0] > 'Z') return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

/// Backticked ALL_CAPS names in the first column of every Markdown table row.
std::vector<std::string> first_column_names(const std::string& doc) {
  std::vector<std::string> names;
  std::istringstream lines(doc);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') continue;
    const auto end = line.find('|', 1);
    if (end == std::string::npos) continue;
    const std::string cell = line.substr(1, end - 1);
    std::size_t pos = 0;
    while ((pos = cell.find('`', pos)) != std::string::npos) {
      const auto close = cell.find('`', pos + 1);
      if (close == std::string::npos) break;
      const std::string name = cell.substr(pos + 1, close - pos - 1);
      if (is_variable_name(name)) names.push_back(name);
      pos = close + 1;
    }
  }
  return names;
}

}  // namespace

TEST_CASE("docs/configuration.md documents every variable", "[config][docs]") {
  const auto doc = read_doc();
  REQUIRE_FALSE(doc.empty());
  for (const auto& name : llmproxy::config::known_variables()) {
    INFO(name);
    CHECK(doc.find("`" + name + "`") != std::string::npos);
  }
}

TEST_CASE("docs/configuration.md table lists only known variables and each once", "[config][docs]") {
  const auto names = first_column_names(read_doc());
  const auto& known = llmproxy::config::known_variables();
  const std::set<std::string> known_set(known.begin(), known.end());
  for (const auto& name : names) {
    INFO(name);
    CHECK(known_set.count(name) == 1);
  }
  // Every variable has its own row, so the table is the complete reference.
  CHECK(std::set<std::string>(names.begin(), names.end()) == known_set);
  CHECK(names.size() == known.size());
}
