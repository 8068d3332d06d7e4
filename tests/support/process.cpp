#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace llmproxy::test {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(10);

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string temp_dir() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Checks each complete line after `from`; a trailing partial line only once the writer is gone.
std::optional<std::string> find_line(const std::string& text, std::size_t from, bool include_partial,
                                     const std::function<bool(const std::string&)>& matches) {
  std::size_t start = from;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos && !include_partial) break;
    std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (matches(line)) return line;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

Process::Process(std::string executable, std::vector<std::string> args, Environment env) {
  std::string path = temp_dir() + "/llmproxy-test-XXXXXX.log";
  const int log_fd = mkostemps(path.data(), 4, O_CLOEXEC);
  if (log_fd < 0) throw_errno("mkostemps " + path);
  log_path_ = path;

  // PATH, and the sanitizer settings of a sanitizer build, so children are checked like the test itself.
  for (const char* inherited : {"PATH", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    if (env.contains(inherited)) continue;
    if (const char* value = std::getenv(inherited)) env[inherited] = value;
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls are allowed.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(executable);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (const auto& [name, value] : env) env_storage.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const bool search_path = executable.find('/') == std::string::npos;

  // The child reports a failed exec through this close-on-exec pipe; EOF means exec succeeded.
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    const int saved = errno;
    close(log_fd);
    std::remove(log_path_.c_str());
    errno = saved;
    throw_errno("pipe2");
  }

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    const int in = open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, STDIN_FILENO);
    if (search_path) {
      execvpe(argv[0], argv.data(), envp.data());
    } else {
      execve(argv[0], argv.data(), envp.data());
    }
    const int err = errno;
    [[maybe_unused]] auto n = write(status_pipe[1], &err, sizeof err);
    _exit(127);
  }
  const int fork_errno = errno;
  close(status_pipe[1]);
  close(log_fd);
  if (pid < 0) {
    close(status_pipe[0]);
    std::remove(log_path_.c_str());
    errno = fork_errno;
    throw_errno("fork");
  }
  pid_ = pid;

  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(status_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    reap(true);
    std::remove(log_path_.c_str());
    throw std::system_error(exec_errno, std::generic_category(), "exec " + executable);
  }
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_),
      log_path_(std::move(other.log_path_)) {
  other.log_path_.clear();
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    // SIGTERM first so a graceful child (llm-proxy, mock-upstream) exits normally and writes its coverage and
    // sanitizer reports; SIGKILL whatever is still there after a short grace period.
    kill(pid_, SIGTERM);
    if (!wait_exit(std::chrono::seconds(3))) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      reap(true);
    } else {
      kill(-pid_, SIGKILL);  // stray grandchildren of the group, if any
    }
  }
  if (!log_path_.empty() && std::getenv("LLMPROXY_KEEP_TEST_LOGS") == nullptr) std::remove(log_path_.c_str());
}

bool Process::reap(bool block) {
  if (exit_code_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    exit_code_ = -1;
  }
  return true;
}

std::string Process::output() const { return log_path_.empty() ? std::string() : read_file(log_path_); }

bool Process::has_exited() const {
  if (exit_code_) return true;
  if (pid_ <= 0) return false;
  // WNOWAIT peeks without reaping, so this stays const and wait_exit still sees the status.
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
}

// In both wait_for_line overloads the exit state is read before the log, so a line written just before the
// child exited is never missed.
std::optional<std::string> Process::wait_for_line(std::string_view substring, std::chrono::milliseconds timeout,
                                                  std::size_t from) const {
  const std::string needle(substring);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = has_exited();
    if (auto line = find_line(output(), from, exited,
                              [&](const std::string& l) { return l.find(needle) != std::string::npos; })) {
      return line;
    }
    if (exited || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> Process::wait_for_line(const std::regex& pattern, std::chrono::milliseconds timeout,
                                                  std::size_t from) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = has_exited();
    if (auto line = find_line(output(), from, exited,
                              [&](const std::string& l) { return std::regex_search(l, pattern); })) {
      return line;
    }
    if (exited || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

void Process::signal(int sig) {
  if (pid_ > 0 && !reap(false)) kill(pid_, sig);
}

bool Process::running() { return pid_ > 0 && !reap(false); }

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (pid_ <= 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exit_code_;
}

std::pair<int, std::string> run_command(const std::vector<std::string>& args, const Environment& env,
                                        std::chrono::milliseconds timeout) {
  if (args.empty()) throw std::invalid_argument("run_command: no command");
  Process process(args[0], std::vector<std::string>(args.begin() + 1, args.end()), env);
  auto code = process.wait_exit(timeout);
  if (!code) {
    process.signal(SIGKILL);
    process.wait_exit(std::chrono::seconds(5));
    return {-1, process.output()};
  }
  return {*code, process.output()};
}

}  // namespace llmproxy::test
