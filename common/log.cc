#include "common/log.h"

#include <unistd.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sg {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendValue(std::string& out, std::string_view value) {
  bool quote = value.empty() ||
               value.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (!quote) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

void Log(LogLevel level, std::string_view msg,
         std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(128);
  line.append("ts=");
  line.append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                               absl::UTCTimeZone()));
  line.append(" level=");
  line.append(LevelName(level));
  line.append(" msg=");
  AppendValue(line, msg);
  for (const auto& [key, value] : fields) {
    line.push_back(' ');
    line.append(key);
    line.push_back('=');
    AppendValue(line, value);
  }
  line.push_back('\n');
  // One write per line keeps lines whole when threads log at once.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace sg
