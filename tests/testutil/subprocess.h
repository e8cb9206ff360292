// Runs a real binary for integration tests: captures its stdout+stderr,
// lets a test wait for a log line (no sleeping), signal it, and reap it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sg::testutil {

class Subprocess final {
 public:
  // Starts argv[0] with the given arguments; `env` entries ("K=V") are added
  // to the inherited environment.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      std::vector<std::string> argv, std::vector<std::string> env = {});
  ~Subprocess();  // SIGKILLs and reaps the child if it still runs.
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Blocks until an output line contains `needle` (searching from the start
  // of the output), the child's output ends, or `timeout` passes.
  std::optional<std::string> WaitForLine(std::string_view needle,
                                         absl::Duration timeout);
  // Sends a signal.
  void Signal(int signal_number);
  // Waits for exit: the exit code, 128+N for a signal, nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);
  // All output captured so far.
  std::string Output() const;
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int output_fd);
  void ReadLoop();

  const pid_t pid_;
  const int output_fd_;
  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<int> exit_code_;
  std::thread reader_;
};

// A fresh empty directory under the test temp dir; removed by the caller
// with RemoveTree.
std::string MakeTempDir(std::string_view prefix);
void RemoveTree(const std::string& path);

// "address=HOST:PORT" from a log line, or "" if absent.
std::string FieldFromLogLine(std::string_view line, std::string_view key);

}  // namespace sg::testutil
