// Session floods and cookie attributes at the real edge: the real
// sessiongrid-server and sessiongrid-edge on loopback, and the harness's
// upstream asked for a session on every request (?set=, X-Session-Set).
// Client addresses come in X-Forwarded-For from a trusted proxy
// (127.0.0.0/8, the harness's --trusted-proxies).
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/edge_harness.h"

namespace sg {
namespace {

using namespace edge_harness;  // NOLINT(build/namespaces)

// A browser at `ip` whose page stores data (so the edge creates a session
// when the request has none).
std::string FirstVisit(const std::string& ip, const std::string& extra = "") {
  return Get("/api/user/page?set=" + absl::Base64Escape("{\"v\":1}"),
             "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
             "Accept: text/html\r\n"
             "X-Forwarded-For: " +
                 ip + "\r\n" + extra);
}

bool Proxied(const HttpMessage& r) {
  return r.body.rfind("GET /api/user/page", 0) == 0;  // the upstream's echo
}

class EdgeFloodTest : public EdgeTest {
 protected:
  double Limited(const std::string& action) {
    return MetricSum(
        Metrics(),
        "sg_edge_anon_sessions_limited_total{action=\"" + action + "\"}");
  }
};

TEST_F(EdgeFloodTest, OverTheLimitIsProxiedWithoutASession) {
  StartAll({"--anon-session-rate=0.1", "--anon-session-burst=3"});
  ASSERT_FALSE(HasFatalFailure());
  const int64_t creates = Stats().creates();
  std::string cookie;
  for (int i = 0; i < 3; ++i) {
    HttpMessage r = Do(FirstVisit("203.0.113.7"));
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.SessionSetCookie().has_value()) << i << r.body;
    cookie = CookieValue(*r.SessionSetCookie());
  }
  for (int i = 0; i < 3; ++i) {
    HttpMessage r = Do(FirstVisit("203.0.113.7"));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(Proxied(r)) << r.body;
    EXPECT_NE(r.body.find("X-Session-Status: none"), std::string::npos);
    EXPECT_FALSE(r.SessionSetCookie().has_value()) << i;
    EXPECT_TRUE(r.Headers("set-cookie").empty());
  }
  EXPECT_EQ(Stats().creates(), creates + 3);
  EXPECT_EQ(Limited("proxy"), 3);
  EXPECT_EQ(Limited("reject"), 0);

  // Another client is unaffected.
  HttpMessage other = Do(FirstVisit("198.51.100.9"));
  EXPECT_TRUE(other.SessionSetCookie().has_value());
  // The limited client's existing session still takes writes.
  HttpMessage again =
      Do(FirstVisit("203.0.113.7", "Cookie: connect.sid=" + cookie + "\r\n"));
  EXPECT_NE(again.body.find("X-Session-Status: loaded"), std::string::npos)
      << again.body;
  EXPECT_EQ(Stats().creates(), creates + 4);
  EXPECT_EQ(Limited("proxy"), 3);
}

TEST_F(EdgeFloodTest, RejectModeAnswers429WithRetryAfter) {
  StartAll({"--anon-session-rate=0.1", "--anon-session-burst=2",
            "--anon-session-over-limit=reject"});
  ASSERT_FALSE(HasFatalFailure());
  const int64_t creates = Stats().creates();
  EXPECT_TRUE(Do(FirstVisit("203.0.113.7")).SessionSetCookie().has_value());
  EXPECT_TRUE(Do(FirstVisit("203.0.113.7")).SessionSetCookie().has_value());
  HttpMessage r = Do(FirstVisit("203.0.113.7"));
  EXPECT_EQ(r.status, 429) << r.start_line;
  ASSERT_TRUE(r.Header("retry-after").has_value());
  const int retry = std::stoi(*r.Header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 10);  // one token at 0.1/s
  EXPECT_FALSE(r.SessionSetCookie().has_value());
  EXPECT_FALSE(Proxied(r));
  EXPECT_EQ(Stats().creates(), creates + 2);
  EXPECT_EQ(Limited("reject"), 1);
  EXPECT_EQ(MetricSum(Metrics(), "sg_edge_local_replies_total{code=\"429\"}"),
            1);
  // IPv6 clients are counted by /64: two from one /64 share its bucket.
  EXPECT_TRUE(Do(FirstVisit("2001:db8:5::1")).SessionSetCookie().has_value());
  EXPECT_TRUE(Do(FirstVisit("2001:db8:5::2")).SessionSetCookie().has_value());
  EXPECT_EQ(Do(FirstVisit("2001:db8:5::3")).status, 429);
  EXPECT_EQ(Do(FirstVisit("2001:db8:6::3")).status, 200);
  // The edge keeps serving everyone else.
  EXPECT_TRUE(Do(FirstVisit("198.51.100.9")).SessionSetCookie().has_value());
  EXPECT_EQ(Stats().creates(), creates + 6);
}

TEST_F(EdgeFloodTest, LimitZeroIsOff) {
  StartAll({"--anon-session-rate=0", "--anon-session-burst=1"});
  ASSERT_FALSE(HasFatalFailure());
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(Do(FirstVisit("203.0.113.7")).SessionSetCookie().has_value());
  }
  EXPECT_EQ(Limited("proxy"), 0);
}

