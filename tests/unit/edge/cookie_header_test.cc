#include "edge/http/cookie_header.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>

namespace sg::edge {
namespace {

TEST(FindCookieTest, FindsValueBetweenOtherCookies) {
  EXPECT_EQ(FindCookie("a=1; connect.sid=s%3Aabc.def; b=2", "connect.sid"),
            std::optional<std::string_view>("s%3Aabc.def"));
}

TEST(FindCookieTest, FirstOccurrenceWins) {
  EXPECT_EQ(FindCookie("x=first; x=second", "x"),
            std::optional<std::string_view>("first"));
}

TEST(FindCookieTest, TrimsAndUnquotes) {
  EXPECT_EQ(FindCookie("  x  =  \"quoted\"  ;y=2", "x"),
            std::optional<std::string_view>("quoted"));
}

TEST(FindCookieTest, NameMustMatchExactly) {
  EXPECT_EQ(FindCookie("connect.sid2=a; xconnect.sid=b", "connect.sid"),
            std::nullopt);
  EXPECT_EQ(FindCookie("Connect.sid=a", "connect.sid"), std::nullopt);
}

TEST(FindCookieTest, PairsWithoutEqualsAreSkipped) {
  EXPECT_EQ(FindCookie("flag; x=1", "x"), std::optional<std::string_view>("1"));
  EXPECT_EQ(FindCookie("x", "x"), std::nullopt);
}

TEST(FindCookieTest, EmptyValueIsFoundAsEmpty) {
  EXPECT_EQ(FindCookie("x=; y=1", "x"), std::optional<std::string_view>(""));
  EXPECT_EQ(FindCookie("", "x"), std::nullopt);
}

TEST(DecodeCookieValueTest, DecodesEscapes) {
  std::array<char, 64> buf;
  const auto n = DecodeCookieValue("s%3Aab%2Fc%2B", buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf.data(), *n), "s:ab/c+");
}

TEST(DecodeCookieValueTest, MalformedEscapeKeepsRawValue) {
  std::array<char, 64> buf;
  const auto n = DecodeCookieValue("a%3Ab%zz", buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf.data(), *n), "a%3Ab%zz");
  const auto m = DecodeCookieValue("abc%4", buf);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(std::string(buf.data(), *m), "abc%4");
}

TEST(DecodeCookieValueTest, ReportsTooSmallBuffer) {
  std::array<char, 4> buf;
  EXPECT_EQ(DecodeCookieValue("abcdef", buf), std::nullopt);
  EXPECT_EQ(DecodeCookieValue("ab%zzcd", buf), std::nullopt);
}

}  // namespace
}  // namespace sg::edge
