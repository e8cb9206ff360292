// Structured logging: one logfmt line per event on stderr,
//   ts=2026-11-28T18:00:00.123Z level=info msg="listening" address=...
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sg {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<std::string_view, std::string>;

// Writes one event. Values are quoted when they contain spaces, quotes or
// '='.
void Log(LogLevel level, std::string_view msg,
         std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view msg,
                    std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, msg, fields);
}
inline void LogWarn(std::string_view msg,
                    std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarn, msg, fields);
}
inline void LogError(std::string_view msg,
                     std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, msg, fields);
}

}  // namespace sg
