#include "edge/edge_options.h"

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

EdgeOptions Valid() {
  EdgeOptions o;
  o.upstream = "http://127.0.0.1:3000";
  o.session_service = "127.0.0.1:7400";
  o.cookie_secrets = {"s"};
  return o;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(EdgeOptionsTest, HostPortForms) {
  auto a = ParseHostPort("0.0.0.0:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_FALSE(ParseHostPort("localhost").ok());
  EXPECT_FALSE(ParseHostPort("::1:80").ok());
  EXPECT_FALSE(ParseHostPort("h:70000").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
}

TEST(EdgeOptionsTest, UpstreamUrlIsPlainHttpHostPort) {
  auto u = ParseUpstreamUrl("http://app:3000/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "app");
  EXPECT_EQ(u->port, 3000);
  EXPECT_FALSE(ParseUpstreamUrl("https://app:3000").ok());
  EXPECT_FALSE(ParseUpstreamUrl("http://app:3000/prefix").ok());
  EXPECT_FALSE(ParseUpstreamUrl("app:3000").ok());
}

TEST(EdgeOptionsTest, SameSiteAndLists) {
  EXPECT_EQ(*ParseSameSite("Strict"), SameSite::kStrict);
  EXPECT_EQ(*ParseSameSite("unset"), SameSite::kUnset);
  EXPECT_FALSE(ParseSameSite("sometimes").ok());
  EXPECT_EQ(SplitList(" 10.0.0.0/8, ,::1/128 "),
            (std::vector<std::string>{"10.0.0.0/8", "::1/128"}));
}

TEST(EdgeOptionsTest, ValidateNamesTheField) {
  EXPECT_TRUE(Valid().Validate().ok());
  EdgeOptions o = Valid();
  o.upstream = "";
  EXPECT_EQ(Message(o.Validate()).rfind("upstream ", 0), 0u);
  o = Valid();
  o.listen = "nope";
  EXPECT_EQ(Message(o.Validate()).rfind("listen ", 0), 0u);
  o = Valid();
  o.cookie.same_site = SameSite::kNone;
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_samesite ", 0), 0u);
  o.cookie.secure = true;
  EXPECT_TRUE(o.Validate().ok());
  o = Valid();
  o.upstream_timeout = absl::ZeroDuration();
  EXPECT_EQ(Message(o.Validate()).rfind("upstream_timeout ", 0), 0u);
  o = Valid();
  o.breaker.failure_threshold = 0;
  EXPECT_EQ(Message(o.Validate()).rfind("breaker_failures ", 0), 0u);
  o = Valid();
  o.session_health_path = "api/x";
  EXPECT_EQ(Message(o.Validate()).rfind("session_health_path ", 0), 0u);
}

TEST(EdgeOptionsTest, ProductionMakesTheCookieSecureUnlessInsecure) {
  EdgeOptions o = Valid();
  ASSERT_TRUE(ResolveCookieOptions(&o).ok());
  EXPECT_FALSE(o.cookie.secure);
  o.production = true;
  ASSERT_TRUE(ResolveCookieOptions(&o).ok());
  EXPECT_TRUE(o.cookie.secure);
  o = Valid();
  o.production = true;
  o.cookie_insecure = true;
  ASSERT_TRUE(ResolveCookieOptions(&o).ok());
  EXPECT_FALSE(o.cookie.secure);
  o.cookie.secure = true;  // --cookie-secure --cookie-insecure
  EXPECT_EQ(Message(ResolveCookieOptions(&o)).rfind("cookie_insecure ", 0), 0u);
}

TEST(EdgeOptionsTest, HostPrefixNeedsSecureRootPathAndNoDomain) {
  EdgeOptions o = Valid();
  o.cookie_host_prefix = true;
  ASSERT_TRUE(ResolveCookieOptions(&o).ok());
  EXPECT_EQ(o.cookie_name, "__Host-connect.sid");
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_host_prefix ", 0), 0u);
  o.production = true;
  ASSERT_TRUE(ResolveCookieOptions(&o).ok());
  EXPECT_EQ(o.cookie_name, "__Host-connect.sid");  // not prefixed twice
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  o.cookie.domain = "example.com";
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_host_prefix ", 0), 0u);
  o.cookie.domain = "";
  o.cookie.path = "/app";
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_host_prefix ", 0), 0u);
  // A prefixed --cookie-name is held to the same rules.
  o = Valid();
  o.cookie_name = "__Host-sid";
  EXPECT_FALSE(o.Validate().ok());
  o.cookie_name = "__Secure-sid";
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_name ", 0), 0u);
  o.cookie.secure = true;
  EXPECT_TRUE(o.Validate().ok());
}

TEST(EdgeOptionsTest, CookieIsAlwaysHttpOnly) {
  EdgeOptions o = Valid();
  o.cookie.http_only = false;
  EXPECT_EQ(Message(o.Validate()).rfind("cookie_options ", 0), 0u);
}

TEST(EdgeOptionsTest, AnonSessionLimitIsOnByDefaultAndChecked) {
  EdgeOptions o = Valid();
  EXPECT_TRUE(o.anon_limit.enabled());
  EXPECT_EQ(o.anon_limit.over_limit, OverLimitAction::kProxy);
  o.anon_limit.burst = 0;
  EXPECT_EQ(Message(o.Validate()).rfind("anon_session_burst ", 0), 0u);
  o = Valid();
  o.anon_limit.rate = 0;  // off
  EXPECT_TRUE(o.Validate().ok());
}

}  // namespace
}  // namespace sg::edge
