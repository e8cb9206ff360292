#include "tests/testutil/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace sg::testutil {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    std::vector<std::string> argv, std::vector<std::string> env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    // Tests block signals in some threads; the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (std::string& kv : env) putenv(kv.data());
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, fds[0]));
}

Subprocess::Subprocess(pid_t pid, int output_fd)
    : pid_(pid), output_fd_(output_fd) {
  reader_ = std::thread([this] { ReadLoop(); });
}

Subprocess::~Subprocess() {
  if (!exit_code_) {
    kill(pid_, SIGKILL);
    (void)Wait(absl::Seconds(30));
  }
  if (reader_.joinable()) reader_.join();
  close(output_fd_);
}

void Subprocess::ReadLoop() {
  char buf[4096];
  while (true) {
    ssize_t n = read(output_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    absl::MutexLock lock(&mu_);
    if (n <= 0) {
      eof_ = true;
      return;
    }
    output_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<std::string> Subprocess::WaitForLine(std::string_view needle,
                                                   absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  size_t found = std::string::npos;
  auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    found = output_.find(needle);
    // Only a whole line counts.
    if (found != std::string::npos &&
        output_.find('\n', found) == std::string::npos) {
      found = std::string::npos;
    }
    return found != std::string::npos || eof_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (found == std::string::npos) return std::nullopt;
  size_t begin = output_.rfind('\n', found);
  begin = begin == std::string::npos ? 0 : begin + 1;
  size_t end = output_.find('\n', found);
  return output_.substr(begin, end - begin);
}

void Subprocess::Signal(int signal_number) { kill(pid_, signal_number); }

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (exit_code_) return exit_code_;
  absl::Time deadline = absl::Now() + timeout;
  {
    // The child's output closes when it exits (unless it forked helpers).
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&eof_), deadline);
  }
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (absl::Now() >= deadline) return std::nullopt;
    // The output already ended; the exit is a moment away.
    absl::SleepFor(absl::Milliseconds(5));
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                 : 128 + WTERMSIG(status);
  return exit_code_;
}

std::string Subprocess::Output() const {
  absl::MutexLock lock(&mu_);
  return output_;
}

std::string MakeTempDir(std::string_view prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  return made ? std::string(made) : std::string();
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string FieldFromLogLine(std::string_view line, std::string_view key) {
  std::string pattern = " " + std::string(key) + "=";
  size_t at = line.find(pattern);
  if (at == std::string_view::npos) return "";
  size_t begin = at + pattern.size();
  size_t end = line.find(' ', begin);
  return std::string(line.substr(begin, end == std::string_view::npos
                                            ? std::string_view::npos
                                            : end - begin));
}

}  // namespace sg::testutil
