#include "edge/auth_request.h"

#include "edge/edge_options.h"
#include "gtest/gtest.h"

namespace sg::edge {
namespace {

TEST(AuthRequestTest, MatchesTheCheckAndTheCommitOnly) {
  constexpr std::string_view kBase = "/_sessiongrid/auth";
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth", kBase),
            AuthEndpoint::kCheck);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth?x=1", kBase),
            AuthEndpoint::kCheck);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth/", kBase),
            AuthEndpoint::kCheck);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth/commit", kBase),
            AuthEndpoint::kCommit);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth/commit?a", kBase),
            AuthEndpoint::kCommit);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/authx", kBase),
            AuthEndpoint::kNone);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth/commitx", kBase),
            AuthEndpoint::kNone);
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth/other", kBase),
            AuthEndpoint::kNone);
  EXPECT_EQ(MatchAuthEndpoint("/", kBase), AuthEndpoint::kNone);
  // Off: nothing matches, not even an empty path.
  EXPECT_EQ(MatchAuthEndpoint("/_sessiongrid/auth", ""), AuthEndpoint::kNone);
}

TEST(AuthRequestTest, OriginalUriIsTakenAsItIs) {
  auto r = ParseOriginalRequest("/assets/app.js?v=3", "", "GET");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target, "/assets/app.js?v=3");
  EXPECT_EQ(r->method, "GET");
}

TEST(AuthRequestTest, OriginalUriWinsOverTheUrlAndMethodDefaultsToGet) {
  auto r = ParseOriginalRequest("/a", "https://h.example/b", "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target, "/a");
  EXPECT_EQ(r->method, "GET");
}

TEST(AuthRequestTest, OriginalUrlOfIngressNginxGivesPathAndQuery) {
  auto r = ParseOriginalRequest("", "https://shop.example:8443/api/x?q=1",
                                " POST ");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target, "/api/x?q=1");
  EXPECT_EQ(r->method, "POST");
  auto root = ParseOriginalRequest("", "http://shop.example", "");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->target, "/");
  auto query_only = ParseOriginalRequest("", "http://shop.example?x=1", "");
  ASSERT_TRUE(query_only.ok()) << query_only.status();
  EXPECT_EQ(query_only->target, "/");
}

