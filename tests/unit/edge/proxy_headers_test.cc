#include "edge/proxy_headers.h"

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

TEST(ProxyHeadersTest, HopByHopFieldsOfRfc9110AreRecognisedInAnyCase) {
  for (const char* name :
       {"Connection", "connection", "Proxy-Connection", "Keep-Alive", "TE",
        "Transfer-Encoding", "UPGRADE", "Trailer"}) {
    EXPECT_TRUE(IsHopByHopHeader(name)) << name;
  }
  for (const char* name : {"Content-Length", "Host", "Cookie", "Te-X",
                           "Connections", "Upgrade-Insecure-Requests"}) {
    EXPECT_FALSE(IsHopByHopHeader(name)) << name;
  }
}

TEST(ProxyHeadersTest, ConnectionTokensNameExtraHopByHopFields) {
  ConnectionTokens tokens;
  tokens.Add("keep-alive, X-Hop ,  ,X-Other");
  tokens.Add("Close");
  EXPECT_EQ(tokens.size(), 4u);
  EXPECT_TRUE(tokens.Contains("x-hop"));
  EXPECT_TRUE(tokens.Contains("X-OTHER"));
  EXPECT_TRUE(tokens.Contains("close"));
  EXPECT_FALSE(tokens.Contains("X-Ho"));
  EXPECT_FALSE(tokens.overflowed());
}

TEST(ProxyHeadersTest, ConnectionTokensCapAndReportOverflow) {
  ConnectionTokens tokens;
  std::string many;
  for (int i = 0; i < 20; ++i) many += "t" + std::to_string(i) + ",";
  tokens.Add(many);
  EXPECT_EQ(tokens.size(), ConnectionTokens::kMax);
  EXPECT_TRUE(tokens.overflowed());
}

TEST(ProxyHeadersTest, ForwardActionDropsHopByHopSessionAndNamedFields) {
  ConnectionTokens tokens;
  tokens.Add("X-Hop, Host, Content-Length");
  auto req = [&](std::string_view name, bool upgrade = false) {
    return ForwardAction(name, tokens, /*is_request=*/true, upgrade);
  };
  EXPECT_EQ(req("X-Session-Id"), FieldAction::kDrop);
  EXPECT_EQ(req("x-session-anything"), FieldAction::kDrop);
  EXPECT_EQ(req("Keep-Alive"), FieldAction::kDrop);
  EXPECT_EQ(req("X-Hop"), FieldAction::kDrop);
  EXPECT_EQ(req("Expect"), FieldAction::kDrop);  // the edge answers 100
  EXPECT_EQ(req("Upgrade"), FieldAction::kDrop);
  EXPECT_EQ(req("Upgrade", /*upgrade=*/true), FieldAction::kKeep);
  EXPECT_EQ(req("Connection", /*upgrade=*/true), FieldAction::kDrop);
  // A Connection option cannot strip what the request needs upstream.
  EXPECT_EQ(req("Host"), FieldAction::kKeep);
  EXPECT_EQ(req("Content-Length"), FieldAction::kKeep);
  EXPECT_EQ(req("Cookie"), FieldAction::kKeep);
  EXPECT_EQ(req("X-Sessions"), FieldAction::kKeep);
  // Expect is a request field only.
  EXPECT_EQ(ForwardAction("Expect", tokens, /*is_request=*/false, false),
            FieldAction::kKeep);
}

TEST(ProxyHeadersTest, ForwardedForAppendsThisHop) {
  EXPECT_EQ(AppendForwardedFor("", "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(AppendForwardedFor(" 203.0.113.7 ", "10.0.0.1"),
            "203.0.113.7, 10.0.0.1");
  EXPECT_EQ(AppendForwardedFor("a, b", "c"), "a, b, c");
}

TEST(ProxyHeadersTest, SetCookieNameIsTheFirstPairsName) {
  EXPECT_EQ(SetCookieName("connect.sid=s%3Aabc; Path=/; HttpOnly"),
            "connect.sid");
  EXPECT_EQ(SetCookieName(" theme = dark"), "theme");
  EXPECT_EQ(SetCookieName("novalue; Path=/"), "");
  EXPECT_EQ(SetCookieName(""), "");
}

TEST(ProxyHeadersTest, HeaderHasTokenIsCaseInsensitiveAndExact) {
  EXPECT_TRUE(HeaderHasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(HeaderHasToken("100-Continue", "100-continue"));
  EXPECT_FALSE(HeaderHasToken("upgrades", "upgrade"));
  EXPECT_FALSE(HeaderHasToken("", "upgrade"));
}

}  // namespace
}  // namespace sg::edge
