#pragma once
/// A private temporary directory for one test: every test kind (unit, contract, integration) uses this one.
/// Light on purpose (no Boost, no driver headers): it is included by most test files.
#include <filesystem>
#include <string>

namespace llmproxy::test {

/// A fresh directory under the system temp dir (mkdtemp, mode 0700), removed with everything in it by the
/// destructor. Not thread-safe: unique_file() counts without a lock.
class TempDir {
 public:
  /// Throws std::system_error if the directory cannot be created.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// `name` inside this directory, as a string (for environment variables and command lines).
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// A path in this directory that no earlier call returned, ending in `suffix` (e.g. ".sqlite").
  std::filesystem::path unique_file(const std::string& suffix);

 private:
  std::filesystem::path path_;
  int counter_ = 0;
};

}  // namespace llmproxy::test