TEST(AuthRequestTest, BadOriginalsAreRefusedWithAReason) {
  auto missing = ParseOriginalRequest("", "", "GET");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("X-Original-URI"),
            std::string::npos);
  EXPECT_FALSE(ParseOriginalRequest("assets/x.js", "", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("/a b", "", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("/a\x01", "", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("/a#frag", "", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("", "shop.example/a", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("", "://shop.example/a", "").ok());
  EXPECT_FALSE(ParseOriginalRequest("/a", "", "GE T").ok());
  EXPECT_FALSE(ParseOriginalRequest("/a", "", "GET\r").ok());
}

TEST(AuthRequestTest, VersionTokenRoundTrips) {
  sessiongrid::v1::Version v;
  v.set_wall_millis(1764700000123);
  v.set_logical(7);
  v.set_node_id("node-1.sessiongrid.svc");  // dots in the node id
  const std::string token = EncodeVersionToken(v);
  EXPECT_EQ(token, "1764700000123.7.node-1.sessiongrid.svc");
  auto back = DecodeVersionToken(token);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->wall_millis(), v.wall_millis());
  EXPECT_EQ(back->logical(), v.logical());
  EXPECT_EQ(back->node_id(), v.node_id());
}

TEST(AuthRequestTest, MalformedVersionTokensAreIgnored) {
  for (std::string_view bad :
       {"", "1", "1.2", "x.2.n", "1.y.n", "-1.2.n", "1.-2.n", "1..n",
        "1.2.n\x01", "1.99999999999.n"}) {
    EXPECT_FALSE(DecodeVersionToken(bad).has_value()) << bad;
  }
  EXPECT_TRUE(DecodeVersionToken("1.2.").has_value());  // empty node id
}

SessionState State(CookieVerdict cookie, SessionStatus status,
                   int key_index = 0) {
  SessionState s;
  s.cookie = cookie;
  s.status = status;
  s.key_index = cookie == CookieVerdict::kOk ? key_index : -1;
  return s;
}

TEST(AuthRequestTest, CookieActionClearsForgedAndStaleCookiesOnly) {
  EXPECT_EQ(CheckCookieAction(
                State(CookieVerdict::kMissing, SessionStatus::kNone)),
            CookieAction::kNone);
  EXPECT_EQ(CheckCookieAction(
                State(CookieVerdict::kBadSignature, SessionStatus::kNone)),
            CookieAction::kClear);
  EXPECT_EQ(CheckCookieAction(
                State(CookieVerdict::kMalformed, SessionStatus::kNone)),
            CookieAction::kClear);
  EXPECT_EQ(
      CheckCookieAction(State(CookieVerdict::kOk, SessionStatus::kExpired)),
      CookieAction::kClear);
  EXPECT_EQ(
      CheckCookieAction(State(CookieVerdict::kOk, SessionStatus::kLoaded)),
      CookieAction::kNone);
  EXPECT_EQ(
      CheckCookieAction(State(CookieVerdict::kOk, SessionStatus::kLoaded, 1)),
      CookieAction::kReissue);
  // The service could not say: the session may exist, keep the cookie.
  EXPECT_EQ(CheckCookieAction(
                State(CookieVerdict::kOk, SessionStatus::kUnavailable)),
            CookieAction::kNone);
}

std::optional<std::string> Find(const HeaderList& headers,
                                std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

TEST(AuthRequestTest, LoadedReplyCarriesTheSessionAndItsVersion) {
  SessionState s = State(CookieVerdict::kOk, SessionStatus::kLoaded);
  s.id = "abc";
  s.data = R"({"n":1})";
  s.principal = "alice";
  s.version.set_wall_millis(5);
  s.version.set_logical(1);
  s.version.set_node_id("n");
  const HeaderList h = CheckReplyHeaders(s, std::nullopt);
  EXPECT_EQ(Find(h, "X-Session-Status").value_or(""), "loaded");
  EXPECT_EQ(Find(h, "X-Session-Id").value_or(""), "abc");
  EXPECT_EQ(Find(h, "X-Session-Data").value_or(""), "eyJuIjoxfQ==");
  EXPECT_EQ(Find(h, "X-Session-Principal").value_or(""), "alice");
  EXPECT_EQ(Find(h, "X-Session-Version").value_or(""), "5.1.n");
  EXPECT_FALSE(Find(h, "X-Session-Set-Cookie").has_value());
}

TEST(AuthRequestTest, OtherRepliesCarryOnlyTheStatusAndTheCookie) {
  SessionState s = State(CookieVerdict::kOk, SessionStatus::kExpired);
  s.id = "gone";
  const HeaderList h = CheckReplyHeaders(s, std::string("connect.sid=; x"));
  EXPECT_EQ(Find(h, "X-Session-Status").value_or(""), "expired");
  EXPECT_FALSE(Find(h, "X-Session-Id").has_value());
  EXPECT_FALSE(Find(h, "X-Session-Data").has_value());
  EXPECT_FALSE(Find(h, "X-Session-Version").has_value());
  EXPECT_EQ(Find(h, "X-Session-Set-Cookie").value_or(""), "connect.sid=; x");
  SessionState anonymous = State(CookieVerdict::kOk, SessionStatus::kLoaded);
  EXPECT_FALSE(Find(CheckReplyHeaders(anonymous, std::nullopt),
                    "X-Session-Principal")
                   .has_value());
}

EdgeOptions Valid() {
  EdgeOptions o;
  o.upstream = "http://127.0.0.1:3000";
  o.session_service = "127.0.0.1:7400";
  o.cookie_secrets = {"s"};
  return o;
}

TEST(AuthRequestTest, OptionsCheckThePathAndMakeTheUpstreamOptional) {
  EdgeOptions o = Valid();
  o.upstream.clear();
  EXPECT_FALSE(o.Validate().ok());  // no upstream and no auth_request
  o.auth_request_path = "/_sessiongrid/auth";
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  for (const char* bad : {"_sessiongrid/auth", "/", "/a/", "/a?b", "/a b",
                          "/a%2f", "/a#b"}) {
    o.auth_request_path = bad;
    const absl::Status s = o.Validate();
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(std::string(s.message()).find("auth_request_path"),
              std::string::npos)
        << s;
  }
}

}  // namespace
}  // namespace sg::edge
