#include "edge/classifier/path.h"

#include <array>
#include <cstring>

#include "edge/classifier/matchers.h"

namespace sg::classifier {
namespace {

// Bytes the copy loop must look at: query/fragment start, escapes, dots.
constexpr std::array<bool, 256> kSpecial = [] {
  std::array<bool, 256> t{};
  t['?'] = t['#'] = t['%'] = t['.'] = true;
  return t;
}();

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Resolves dot segments of p[0, n) in place; p[0] == '/'. The output is
// never longer than the input consumed, so writing over it is safe.
size_t RemoveDotSegments(char* p, size_t n) {
  size_t out = 0;
  size_t in = 0;
  while (in < n) {
    // p[in] == '/': the segment is (in, end).
    size_t end = in + 1;
    while (end < n && p[end] != '/') ++end;
    const size_t seg_len = end - in - 1;
    const char* seg = p + in + 1;
    const bool last = end == n;
    if (seg_len == 1 && seg[0] == '.') {
      if (last) p[out++] = '/';
    } else if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
      while (out > 0 && p[out - 1] != '/') --out;
      if (out > 0) --out;  // drop the '/' that began the popped segment
      if (last) p[out++] = '/';
    } else {
      std::memmove(p + out, p + in, end - in);
      out += end - in;
    }
    in = end;
  }
  if (out == 0) p[out++] = '/';
  return out;
}

}  // namespace

std::optional<size_t> NormalizePath(std::string_view target,
                                    std::span<char> out) {
  if (out.empty()) return std::nullopt;
  const char* p = target.data();
  const char* const end = p + target.size();
  // Absolute-form: skip "scheme://authority" (a scheme never contains '/').
  if (p != end && *p != '/') {
    const char* q = p;
    while (q != end && *q != '/' && *q != '?' && *q != '#') ++q;
    if (q > p && q[-1] == ':' && end - q >= 2 && q[0] == '/' && q[1] == '/') {
      q += 2;
      while (q != end && *q != '/' && *q != '?' && *q != '#') ++q;
      p = q;
    }
  }
  size_t n = 0;
  bool maybe_dots = false;  // saw a '.' right after a '/'
  const size_t cap = out.size();
  char* const o = out.data();
  for (; p != end; ++p) {
    char c = *p;
    if (kSpecial[static_cast<uint8_t>(c)]) [[unlikely]] {
      if (c == '?' || c == '#') break;
      if (c == '%' && end - p > 2) {
        const int h = HexValue(p[1]);
        const int l = HexValue(p[2]);
        if (h >= 0 && l >= 0) {
          c = static_cast<char>(h * 16 + l);
          p += 2;
        }
      }
      if (c == '.' && n > 0 && o[n - 1] == '/') maybe_dots = true;
    }
    if (n == cap) return std::nullopt;
    o[n++] = AsciiLower(c);
  }
  if (n == 0) {
    o[0] = '/';
    return 1;
  }
  if (maybe_dots && o[0] == '/') n = RemoveDotSegments(o, n);
  return n;
}

std::string_view LastSegmentExtension(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view segment =
      slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = segment.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == segment.size()) return {};
  return segment.substr(dot);
}

}  // namespace sg::classifier
