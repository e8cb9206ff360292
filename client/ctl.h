// sessiongridctl: the admin command line, as a library so that tests can run
// it against a fake server. main.cc only collects argv and the environment.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sg::client {

// Exit codes of RunCtl.
inline constexpr int kCtlOk = 0;
inline constexpr int kCtlRpcError = 1;  // also: health answered not SERVING
inline constexpr int kCtlUsageError = 2;

// The --help text.
std::string CtlUsage();

// Runs one invocation. `args` excludes the program name. `default_server`
// is used when --server is absent (main passes $SESSIONGRID_SERVER).
// Results go to `out` (JSON or a status word), failures to `err` as one line
// "error: <CODE>: <message>". Returns a kCtl* exit code. Thread-compatible.
int RunCtl(const std::vector<std::string>& args,
           absl::string_view default_server, std::ostream& out,
           std::ostream& err);

}  // namespace sg::client
