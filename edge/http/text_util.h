// Small string helpers for edge code. Debian's Abseil is built with its own
// absl::string_view (not std::string_view), so absl::StrCat and friends do
// not take std::string_view; these do.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace sg::edge {

namespace text_internal {
inline void AppendOne(std::string* out, std::string_view s) { out->append(s); }
inline void AppendOne(std::string* out, const std::string& s) {
  out->append(s);
}
inline void AppendOne(std::string* out, const char* s) { out->append(s); }
#ifndef ABSL_USES_STD_STRING_VIEW
inline void AppendOne(std::string* out, absl::string_view s) {
  out->append(s.data(), s.size());
}
#endif
template <typename T>
requires std::is_integral_v<T>
void AppendOne(std::string* out, T v) { out->append(std::to_string(v)); }
}  // namespace text_internal

// Concatenates string-like and integer arguments.
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (text_internal::AppendOne(&out, args), ...);
  return out;
}

// Trims spaces and tabs at both ends.
inline std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Trims ASCII whitespace (space, \t, \r, \n, \v, \f) at both ends.
inline std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// ASCII lower-case copy.
inline std::string AsciiLowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return out;
}

}  // namespace sg::edge
