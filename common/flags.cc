#include "common/flags.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sg {
namespace {
// Debian's Abseil keeps its own string_view type; convert at the boundary.
absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(AV(text));
  size_t digits = 0;
  while (digits < t.size() &&
         (std::isdigit(static_cast<unsigned char>(t[digits])) ||
          t[digits] == '.')) {
    ++digits;
  }
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(t.substr(0, digits), &number) ||
      number < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", AV(text), "' is not a size (e.g. 65536, 64KiB, 256MiB)"));
  }
  std::string unit = absl::AsciiStrToLower(t.substr(digits));
  uint64_t scale = 0;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    scale = 1ull << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    scale = 1ull << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    scale = 1ull << 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    scale = 1ull << 40;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", AV(text), "' has an unknown unit (use B, KiB, MiB, GiB or TiB)"));
  }
  return static_cast<uint64_t>(number * static_cast<double>(scale));
}

absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view text) {
  absl::Duration d;
  std::string t(absl::StripAsciiWhitespace(AV(text)));
  if (t == "0") return absl::ZeroDuration();
  if (!absl::ParseDuration(t, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", AV(text), "' is not a duration (e.g. 250ms, 30s, 15m, 24h)"));
  }
  return d;
}

FlagSet::FlagSet(std::string program, std::string summary,
                 std::string env_prefix)
    : program_(std::move(program)),
      summary_(std::move(summary)),
      env_prefix_(std::move(env_prefix)) {}

void FlagSet::AddString(std::string name, std::string* target,
                        std::string help) {
  AddCustom(std::move(name), *target, std::move(help),
            [target](std::string_view v) {
              *target = std::string(v);
              return absl::OkStatus();
            });
}

void FlagSet::AddDuration(std::string name, absl::Duration* target,
                          std::string help) {
  AddCustom(std::move(name), absl::FormatDuration(*target), std::move(help),
            [target](std::string_view v) -> absl::Status {
              auto d = ParseDurationFlag(v);
              if (!d.ok()) return d.status();
              *target = *d;
              return absl::OkStatus();
            });
}

void FlagSet::AddBytes(std::string name, uint64_t* target, std::string help) {
  AddCustom(std::move(name), absl::StrCat(*target), std::move(help),
            [target](std::string_view v) -> absl::Status {
              auto n = ParseByteSize(v);
              if (!n.ok()) return n.status();
              *target = *n;
              return absl::OkStatus();
            });
}

void FlagSet::AddInt(std::string name, int64_t* target, std::string help) {
  AddCustom(std::move(name), absl::StrCat(*target), std::move(help),
            [target](std::string_view v) -> absl::Status {
              if (!absl::SimpleAtoi(AV(v), target)) {
                return absl::InvalidArgumentError(
                    absl::StrCat("'", AV(v), "' is not an integer"));
              }
              return absl::OkStatus();
            });
}

void FlagSet::AddDouble(std::string name, double* target, std::string help) {
  AddCustom(std::move(name), absl::StrCat(*target), std::move(help),
            [target](std::string_view v) -> absl::Status {
              if (!absl::SimpleAtod(AV(v), target)) {
                return absl::InvalidArgumentError(
                    absl::StrCat("'", AV(v), "' is not a number"));
              }
              return absl::OkStatus();
            });
}

void FlagSet::AddBool(std::string name, bool* target, std::string help) {
  AddCustom(std::move(name), *target ? "true" : "false", std::move(help),
            [target](std::string_view v) -> absl::Status {
              std::string s = absl::AsciiStrToLower(AV(v));
              if (s == "true" || s == "1" || s == "yes" || s == "on") {
                *target = true;
              } else if (s == "false" || s == "0" || s == "no" || s == "off") {
                *target = false;
              } else {
                return absl::InvalidArgumentError(
                    absl::StrCat("'", AV(v), "' is not true or false"));
              }
              return absl::OkStatus();
            });
  flags_.back().is_bool = true;
}

void FlagSet::AddCustom(std::string name, std::string default_text,
                        std::string help,
                        std::function<absl::Status(std::string_view)> parse) {
  flags_.push_back(Flag{std::move(name), std::move(default_text),
                        std::move(help), false, std::move(parse)});
}

std::string FlagSet::EnvName(const std::string& flag) const {
  std::string env = env_prefix_ + "_";
  for (char c : flag) {
    env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(
                                       static_cast<unsigned char>(c))));
  }
  return env;
}

FlagSet::Flag* FlagSet::Find(std::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc,
                                                        char** argv) {
  for (Flag& f : flags_) {
    std::string env = EnvName(f.name);
    if (const char* value = std::getenv(env.c_str()); value != nullptr) {
      if (absl::Status s = f.parse(value); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "environment ", env, " (flag --", f.name, "): ", s.message()));
      }
    }
  }
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg.substr(0, 2) != "--") {
      positional.emplace_back(arg);
      continue;
    }
    arg.remove_prefix(2);
    if (arg == "help" || arg == "h") {
      help_requested_ = true;
      continue;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr && !has_value && name.substr(0, 3) == "no-") {
      flag = Find(name.substr(3));
      if (flag != nullptr && flag->is_bool) {
        value = "false";
        has_value = true;
      } else {
        flag = nullptr;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag --", AV(name), " (see ", program_, " --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", AV(name), " needs a value"));
      }
    }
    if (absl::Status s = flag->parse(value); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", AV(name), ": ", s.message()));
    }
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat(program_, ": ", summary_, "\n\nFlags (each also from the environment as ", env_prefix_, "_<NAME>; flags win):\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, "  (default: ",
                    f.default_text.empty() ? "\"\"" : f.default_text, ")\n");
    absl::StrAppend(&out, "      ", f.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Print this help and exit.\n");
  return out;
}

std::string FlagSet::DescribeOptionError(const absl::Status& status) const {
  std::string message(status.message());
  for (const Flag& f : flags_) {
    std::string field = f.name;
    for (char& c : field) c = c == '-' ? '_' : c;
    if (message.rfind(field + " ", 0) == 0) {
      return absl::StrCat("flag --", f.name, ": ", message);
    }
  }
  return message;
}

std::vector<std::string> FlagSet::ParseOrExit(int argc, char** argv) {
  auto positional = Parse(argc, argv);
  if (!positional.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(positional.status().message()).c_str());
    std::exit(2);
  }
  if (help_requested_) {
    std::fputs(Usage().c_str(), stdout);
    std::exit(0);
  }
  return *std::move(positional);
}

}  // namespace sg
