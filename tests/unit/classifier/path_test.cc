#include "edge/classifier/path.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

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

TEST(LastSegmentExtensionTest, UsesLastSegmentOnly) {
  EXPECT_EQ(LastSegmentExtension("/v1.2/users"), "");  // seed: ".2/users"
  EXPECT_EQ(LastSegmentExtension("/a/b.min.js"), ".js");
  EXPECT_EQ(LastSegmentExtension("/a/b."), "");
  EXPECT_EQ(LastSegmentExtension("/a/.env"), ".env");
  EXPECT_EQ(LastSegmentExtension("/"), "");
  EXPECT_EQ(LastSegmentExtension("/x.d/"), "");
}

}  // namespace
}  // namespace sg::classifier