// nginx auth_request mode: the application's write-back creates the
// session, keyed on the client it passes on in X-Forwarded-For.
TEST_F(EdgeFloodTest, AuthRequestCommitHonoursTheLimit) {
  StartAll({"--auth-request-path=/_sg/auth", "--anon-session-rate=0.1",
            "--anon-session-burst=2", "--anon-session-over-limit=reject"});
  ASSERT_FALSE(HasFatalFailure());
  auto commit = [&](const std::string& extra) {
    return Do(
        "POST /_sg/auth/commit HTTP/1.1\r\nHost: edge\r\n"
        "Content-Length: 0\r\nX-Session-Set: " +
        B64("{}") + "\r\n" + extra + "\r\n");
  };
  const int64_t creates = Stats().creates();
  const std::string client = "X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n";
  EXPECT_TRUE(commit(client).SessionSetCookie().has_value());
  EXPECT_TRUE(commit(client).SessionSetCookie().has_value());
  HttpMessage r = commit(client);
  EXPECT_EQ(r.status, 429) << r.start_line << r.body;
  EXPECT_TRUE(r.Header("retry-after").has_value());
  EXPECT_FALSE(r.SessionSetCookie().has_value());
  EXPECT_EQ(Stats().creates(), creates + 2);
  // Another client, and X-Real-IP when there is no X-Forwarded-For.
  EXPECT_EQ(commit("X-Forwarded-For: 198.51.100.9\r\n").status, 200);
  EXPECT_EQ(commit("X-Real-IP: 203.0.113.7\r\n").status, 429);
  // A commit naming no client is not limited (it would be the app's own
  // address, shared by every visitor).
  EXPECT_TRUE(commit("").SessionSetCookie().has_value());
  EXPECT_TRUE(commit("").SessionSetCookie().has_value());
  EXPECT_TRUE(commit("").SessionSetCookie().has_value());
  EXPECT_EQ(Limited("reject"), 2);
}

