// A small command-line parser for our binaries: `--name=value` or
// `--name value`, each flag also readable from PREFIX_NAME in the
// environment (flags win), typed values with clear errors, and --help.
//
// Only main.cc files use it (STYLE.md: only main reads flags).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sg {

// Parses "65536", "64KiB", "256MiB", "1GiB" (also KB/MB/GB as powers of 2).
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);
// Parses absl durations ("30s", "24h", "1h30m", "250ms") and "0".
absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view text);

class FlagSet final {
 public:
  // `env_prefix` like "SESSIONGRID": flag --data-dir reads
  // SESSIONGRID_DATA_DIR.
  FlagSet(std::string program, std::string summary, std::string env_prefix);

  // Each registration records the target's current value as the default.
  // Targets must outlive Parse().
  void AddString(std::string name, std::string* target, std::string help);
  void AddDuration(std::string name, absl::Duration* target, std::string help);
  void AddBytes(std::string name, uint64_t* target, std::string help);
  void AddInt(std::string name, int64_t* target, std::string help);
  void AddDouble(std::string name, double* target, std::string help);
  void AddBool(std::string name, bool* target, std::string help);
  // A flag whose value is checked by `parse` (for enums and lists).
  void AddCustom(std::string name, std::string default_text, std::string help,
                 std::function<absl::Status(std::string_view)> parse);

  // Applies the environment, then argv. Returns positional arguments.
  // INVALID_ARGUMENT names the offending flag. `--help` sets help_requested.
  absl::StatusOr<std::vector<std::string>> Parse(int argc, char** argv);
  bool help_requested() const { return help_requested_; }
  std::string Usage() const;

  // Options::Validate() messages start with the option's field name
  // (`touch_after must be ...`); this names the matching flag instead
  // (`flag --touch-after: touch_after must be ...`) when there is one.
  std::string DescribeOptionError(const absl::Status& status) const;

  // For main(): parses, prints usage and exits 0 on --help, prints
  // "error: ..." and exits 2 on a bad flag. Returns positional arguments.
  std::vector<std::string> ParseOrExit(int argc, char** argv);

 private:
  struct Flag {
    std::string name;
    std::string default_text;
    std::string help;
    bool is_bool = false;
    std::function<absl::Status(std::string_view)> parse;
  };
  std::string EnvName(const std::string& flag) const;
  Flag* Find(std::string_view name);

  std::string program_;
  std::string summary_;
  std::string env_prefix_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace sg
