// `sessiongridctl import-redis`: flags, progress, summary and exit codes
// around ImportRedis (redis_import.h). ctl.cc hands the whole command line
// over when IsImportRedisCommand says so.
#pragma once

#include <atomic>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace sg::client {

// Exit code of an interrupted run (0 ok, 1 failure and 2 usage as every
// sessiongridctl command): the summary's cursor resumes it.
inline constexpr int kImportInterrupted = 3;

// What the command takes from the process, injected so tests can drive it.
struct ImportRedisEnv {
  std::string redis_auth;     // $REDISCLI_AUTH, the password when no file
  bool progress_tty = false;  // `err` is a terminal: redraw one line
  // Without a terminal: one progress line at most this often.
  absl::Duration progress_every = absl::Seconds(5);
  const std::atomic<bool>* stop = nullptr;  // turned true by SIGINT/SIGTERM
  const Clock* clock = Clock::Real();
};

// Whether sessiongridctl's `args` (program name excluded) name the
// import-redis command, global flags (--server, --timeout) skipped.
bool IsImportRedisCommand(const std::vector<std::string>& args);

// `sessiongridctl import-redis --help`.
std::string ImportRedisUsage();

// Runs the command: a JSON summary on `out` (one line), progress and
// errors on `err`. `default_server` as in RunCtl. Returns 0, 1 (an error:
// "error: CODE: message" and the cursor to resume from), 2 (usage) or
// kImportInterrupted.
int RunImportRedis(const std::vector<std::string>& args,
                   absl::string_view default_server, const ImportRedisEnv& env,
                   std::ostream& out, std::ostream& err);

// RunImportRedis with the real process around it: $REDISCLI_AUTH, whether
// stderr is a terminal, and SIGINT/SIGTERM turned into a stop between
// pages for the command's duration (a second signal kills as usual).
int RunImportRedisInProcess(const std::vector<std::string>& args,
                            absl::string_view default_server, std::ostream& out,
                            std::ostream& err);

}  // namespace sg::client