// 100,000 distinct clients, one new session each, over keep-alive
// connections: the bucket table is allocated at start, so the edge's RSS
// after the flood stays within 5 MiB of what it was after a warm-up.
TEST_F(EdgeFloodTest, FloodFrom100kDistinctIpsKeepsTheEdgeRssFlat) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  // Public addresses (not an internal range) 11.0.0.0 + n.
  auto ip_of = [](uint32_t n) {
    const uint32_t v = (11u << 24) + n;
    return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) +
           "." + std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
  };
  constexpr int kConnections = 4;
  // Sends requests [from, to) over kConnections keep-alive connections;
  // counts the responses that set a session cookie.
  auto flood = [&](uint32_t from, uint32_t to) {
    std::atomic<int64_t> cookies{0};
    std::atomic<int64_t> failures{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < kConnections; ++c) {
      threads.emplace_back([&, c] {
        int fd = -1;
        std::unique_ptr<Reader> reader;
        for (uint32_t n = from + c; n < to; n += kConnections) {
          if (fd < 0) {
            fd = ConnectTo(port_);
            if (fd < 0) {
              failures.fetch_add(1);
              continue;
            }
            reader = std::make_unique<Reader>(fd);
          }
          std::optional<HttpMessage> r;
          if (SendAll(fd, FirstVisit(ip_of(n)))) r = reader->Read(false);
          if (!r || r->status != 200) {
            failures.fetch_add(1);
            close(fd);
            fd = -1;
            continue;
          }
          if (r->SessionSetCookie()) cookies.fetch_add(1);
          if (auto conn = r->Header("connection");
              conn && Lower(*conn) == "close") {
            close(fd);
            fd = -1;
          }
        }
        if (fd >= 0) close(fd);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    return cookies.load();
  };
  constexpr uint32_t kWarmup = 5000;
  constexpr uint32_t kFlood = 100000;
  EXPECT_EQ(flood(0, kWarmup), kWarmup);
  const int64_t before = RssKiB(edge_->pid());
  ASSERT_GT(before, 0);
  const absl::Time start = absl::Now();
  EXPECT_EQ(flood(kWarmup, kWarmup + kFlood), kFlood);  // all distinct
  const absl::Duration took = absl::Now() - start;
  const int64_t after = RssKiB(edge_->pid());
  std::printf("edge RSS %lld KiB before, %lld KiB after %u clients (%.1f s)\n",
              static_cast<long long>(before), static_cast<long long>(after),
              kFlood, absl::ToDoubleSeconds(took));
  EXPECT_LT(after - before, 5 * 1024) << "KiB";
  EXPECT_EQ(Limited("proxy"), 0);
}

TEST_F(EdgeFloodTest, ProductionCookieIsSecureHttpOnlyLax) {
  StartAll({"--production"});
  ASSERT_FALSE(HasFatalFailure());
  // /login needs a session even under rule 10.
  HttpMessage r = Do(Get("/login?set=" + B64("x"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value()) << r.body;
  const std::string c = *r.SessionSetCookie();
  EXPECT_NE(c.find("; HttpOnly"), std::string::npos) << c;
  EXPECT_NE(c.find("; Secure"), std::string::npos) << c;
  EXPECT_NE(c.find("; SameSite=Lax"), std::string::npos) << c;
  EXPECT_NE(c.find("; Path=/"), std::string::npos) << c;
}

TEST_F(EdgeFloodTest, DevelopmentCookieIsNotSecureAndSameSiteIsAFlag) {
  StartAll({"--cookie-samesite=strict"});
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage r = Do(Get("/api/user/page?set=" + B64("x"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value()) << r.body;
  const std::string c = *r.SessionSetCookie();
  EXPECT_NE(c.find("; HttpOnly"), std::string::npos) << c;
  EXPECT_EQ(c.find("Secure"), std::string::npos) << c;
  EXPECT_NE(c.find("; SameSite=Strict"), std::string::npos) << c;
}

TEST_F(EdgeFloodTest, HostPrefixedCookieRoundTrips) {
  StartAll({"--production", "--cookie-host-prefix"});
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage r = Do(Get("/login?set=" + B64("x"), kBrowser));
  std::string set;
  for (const std::string& v : r.Headers("set-cookie")) {
    if (v.rfind("__Host-connect.sid=", 0) == 0) set = v;
  }
  ASSERT_FALSE(set.empty()) << r.body;
  EXPECT_NE(set.find("; Secure"), std::string::npos) << set;
  EXPECT_NE(set.find("; Path=/"), std::string::npos) << set;
  EXPECT_EQ(set.find("Domain"), std::string::npos) << set;
  // The prefixed cookie is the session cookie on the way back in.
  HttpMessage back =
      Do(Get("/login", std::string(kBrowser) +
                           "Cookie: " + set.substr(0, set.find(';')) + "\r\n"));
  EXPECT_NE(back.body.find("X-Session-Status: loaded"), std::string::npos)
      << back.body;
}

TEST_F(EdgeFloodTest, RotatedKeyKeepsTheSessionAndReSignsTheCookie) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  std::ofstream(dir_ + "/secrets") << "old-key-0123456789\n";
  StartEdge();
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage r = Do(Get("/api/user/page?set=" + B64("cart"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value());
  const std::string old_cookie = CookieValue(*r.SessionSetCookie());
  // Rotate: the new key first, the old one still verifies.
  edge_.reset();
  std::ofstream(dir_ + "/secrets")
      << "new-key-9876543210\nold-key-0123456789\n";
  StartEdge();
  ASSERT_FALSE(HasFatalFailure());
  const std::string with_old =
      std::string(kBrowser) + "Cookie: connect.sid=" + old_cookie + "\r\n";
  r = Do(Get("/api/user/page", with_old));
  EXPECT_NE(r.body.find("X-Session-Status: loaded"), std::string::npos)
      << r.body;
  ASSERT_TRUE(r.SessionSetCookie().has_value()) << "not re-signed";
  const std::string new_cookie = CookieValue(*r.SessionSetCookie());
  EXPECT_NE(new_cookie, old_cookie);
  auto signer = edge::CookieSigner::Create({"new-key-9876543210"});
  ASSERT_TRUE(signer.ok());
  const edge::VerifiedCookie v = (*signer)->VerifyValue(new_cookie);
  ASSERT_TRUE(v.ok()) << new_cookie;
  EXPECT_FALSE((*signer)->VerifyValue(old_cookie).ok());
  auto old_signer = edge::CookieSigner::Create({"old-key-0123456789"});
  ASSERT_TRUE(old_signer.ok());
  const edge::VerifiedCookie was = (*old_signer)->VerifyValue(old_cookie);
  ASSERT_TRUE(was.ok());
  EXPECT_EQ(v.id(), was.id());  // the same session id, re-signed
  // The re-signed cookie is the same session, and needs no re-signing.
  const std::string with_new =
      std::string(kBrowser) + "Cookie: connect.sid=" + new_cookie + "\r\n";
  r = Do(Get("/api/user/page", with_new));
  EXPECT_NE(r.body.find("X-Session-Status: loaded"), std::string::npos);
  EXPECT_FALSE(r.SessionSetCookie().has_value());
  // Dropping the old key: its cookies stop verifying (no session).
  edge_.reset();
  std::ofstream(dir_ + "/secrets") << "new-key-9876543210\n";
  StartEdge();
  ASSERT_FALSE(HasFatalFailure());
  r = Do(Get("/api/user/page", with_old));
  EXPECT_NE(r.body.find("X-Session-Status: none"), std::string::npos) << r.body;
}

TEST(EdgeFlagsTest, InconsistentCookieAndLimitFlagsAreRefusedAtStart) {
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<std::string> base = {"--upstream=http://127.0.0.1:1",
                                         "--session-service=127.0.0.1:1"};
  const std::vector<Case> cases = {
      {{"--cookie-host-prefix"}, "--cookie-host-prefix"},
      {{"--cookie-host-prefix", "--production", "--cookie-insecure"},
       "--cookie-host-prefix"},
      {{"--cookie-secure", "--cookie-insecure"}, "--cookie-insecure"},
      {{"--cookie-name=__Secure-sid"}, "--cookie-name"},
      {{"--anon-session-rate=-1"}, "--anon-session-rate"},
      {{"--anon-session-burst=0"}, "--anon-session-burst"},
      {{"--anon-session-over-limit=drop"}, "--anon-session-over-limit"},
      {{"--anon-session-table-slots=1000"}, "--anon-session-table-slots"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {SG_EDGE_BIN};
    argv.insert(argv.end(), base.begin(), base.end());
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto p = Subprocess::Start(argv);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->Wait(absl::Seconds(30)), 2) << (*p)->Output();
    EXPECT_NE((*p)->Output().find(c.flag), std::string::npos)
        << c.flag << ": " << (*p)->Output();
  }
  auto help = Subprocess::Start({SG_EDGE_BIN, "--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_EQ((*help)->Wait(absl::Seconds(30)), 0);
  for (const char* flag :
       {"--anon-session-rate", "--anon-session-burst",
        "--anon-session-over-limit", "--anon-session-table-slots",
        "--cookie-insecure", "--cookie-host-prefix"}) {
    EXPECT_NE((*help)->Output().find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace sg
