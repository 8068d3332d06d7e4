#pragma once
/// Child processes for integration tests: the real llm-proxy binary, mock-upstream, short helper commands.
/// Not thread-safe: use a Process from one thread (the one that created it, see the note on the constructor).
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/ports.hpp"

namespace llmproxy::test {

/// An explicit environment: a child sees exactly these variables, plus the parent's PATH and sanitizer options
/// (ASAN_OPTIONS, LSAN_OPTIONS, UBSAN_OPTIONS) when absent here.
using Environment = std::map<std::string, std::string>;

/// A running child process whose stdout and stderr go to one temporary log file.
class Process {
 public:
  /// Starts `executable` (a path, or a name searched in PATH) with `args` and exactly `env` (+ PATH).
  /// The child gets its own process group and is SIGKILLed if the creating thread dies, so a crashed test
  /// leaves nothing behind. Throws std::system_error if the log file cannot be made or exec fails.
  Process(std::string executable, std::vector<std::string> args, Environment env = {});
  /// If still running: SIGTERM, up to 3 s to exit, then SIGKILL of its process group; reaps it and deletes the log file
  /// (kept when the environment variable LLMPROXY_KEEP_TEST_LOGS is set).
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) = delete;

  int pid() const noexcept { return pid_; }
  const std::string& log_path() const noexcept { return log_path_; }

  /// Everything the child has written to stdout and stderr so far.
  std::string output() const;

  /// Waits until a complete line of the log (from byte offset `from` on) contains `substring` / matches
  /// `pattern` (std::regex_search). Returns that line without its newline, or nullopt on timeout or when the
  /// child exited without printing it.
  std::optional<std::string> wait_for_line(std::string_view substring, std::chrono::milliseconds timeout,
                                           std::size_t from = 0) const;
  std::optional<std::string> wait_for_line(const std::regex& pattern, std::chrono::milliseconds timeout,
                                           std::size_t from = 0) const;

  /// Sends `sig` to the child (not its group). No-op once it has been reaped.
  void signal(int sig);

  /// True while the child has not exited.
  bool running();

  /// Waits up to `timeout` for the child to exit. Returns its exit code (128 + signal number if a signal killed
  /// it), or nullopt if it is still running. Once it has exited, returns the same code again.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

 private:
  bool reap(bool block);
  bool has_exited() const;

  int pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

/// Runs a short-lived command (`args[0]` is the executable) with `env` (+ PATH) and waits for it.
/// Returns {exit code, combined stdout+stderr}; on timeout the command is killed and the code is -1.
std::pair<int, std::string> run_command(const std::vector<std::string>& args, const Environment& env = {},
                                        std::chrono::milliseconds timeout = std::chrono::seconds(60));


}  // namespace llmproxy::test
