#include "edge/classifier/classifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <set>
#include <string>

#include "edge/http/cookie_header.h"

// Counts heap allocations so a test can prove Classify() makes none.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sg::classifier {
namespace {

constexpr char kChrome[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36";
constexpr char kHtml[] = "text/html,application/xhtml+xml,*/*;q=0.8";
constexpr char kPublicIp[] = "203.0.113.7";

struct Req {
  std::string method = "GET";
  std::string target = "/";
  std::string ua = kChrome;
  std::string accept = kHtml;
  std::string cookie;
  std::string peer = kPublicIp;
  std::string xff;
  std::string upgrade;
};

struct Case {
  const char* name;
  Req req;
  const char* reason;
  bool production = false;
};

class ClassifierTest : public ::testing::Test {
 protected:
  static std::unique_ptr<Classifier> Make(bool production,
                                          std::vector<std::string> trusted = {
                                              "10.9.0.0/16", "fd00:9::/32"}) {
    ClassifierOptions options;
    options.production = production;
    options.trusted_proxies = std::move(trusted);
    auto c = Classifier::Create(Rules::SeedDefaults(), options);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  static RequestView View(const Req& r) {
    RequestView v;
    v.method = r.method;
    v.target = r.target;
    v.user_agent = r.ua;
    v.accept = r.accept;
    v.cookie = r.cookie;
    v.peer = IpAddress::Parse(r.peer);
    v.x_forwarded_for = r.xff;
    v.upgrade = r.upgrade;
    return v;
  }

  static void Check(const std::vector<Case>& cases) {
    auto dev = Make(false);
    auto prod = Make(true);
    for (const Case& c : cases) {
      const Classifier& cl = c.production ? *prod : *dev;
      const Decision d = cl.Classify(View(c.req));
      EXPECT_EQ(cl.ReasonName(d.reason_id), c.reason) << c.name;
      EXPECT_EQ(cl.ReasonName(d.reason), c.reason) << c.name;
      EXPECT_EQ(d.bypass, std::string(c.reason) != "session_required")
          << c.name;
      EXPECT_EQ(cl.ReasonAt(d.reason_id), d.reason) << c.name;
    }
  }
};

Req With(std::function<void(Req&)> f) {
  Req r;
  f(r);
  return r;
}

// One case per rule and reason, in the seed's priority order.
TEST_F(ClassifierTest, EveryRule) {
  Check({
      {"1 websocket", With([](Req& r) {
         r.upgrade = "WebSocket";
         r.target = "/api/user";
       }),
       "websocket_upgrade"},
      {"1 other upgrade", With([](Req& r) {
         r.upgrade = "h2c";
         r.target = "/api/user";
       }),
       "session_required"},
      {"2 extension", With([](Req& r) { r.target = "/main.js"; }),
       "static_extension:.js"},
      {"2 extension beats auth path",
       With([](Req& r) { r.target = "/api/user/avatar.png"; }),
       "static_extension:.png"},
      {"2 woff2 not woff", With([](Req& r) { r.target = "/f/inter.woff2"; }),
       "static_extension:.woff2"},
      {"3 prefix", With([](Req& r) { r.target = "/assets/img"; }),
       "static_prefix:/assets/"},
      {"3 prefix without slash", With([](Req& r) { r.target = "/favicon-32"; }),
       "static_prefix:/favicon"},
      {"3 robots", With([](Req& r) { r.target = "/robots.txt"; }),
       "static_extension:.txt"},
      {"4 session free", With([](Req& r) { r.target = "/api/health"; }),
       "session_free_api:/api/health"},
      {"4 first in list order",
       With([](Req& r) { r.target = "/api/transactions/public/9"; }),
       "session_free_api:/api/transactions/public"},
      {"4 POST too", With([](Req& r) {
         r.method = "POST";
         r.target = "/api/metrics";
       }),
       "session_free_api:/api/metrics"},
      {"5 internal ip", With([](Req& r) {
         r.peer = "10.2.3.4";
         r.target = "/home";
       }),
       "internal_ip:10.0.0.0/8"},
      {"5 internal v6", With([](Req& r) {
         r.peer = "fd12::5";
         r.target = "/home";
       }),
       "internal_ip:fc00::/7"},
      {"5 mapped v4", With([](Req& r) {
         r.peer = "::ffff:192.168.1.9";
         r.target = "/home";
       }),
       "internal_ip:192.168.0.0/16"},
      {"5 not on auth path", With([](Req& r) {
         r.peer = "127.0.0.1";
         r.target = "/login";
       }),
       "session_required"},
      {"5 auth path falls to UA rule", With([](Req& r) {
         r.peer = "127.0.0.1";
         r.target = "/login";
         r.ua = "curl/8.0";
       }),
       "internal_ua:curl"},
      {"6 ua",
       With([](Req& r) { r.ua = "Mozilla/5.0 (compatible; Googlebot/2.1)"; }),
       "internal_ua:googlebot"},
      {"6 ua even on auth path", With([](Req& r) {
         r.ua = "PostmanRuntime/7.36";
         r.target = "/api/wallet";
         r.method = "POST";
       }),
       "internal_ua:postman"},
      {"6 first in list order",
       With([](Req& r) { r.ua = "googlebot via curl"; }), "internal_ua:curl"},
      {"7 empty ua", With([](Req& r) { r.ua = ""; }), "empty_or_short_ua"},
      {"7 short ua", With([](Req& r) { r.ua = "Mozilla/5"; }),
       "empty_or_short_ua"},
      {"7 ten bytes is not short", With([](Req& r) { r.ua = "Mozilla/50"; }),
       "session_required"},
      {"7 only GET", With([](Req& r) {
         r.ua = "";
         r.method = "POST";
       }),
       "session_required"},
      {"7 not on auth path", With([](Req& r) {
         r.ua = "";
         r.target = "/dashboard";
       }),
       "session_required"},
      {"8 options", With([](Req& r) {
         r.method = "OPTIONS";
         r.target = "/api/wallet";
       }),
       "method:OPTIONS"},
      {"8 head lower-case", With([](Req& r) {
         r.method = "head";
         r.target = "/api/wallet";
       }),
       "method:HEAD"},
      {"9 non browser accept",
       With([](Req& r) { r.accept = "image/webp,*/*"; }), "non_browser_accept"},
      {"9 json is browser", With([](Req& r) { r.accept = "application/json"; }),
       "session_required"},
      {"9 only GET", With([](Req& r) {
         r.accept = "*/*";
         r.method = "POST";
       }),
       "session_required"},
      {"9 not on auth path", With([](Req& r) {
         r.accept = "*/*";
         r.target = "/profile";
       }),
       "session_required"},
      {"9 empty accept", With([](Req& r) { r.accept = ""; }),
       "session_required"},
      {"10 production html", Req{}, "unauthenticated_html_request", true},
      {"10 only production", Req{}, "session_required", false},
      {"10 case-insensitive accept",
       With([](Req& r) { r.accept = "TEXT/HTML"; }),
       "unauthenticated_html_request", true},
      {"10 not with session cookie",
       With([](Req& r) { r.cookie = "connect.sid=s%3Aa.b; auth_token=t"; }),
       "session_required", true},
      {"10 not on auth path", With([](Req& r) { r.target = "/settings/x"; }),
       "session_required", true},
      {"11 anonymous session",
       With([](Req& r) { r.cookie = "connect.sid=s%3Aabc.def"; }),
       "anonymous_session_cookie"},
      {"11 anonymous session in prod",
       With([](Req& r) { r.cookie = "theme=1; connect.sid=x"; }),
       "anonymous_session_cookie", true},
      {"11 auth_token keeps session",
       With([](Req& r) { r.cookie = "connect.sid=x; auth_token=t"; }),
       "session_required"},
      {"11 user_id keeps session",
       With([](Req& r) { r.cookie = "user_id=1; connect.sid=x"; }),
       "session_required"},
      {"11 empty session cookie is absent", With([](Req& r) {
         r.cookie = "connect.sid=";
         r.accept = "application/json";
       }),
       "session_required"},
      {"11 only GET", With([](Req& r) {
         r.cookie = "connect.sid=x";
         r.method = "POST";
       }),
       "session_required"},
      {"11 not on auth path", With([](Req& r) {
         r.cookie = "connect.sid=x";
         r.target = "/api/session";
       }),
       "session_required"},
      {"default", With([](Req& r) {
         r.accept = "application/json";
         r.target = "/api/user/me";
       }),
       "session_required"},
  });
}

// The seed's own end-to-end expectations (section 6 tests).
TEST_F(ClassifierTest, SeedEndToEndExamples) {
  Check({
      {"Googlebot", With([](Req& r) { r.ua = "Googlebot/2.1"; }),
       "internal_ua:googlebot"},
      {"Bingbot", With([](Req& r) { r.ua = "Bingbot/2.1"; }),
       "internal_ua:bingbot"},
      {"Slackbot", With([](Req& r) { r.ua = "Slackbot/2.1"; }),
       "internal_ua:slackbot"},
      {"facebook", With([](Req& r) { r.ua = "facebookexternalhit/2.1"; }),
       "internal_ua:facebookexternalhit"},
      {"axios health", With([](Req& r) {
         r.ua = "axios/1.0.0";
         r.target = "/api/health";
       }),
       "session_free_api:/api/health"},
      {"curl health", With([](Req& r) {
         r.ua = "curl/7.68.0";
         r.target = "/api/health";
       }),
       "session_free_api:/api/health"},
      {"empty ua health", With([](Req& r) {
         r.ua = "";
         r.target = "/api/health";
       }),
       "session_free_api:/api/health"},
      {"main.js", With([](Req& r) { r.target = "/assets/main.js"; }),
       "static_extension:.js"},
      {"css", With([](Req& r) { r.target = "/assets/style.css"; }),
       "static_extension:.css"},
      {"image", With([](Req& r) { r.target = "/assets/logo.png"; }),
       "static_extension:.png"},
      {"axios elsewhere", With([](Req& r) {
         r.ua = "axios/1.0";
         r.target = "/api/wallet";
       }),
       "internal_ua:axios"},
  });
}

// Each fault of the seed, fixed.
TEST_F(ClassifierTest, ForwardedForIsIgnoredFromUntrustedPeer) {
  // Seed: any client claiming "X-Forwarded-For: 127.0.0.1" was internal.
  Check({{"spoofed xff", With([](Req& r) {
            r.xff = "127.0.0.1";
            r.target = "/home";
          }),
          "session_required"}});
}

TEST_F(ClassifierTest, ForwardedForFromTrustedProxyUsesRightmostUntrustedHop) {
  Check({
      {"lb adds client", With([](Req& r) {
         r.peer = "10.9.0.2";
         r.xff = "203.0.113.5";
         r.target = "/home";
       }),
       "session_required"},
      {"internal client via lb", With([](Req& r) {
         r.peer = "10.9.0.2";
         r.xff = "192.168.4.4";
         r.target = "/home";
       }),
       "internal_ip:192.168.0.0/16"},
      {"spoof left of real client", With([](Req& r) {
         r.peer = "10.9.0.2";
         r.xff = "127.0.0.1, 203.0.113.5, 10.9.0.7";
         r.target = "/home";
       }),
       "session_required"},
      {"garbage hop is not internal", With([](Req& r) {
         r.peer = "10.9.0.2";
         r.xff = "10.1.1.1, unknown";
         r.target = "/home";
       }),
       "session_required"},
      {"v6 trusted proxy", With([](Req& r) {
         r.peer = "fd00:9::1";
         r.xff = "[fe80::1]:5000";
         r.target = "/home";
       }),
       "internal_ip:fe80::/10"},
  });
  auto c = Make(false);
  Req r;
  r.peer = "10.9.0.2";
  r.xff = "10.9.0.5 , 10.9.0.6";  // all hops trusted: the left-most
  EXPECT_EQ(c->ClientIp(View(r)), IpAddress::Parse("10.9.0.5"));
  r.xff = "";
  EXPECT_EQ(c->ClientIp(View(r)), IpAddress::Parse("10.9.0.2"));
  r.peer = "not an ip";
  EXPECT_EQ(c->ClientIp(View(r)), std::nullopt);
  // Without trusted proxies the peer is the client.
  auto untrusting = Make(false, {});
  Req s;
  s.peer = "10.9.0.2";
  s.xff = "203.0.113.5";
  EXPECT_EQ(untrusting->ClientIp(View(s)), IpAddress::Parse("10.9.0.2"));
}

TEST_F(ClassifierTest, Ipv6RangesAreRealCidrs) {
  Check({
      // Seed: /^fc00:/ missed fc01::; /^fe80:/ missed fe90:: (also link-local).
      {"fc01", With([](Req& r) {
         r.peer = "fc01::1";
         r.target = "/home";
       }),
       "internal_ip:fc00::/7"},
      {"fe90", With([](Req& r) {
         r.peer = "fe90::1";
         r.target = "/home";
       }),
       "internal_ip:fe80::/10"},
      {"fec0 is not link-local", With([](Req& r) {
         r.peer = "fec0::1";
         r.target = "/home";
       }),
       "session_required"},
      {"::1", With([](Req& r) {
         r.peer = "::1";
         r.target = "/home";
       }),
       "internal_ip:::1/128"},
      {"172.32 is public", With([](Req& r) {
         r.peer = "172.32.0.1";
         r.target = "/home";
       }),
       "session_required"},
  });
}

TEST_F(ClassifierTest, LicenseExtensionMatchesCaseInsensitively) {
  // Seed: ".LICENSE" in the set, compared with a lower-cased path: dead.
  Check({
      {"lower", With([](Req& r) { r.target = "/vendor.js.license"; }),
       "static_extension:.license"},
      {"upper", With([](Req& r) { r.target = "/chunk.LICENSE"; }),
       "static_extension:.license"},
      {"mixed ext", With([](Req& r) { r.target = "/A.Js"; }),
       "static_extension:.js"},
  });
}

TEST_F(ClassifierTest, PathIsDecodedAndResolvedBeforeMatching) {
  Check({
      {"dotdot out of assets", With([](Req& r) {
         r.ua = "";
         r.target = "/assets/../api/auth/x";
       }),
       "session_required"},
      {"encoded dotdot", With([](Req& r) {
         r.ua = "";
         r.target = "/assets/%2E%2E/api/auth/x";
       }),
       "session_required"},
      {"encoded prefix", With([](Req& r) { r.target = "/%61ssets/x"; }),
       "static_prefix:/assets/"},
      {"encoded extension", With([](Req& r) { r.target = "/%61ssets/x%2Ejs"; }),
       "static_extension:.js"},
      {"upper-case prefix", With([](Req& r) { r.target = "/API/HEALTH"; }),
       "session_free_api:/api/health"},
      {"query stripped", With([](Req& r) {
         r.target = "/page?file=x.js";
         r.accept = "application/json";
       }),
       "session_required"},
      {"query stripped before prefix",
       With([](Req& r) { r.target = "/api/health?full=1"; }),
       "session_free_api:/api/health"},
      {"absolute form",
       With([](Req& r) { r.target = "http://app.example/assets/a"; }),
       "static_prefix:/assets/"},
  });
}

TEST_F(ClassifierTest, ExtensionComesFromLastSegmentOnly) {
  // Seed: the last dot of the whole path, so "/v1.2/users" had extension
  // ".2/users" and "/lib.js/admin" had ".js/admin".
  Check({
      {"dotted dir", With([](Req& r) {
         r.target = "/v1.2/users";
         r.accept = "application/json";
       }),
       "session_required"},
      {"js dir", With([](Req& r) {
         r.target = "/lib.js/admin";
         r.accept = "application/json";
       }),
       "session_required"},
  });
}

TEST_F(ClassifierTest, ReasonNeverEmbedsClientAddress) {
  auto c = Make(false);
  std::set<std::string> names;
  for (uint16_t id = 0; id < c->num_reasons(); ++id) {
    names.insert(std::string(c->ReasonName(id)));
  }
  for (const char* peer : {"10.1.2.3", "10.200.0.1", "127.0.0.5"}) {
    Req r;
    r.peer = peer;
    r.target = "/home";
    const Decision d = c->Classify(View(r));
    EXPECT_EQ(d.reason.kind, ReasonKind::kInternalIp);
    EXPECT_THAT(std::string(c->ReasonName(d.reason_id)),
                ::testing::Not(::testing::HasSubstr(peer)));
    EXPECT_TRUE(names.count(std::string(c->ReasonName(d.reason_id))));
  }
}

TEST_F(ClassifierTest, OverlongPathKeepsSessionUnlessUaOrMethodSaysOtherwise) {
  const std::string long_target =
      "/assets/" + std::string(kMaxPathBytes, 'a') + ".js";
  Check({
      {"long static-looking path", With([&](Req& r) {
         r.ua = "";
         r.target = long_target;
       }),
       "session_required"},
      {"long path from internal ip", With([&](Req& r) {
         r.peer = "10.0.0.1";
         r.target = long_target;
       }),
       "session_required"},
      {"long path html in prod", With([&](Req& r) { r.target = long_target; }),
       "session_required", true},
      {"long path bot", With([&](Req& r) {
         r.ua = "curl/8";
         r.target = long_target;
       }),
       "internal_ua:curl"},
      {"long path HEAD", With([&](Req& r) {
         r.method = "HEAD";
         r.target = long_target;
       }),
       "method:HEAD"},
  });
}

TEST_F(ClassifierTest, ReasonsAreEnumerableAndDense) {
  auto c = Make(false);
  const Rules seed = Rules::SeedDefaults();
  EXPECT_EQ(c->num_reasons(), 8u + seed.static_extensions.size() +
                                  seed.static_prefixes.size() +
                                  seed.session_free_api_paths.size() +
                                  seed.internal_ip_ranges.size() +
                                  seed.internal_user_agents.size());
  std::set<std::string> names;
  for (uint16_t id = 0; id < c->num_reasons(); ++id) {
    EXPECT_EQ(c->ReasonId(c->ReasonAt(id)), id);
    EXPECT_TRUE(names.insert(std::string(c->ReasonName(id))).second)
        << c->ReasonName(id);
  }
  EXPECT_EQ(c->ReasonName(uint16_t{0}), "session_required");
  for (const char* n :
       {"websocket_upgrade", "static_extension:.js", "static_prefix:/assets/",
        "session_free_api:/api/health", "internal_ip:127.0.0.0/8",
        "internal_ua:axios", "empty_or_short_ua", "method:OPTIONS",
        "method:HEAD", "non_browser_accept", "unauthenticated_html_request",
        "anonymous_session_cookie", "static_extension:.license"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_EQ(c->ReasonName(static_cast<uint16_t>(c->num_reasons())), "");
}

TEST_F(ClassifierTest, PriorityMatchesSeed) {
  auto c = Make(true);
  struct P {
    Req req;
    int priority;
  };
  const P cases[] = {
      {With([](Req& r) {
         r.upgrade = "websocket";
         r.target = "/a.js";
       }),
       1},
      {With([](Req& r) { r.target = "/assets/a.js"; }), 2},
      {With([](Req& r) {
         r.target = "/assets/a";
         r.peer = "10.0.0.1";
       }),
       3},
      {With([](Req& r) {
         r.target = "/api/ping";
         r.peer = "10.0.0.1";
       }),
       4},
      {With([](Req& r) {
         r.peer = "10.0.0.1";
         r.ua = "curl";
       }),
       5},
      {With([](Req& r) { r.ua = "wget"; }), 6},
      {With([](Req& r) {
         r.ua = "x";
         r.accept = "*/*";
       }),
       7},
      {With([](Req& r) {
         r.method = "OPTIONS";
         r.accept = "*/*";
       }),
       8},
      {With([](Req& r) { r.accept = "*/*"; }), 9},
      {Req{}, 10},
      {With([](Req& r) { r.cookie = "connect.sid=x"; }), 11},
      {With([](Req& r) { r.cookie = "connect.sid=x; user_id=3"; }), 0},
  };
  for (const P& p : cases) {
    EXPECT_EQ(c->Classify(View(p.req)).priority, p.priority)
        << p.req.target << " " << p.req.ua;
  }
}

TEST_F(ClassifierTest, ClassifyDoesNotAllocate) {
  auto c = Make(true);
  std::vector<Req> reqs = {
      Req{},
      With([](Req& r) { r.target = "/%61ssets/../api/auth/x.js?q=1"; }),
      With([](Req& r) { r.ua = "Mozilla/5.0 (compatible; Googlebot/2.1)"; }),
      With([](Req& r) {
        r.peer = "10.9.0.1";
        r.xff = "1.2.3.4, 10.9.0.3";
      }),
      With([](Req& r) { r.cookie = "a=1; connect.sid=s%3Ax.y; user_id=2"; }),
      With([](Req& r) { r.target = "/" + std::string(5000, 'a'); }),
  };
  std::vector<RequestView> views;
  for (const Req& r : reqs) views.push_back(View(r));
  const long before = g_allocations.load();
  int bypassed = 0;
  for (const RequestView& v : views) bypassed += c->Classify(v).bypass;
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(bypassed, 0);
}

TEST_F(ClassifierTest, CustomRulesAndCookieNames) {
  Rules rules;
  rules.static_prefixes = {"/Media/"};
  rules.internal_user_agents = {"MyMonitor"};
  rules.session_cookie_name = "sid";
  rules.auth_cookie_names = {"jwt"};
  auto c = Classifier::Create(rules, ClassifierOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  Req r;
  r.target = "/media/x";
  EXPECT_EQ((*c)->ReasonName((*c)->Classify(View(r)).reason_id),
            "static_prefix:/media/");
  r = Req();
  r.ua = "mymonitor/1.0 (health)";
  EXPECT_EQ((*c)->ReasonName((*c)->Classify(View(r)).reason_id),
            "internal_ua:mymonitor");
  r = Req();
  r.cookie = "sid=1";
  EXPECT_EQ((*c)->ReasonName((*c)->Classify(View(r)).reason_id),
            "anonymous_session_cookie");
  r.cookie = "sid=1; jwt=2";
  EXPECT_FALSE((*c)->Classify(View(r)).bypass);
}

// Rules 10 and 11 read the session and auth cookies in one pass over the
// header; it must see them as edge::FindCookie does (first pair wins,
// trimming, quotes, pairs without '=').
TEST_F(ClassifierTest, CookieRulesAgreeWithFindCookie) {
  const std::vector<std::string> names = {
      "connect.sid", "auth_token",  "user_id", " connect.sid",
      "user_id\t",   "Connect.sid", "theme",   "connect.si"};
  const std::vector<std::string> values = {"",  "x",  "\"\"", "\"v\"",
                                           " ", "\"", "a=b",  " 1 "};
  auto has = [](std::string_view header, std::string_view name) {
    const auto v = edge::FindCookie(header, name);
    return v.has_value() && !v->empty();
  };
  // Up to 64 names are looked up in one pass; more, one pass per name.
  for (int extra : {0, 70}) {
    Rules rules = Rules::SeedDefaults();
    for (int i = 0; i < extra; ++i) {
      rules.auth_cookie_names.push_back("c" + std::to_string(i));
    }
    ClassifierOptions options;
    auto dev = Classifier::Create(rules, options);
    options.production = true;
    auto prod = Classifier::Create(rules, options);
    ASSERT_TRUE(dev.ok() && prod.ok());
    std::mt19937 rng(11);
    for (int iter = 0; iter < 20000; ++iter) {
      Req r;
      for (int k = rng() % 5; k > 0; --k) {
        if (!r.cookie.empty()) r.cookie += rng() % 2 ? "; " : ";";
        r.cookie += names[rng() % names.size()];
        if (rng() % 8) r.cookie += "=" + values[rng() % values.size()];
      }
      const bool session = has(r.cookie, "connect.sid");
      const bool auth = has(r.cookie, "auth_token") || has(r.cookie, "user_id");
      const std::string want_dev =
          session && !auth ? "anonymous_session_cookie" : "session_required";
      const std::string want_prod =
          !session ? "unauthenticated_html_request" : want_dev;
      EXPECT_EQ((*dev)->ReasonName((*dev)->Classify(View(r)).reason_id),
                want_dev)
          << r.cookie;
      EXPECT_EQ((*prod)->ReasonName((*prod)->Classify(View(r)).reason_id),
                want_prod)
          << r.cookie;
    }
  }
}

TEST_F(ClassifierTest, CreateRejectsBadConfig) {
  Rules rules;
  rules.internal_ip_ranges = {"10.0.0.0/99"};
  EXPECT_FALSE(Classifier::Create(rules, ClassifierOptions()).ok());
  ClassifierOptions options;
  options.trusted_proxies = {"nope"};
  EXPECT_FALSE(Classifier::Create(Rules(), options).ok());
  Rules dup;
  dup.static_extensions = {".js", ".JS"};
  EXPECT_FALSE(Classifier::Create(dup, ClassifierOptions()).ok());
}

}  // namespace
}  // namespace sg::classifier
