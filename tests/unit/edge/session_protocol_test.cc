#include "edge/session_protocol.h"

#include <random>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace sg::edge {
namespace {

TEST(SessionProtocolTest, OfferTakesTheFirstOfEachFieldAndFlagsTheFamily) {
  RawDirectives raw;
  EXPECT_TRUE(raw.Offer("X-Session-Set", "Zmlyc3Q="));
  EXPECT_TRUE(raw.Offer("x-session-set", "c2Vjb25k"));
  EXPECT_TRUE(raw.Offer("X-SESSION-DESTROY", "1"));
  EXPECT_TRUE(raw.Offer("X-Session-Unknown", "x"));  // still ours: dropped
  EXPECT_FALSE(raw.Offer("X-Sessions", "x"));
  EXPECT_FALSE(raw.Offer("Set-Cookie", "a=b"));
  ASSERT_TRUE(raw.set.has_value());
  EXPECT_EQ(*raw.set, "Zmlyc3Q=");
  EXPECT_EQ(raw.destroy.value_or(""), "1");
  EXPECT_FALSE(raw.principal.has_value());
}

TEST(SessionProtocolTest, ParseDirectivesDecodesAndValidates) {
  RawDirectives raw;
  raw.set = "eyJuIjoxfQ";  // {"n":1} without padding
  raw.principal = " alice ";
  raw.regenerate = "true";
  raw.destroy = "0";
  raw.ttl = "3600";
  SessionDirectives d = ParseDirectives(raw);
  EXPECT_EQ(d.data.value_or(""), R"({"n":1})");
  EXPECT_EQ(d.principal.value_or(""), "alice");
  EXPECT_TRUE(d.regenerate);
  EXPECT_FALSE(d.destroy);
  EXPECT_EQ(d.ttl.value_or(absl::ZeroDuration()), absl::Hours(1));
  EXPECT_EQ(d.invalid, 0);
  EXPECT_TRUE(d.any());
}

TEST(SessionProtocolTest, InvalidDirectivesAreIgnoredAndCounted) {
  RawDirectives raw;
  raw.set = "not base64!";
  raw.principal = "bad\x01name";
  raw.ttl = "-5";
  SessionDirectives d = ParseDirectives(raw);
  EXPECT_FALSE(d.data.has_value());
  EXPECT_FALSE(d.principal.has_value());
  EXPECT_FALSE(d.ttl.has_value());
  EXPECT_EQ(d.invalid, 3);
  EXPECT_FALSE(d.any());
}

TEST(SessionProtocolTest, EmptyPrincipalMeansAnonymousAndEmptySetIsEmptyData) {
  RawDirectives raw;
  raw.principal = "";
  raw.set = "";
  SessionDirectives d = ParseDirectives(raw);
  EXPECT_EQ(d.principal.value_or("x"), "");
  EXPECT_EQ(d.data.value_or("x"), "");
  EXPECT_EQ(d.invalid, 0);
}

TEST(SessionProtocolTest, Base64RoundTripsArbitraryBytesBothAlphabets) {
  std::mt19937 rng(42);
  for (int len = 0; len < 70; ++len) {
    std::string bytes;
    for (int i = 0; i < len; ++i) bytes.push_back(static_cast<char>(rng()));
    const std::string std64 = EncodeSessionData(bytes);
    EXPECT_EQ(std64.size() % 4, 0u);
    EXPECT_EQ(DecodeBase64Flexible(std64).value_or("?"), bytes);
    std::string url = std64;
    for (char& c : url) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
    while (!url.empty() && url.back() == '=') url.pop_back();
    EXPECT_EQ(DecodeBase64Flexible(url).value_or("?"), bytes);
  }
  EXPECT_EQ(EncodeSessionData("hi"), "aGk=");
  EXPECT_FALSE(DecodeBase64Flexible("abcde").has_value());  // bad length
  EXPECT_FALSE(DecodeBase64Flexible("ab$d").has_value());
}

TEST(SessionProtocolTest, AppendSessionDataIsStandardBase64Appended) {
  std::mt19937 rng(7);
  std::string out = "X-Session-Data: ";
  std::string expected = out;
  for (int len = 0; len < 300; ++len) {
    std::string bytes;
    for (int i = 0; i < len; ++i) bytes.push_back(static_cast<char>(rng()));
    AppendSessionData(bytes, out);
    expected += absl::Base64Escape(bytes);  // Abseil's encoder as reference
    ASSERT_EQ(out, expected) << "length " << len;
    ASSERT_EQ(EncodeSessionData(bytes), absl::Base64Escape(bytes));
  }
}

TEST(SessionProtocolTest, TtlAcceptsSecondsOrDurations) {
  EXPECT_EQ(ParseTtl("60").value_or(absl::ZeroDuration()), absl::Minutes(1));
  EXPECT_EQ(ParseTtl(" 30m ").value_or(absl::ZeroDuration()),
            absl::Minutes(30));
  EXPECT_FALSE(ParseTtl("0").has_value());
  EXPECT_FALSE(ParseTtl("-1h").has_value());
  EXPECT_FALSE(ParseTtl("soon").has_value());
  EXPECT_FALSE(ParseTtl("").has_value());
}

TEST(SessionProtocolTest, TruthyValues) {
  for (const char* v : {"1", "true", "TRUE", " yes "}) {
    EXPECT_TRUE(ParseTruthy(v)) << v;
  }
  for (const char* v : {"0", "false", "", "no", "2"}) {
    EXPECT_FALSE(ParseTruthy(v)) << v;
  }
}

TEST(SessionProtocolTest, StatusNames) {
  EXPECT_EQ(SessionStatusName(SessionStatus::kNone), "none");
  EXPECT_EQ(SessionStatusName(SessionStatus::kLoaded), "loaded");
  EXPECT_EQ(SessionStatusName(SessionStatus::kExpired), "expired");
  EXPECT_EQ(SessionStatusName(SessionStatus::kUnavailable), "unavailable");
}

}  // namespace
}  // namespace sg::edge
