#include "edge/classifier/path.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sg::classifier {
namespace {

std::string Norm(std::string_view target) {
  std::array<char, kMaxPathBytes> buf;
  auto n = NormalizePath(target, buf);
  return n ? std::string(buf.data(), *n) : "<too long>";
}

TEST(NormalizePathTest, Table) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"/", "/"},
      {"", "/"},
      {"/Assets/Main.JS?v=1", "/assets/main.js"},
      {"/page?x=.js", "/page"},
      {"/a#frag", "/a"},
      {"/%61ssets/x.js", "/assets/x.js"},
      {"/assets/../api/auth/x", "/api/auth/x"},
      {"/assets/%2e%2e/api/auth/x", "/api/auth/x"},
      {"/assets%2f..%2fapi/auth", "/api/auth"},
      {"/a/./b/.", "/a/b/"},
      {"/a/b/..", "/a/"},
      {"/..", "/"},
      {"/../../etc", "/etc"},
      {"/a//b", "/a//b"},
      {"/.well-known/x", "/.well-known/x"},
      {"/a/.hidden", "/a/.hidden"},
      {"/bad%zzescape%4", "/bad%zzescape%4"},
      {"http://Example.com/Assets/x?q", "/assets/x"},
      {"https://example.com", "/"},
      {"*", "*"},
  };
  for (const Case& c : cases) EXPECT_EQ(Norm(c.in), c.out) << c.in;
}

TEST(NormalizePathTest, OverlongPathIsReported) {
  const std::string ok = "/" + std::string(kMaxPathBytes - 1, 'a');
  EXPECT_EQ(Norm(ok).size(), kMaxPathBytes);
  EXPECT_EQ(Norm(ok + "b"), "<too long>");
  // Escapes shrink: 3 input bytes are one output byte.
  std::string encoded = "/";
  for (size_t i = 0; i < kMaxPathBytes - 1; ++i) encoded += "%61";
  EXPECT_EQ(Norm(encoded).size(), kMaxPathBytes);
}

// The normalization as specified, one byte at a time (the copy loop the
// 16-byte copy replaced), on top of RFC 3986 dot-segment removal.
std::optional<std::string> ReferenceNormalize(std::string_view t, size_t cap) {
  size_t i = 0;
  if (!t.empty() && t[0] != '/') {
    size_t q = 0;
    while (q < t.size() && t[q] != '/' && t[q] != '?' && t[q] != '#') ++q;
    if (q > 0 && t[q - 1] == ':' && t.size() - q >= 2 && t[q] == '/' &&
        t[q + 1] == '/') {
      q += 2;
      while (q < t.size() && t[q] != '/' && t[q] != '?' && t[q] != '#') ++q;
      i = q;
    }
  }
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  bool dots = false;
  for (; i < t.size(); ++i) {
    char c = t[i];
    if (c == '?' || c == '#') break;
    if (c == '%' && t.size() - i > 2 && hex(t[i + 1]) >= 0 &&
        hex(t[i + 2]) >= 0) {
      c = static_cast<char>(hex(t[i + 1]) * 16 + hex(t[i + 2]));
      i += 2;
    }
    if (c == '.' && !out.empty() && out.back() == '/') dots = true;
    if (out.size() == cap) return std::nullopt;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  if (out.empty()) return "/";
  if (!dots || out[0] != '/') return out;
  std::string resolved;  // RFC 3986 5.2.4, segment by segment
  size_t in = 0;
  while (in < out.size()) {
    size_t end = out.find('/', in + 1);
    if (end == std::string::npos) end = out.size();
    const std::string seg = out.substr(in + 1, end - in - 1);
    const bool last = end == out.size();
    if (seg == ".") {
      if (last) resolved += '/';
    } else if (seg == "..") {
      const size_t slash = resolved.rfind('/');
      resolved.resize(slash == std::string::npos ? 0 : slash);
      if (last) resolved += '/';
    } else {
      resolved += out.substr(in, end - in);
    }
    in = end;
  }
  return resolved.empty() ? "/" : resolved;
}

TEST(NormalizePathTest, AgreesWithByteAtATimeReference) {
  std::mt19937 rng(99);
  const char* const parts[] = {"/",
                               "a",
                               "B",
                               "Zz",
                               ".",
                               "..",
                               "%2e",
                               "%2F",
                               "%41",
                               "%zz",
                               "%4",
                               "%",
                               "?q",
                               "#f",
                               ".js",
                               "x.Y",
                               "//",
                               "-_~",
                               "\xe9",
                               ":",
                               "http://H",
                               "0123456789abcdef",
                               "ABCDEFGHIJKLMNOP"};
  for (int iter = 0; iter < 50000; ++iter) {
    std::string t;
    for (int k = rng() % 12; k > 0; --k) t += parts[rng() % std::size(parts)];
    // Exactly sized input, so reading past its end is a sanitizer error.
    std::vector<char> exact(t.begin(), t.end());
    const std::string_view view(exact.data(), exact.size());
    const size_t cap = rng() % 4 == 0 ? 1 + rng() % 40 : kMaxPathBytes;
    std::vector<char> buf(cap);
    const std::optional<size_t> n = NormalizePath(view, buf);
    const std::optional<std::string> want = ReferenceNormalize(t, cap);
    ASSERT_EQ(n.has_value(), want.has_value()) << t << " cap=" << cap;
    if (n) {
      ASSERT_EQ(std::string(buf.data(), *n), *want) << t;
    }
  }
}

TEST(LastSegmentExtensionTest, UsesLastSegmentOnly) {
  EXPECT_EQ(LastSegmentExtension("/v1.2/users"), "");  // seed: ".2/users"
  EXPECT_EQ(LastSegmentExtension("/a/b.min.js"), ".js");
  EXPECT_EQ(LastSegmentExtension("/a/b."), "");
  EXPECT_EQ(LastSegmentExtension("/a/.env"), ".env");
  EXPECT_EQ(LastSegmentExtension("/"), "");
  EXPECT_EQ(LastSegmentExtension("/x.d/"), "");
  EXPECT_EQ(LastSegmentExtension("/x.d/y"), "");
  EXPECT_EQ(LastSegmentExtension("x.gz"), ".gz");
  EXPECT_EQ(LastSegmentExtension(""), "");
}

}  // namespace
}  // namespace sg::classifier
