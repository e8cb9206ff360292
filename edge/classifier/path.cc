#include "edge/classifier/path.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "edge/classifier/matchers.h"

namespace sg::classifier {
namespace {

// Each byte lower-cased, except those the copy loop must look at (query
// and fragment start, escapes, dots), which map to 0, as does 0 itself;
// a 0 only sends its byte through the slower per-byte path.
constexpr std::array<char, 256> kPlainLower = [] {
  std::array<char, 256> t{};
  for (int b = 0; b < 256; ++b) t[b] = AsciiLower(static_cast<char>(b));
  t['?'] = t['#'] = t['%'] = t['.'] = 0;
  return t;
}();

// Copies the bytes of [p, end) up to the first special one, lower-cased,
// to out[0, room) and returns how many it copied: all of them, or up to
// the first special byte, or `room` if out fills first. Most targets have
// no escape and at most one dot (before the extension), so nearly all of
// a path goes through here. Bytes of out past the returned count may be
// overwritten.
size_t CopyPlain(const char* p, const char* end, char* out, size_t room) {
  const size_t left = static_cast<size_t>(end - p);
  size_t done = 0;
#if defined(__SSE2__)
  // 16 bytes per step: one compare per special byte, a lower-casing add,
  // one store. The last step takes the 16 bytes that end at `end`, so
  // nothing past the target is read; the bytes it repeats were plain and
  // are stored again unchanged. Shorter runs take the byte loop below.
  if (left >= 16 && room >= left) {
    while (true) {
      const size_t at = std::min(done, left - 16);
      const __m128i x =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
      const auto eq = [&](char c) {
        return _mm_cmpeq_epi8(x, _mm_set1_epi8(c));
      };
      const auto stop = static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(
          _mm_or_si128(eq('?'), eq('#')), _mm_or_si128(eq('%'), eq('.')))));
      // ASCII lower-case: adding 0x80 - 'A' moves 'A'..'Z' to the 26
      // smallest signed bytes, which get bit 5.
      const __m128i upper = _mm_cmplt_epi8(
          _mm_add_epi8(x, _mm_set1_epi8(static_cast<char>(0x80 - 'A'))),
          _mm_set1_epi8(static_cast<char>(0x80 + 26)));
      _mm_storeu_si128(
          reinterpret_cast<__m128i*>(out + at),
          _mm_or_si128(x, _mm_and_si128(upper, _mm_set1_epi8(0x20))));
      if (stop != 0) return at + static_cast<size_t>(__builtin_ctz(stop));
      if (at + 16 == left) return left;
      done = at + 16;
    }
  }
#endif
  const size_t limit = std::min(left, room);
  for (; done < limit; ++done) {
    const char c = kPlainLower[static_cast<uint8_t>(p[done])];
    if (c == 0) break;
    out[done] = c;
  }
  return done;
}

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
  while (true) {
    const size_t plain = CopyPlain(p, end, o + n, cap - n);
    p += plain;
    n += plain;
    if (p == end) break;
    // A special byte (or a NUL), or a plain one that did not fit.
    char c = *p;
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
    if (n == cap) return std::nullopt;
    o[n++] = AsciiLower(c);
    ++p;
  }
  if (n == 0) {
    o[0] = '/';
    return 1;
  }
  if (maybe_dots && o[0] == '/') n = RemoveDotSegments(o, n);
  return n;
}

std::string_view LastSegmentExtension(std::string_view path) {
  if (path.empty()) return {};
  // The last '.' of the path, if no '/' follows it, is the last one of the
  // last segment; if a '/' follows, the last segment has none. memrchr
  // scans a word or more at a time, and most paths have no dot at all.
  const void* dot = memrchr(path.data(), '.', path.size());
  if (dot == nullptr) return {};
  const size_t at =
      static_cast<size_t>(static_cast<const char*>(dot) - path.data());
  const std::string_view ext = path.substr(at);
  if (ext.size() == 1 || ext.find('/') != std::string_view::npos) return {};
  return ext;
}

}  // namespace sg::classifier
