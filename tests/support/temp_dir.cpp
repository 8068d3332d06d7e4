#include "support/temp_dir.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace llmproxy::test {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "llmproxy-test.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;  // best effort: a destructor must not throw, the system temp dir is cleaned anyway
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::unique_file(const std::string& suffix) {
  return path_ / ("file" + std::to_string(++counter_) + suffix);
}

}  // namespace llmproxy::test
