#include "edge/http/cookie_header.h"

#include <cstring>

namespace sg::edge {
namespace {

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string_view> FindCookie(std::string_view header,
                                           std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view()
                                            : header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (TrimOws(pair.substr(0, eq)) != name) continue;
    std::string_view value = TrimOws(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return std::nullopt;
}

std::optional<size_t> DecodeCookieValue(std::string_view in,
                                        std::span<char> out) {
  size_t n = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (n >= out.size()) return std::nullopt;
    char c = in[i];
    if (c == '%') {
      const int h = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      const int l = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (h < 0 || l < 0) {
        // Malformed escape: decodeURIComponent throws and the parser keeps
        // the raw value. (Invalid UTF-8 after decoding is not detected; it
        // can only occur in values that never verify.)
        if (in.size() > out.size()) return std::nullopt;
        std::memcpy(out.data(), in.data(), in.size());
        return in.size();
      }
      c = static_cast<char>(h * 16 + l);
      i += 2;
    }
    out[n++] = c;
  }
  return n;
}

}  // namespace sg::edge
