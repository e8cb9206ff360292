// The real sessiongrid-edge between a raw-socket HTTP client and a small
// upstream written here, with the real sessiongrid-server behind it, all on
// loopback with port 0. Checks the bypass (no cookie, zero session calls
// in the server's NodeStats and the edge's metrics), the session header
// protocol end to end, header hygiene, limits, WebSocket tunnelling, fail
// modes with the server killed, drain under load and a 100k flood.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "edge/session_cookie.h"
#include "gtest/gtest.h"
#include "sessiongrid/client.h"
#include "tests/testutil/subprocess.h"
#include "tests/integration/edge_harness.h"

namespace sg {
namespace {

using testutil::Subprocess;
using edge_harness::PollUntil;
using edge_harness::Lower;
using edge_harness::ConnectTo;
using edge_harness::SendAll;
using edge_harness::PortOf;
using edge_harness::HttpMessage;
using edge_harness::Reader;
using edge_harness::Exchange;
using edge_harness::Get;
using edge_harness::kBrowser;
using edge_harness::Upstream;
using edge_harness::kSecret;
using edge_harness::EdgeTest;
using edge_harness::RssKiB;
using edge_harness::Echoed;
using edge_harness::EchoedName;

TEST_F(EdgeTest, BypassedRequestsGetNoCookieAndCostNoSessionCall) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  const auto before = Stats();
  // Every request asks the upstream to create a session and to set the
  // session cookie itself; none of that may reach the client.
  const std::string ask = "set=" + B64("bot-data") + "&evilcookie=1";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/assets/main.js?" + ask, std::string(kBrowser)},
      {"/assets/style.css?" + ask, std::string(kBrowser)},
      {"/assets/logo.png?" + ask, std::string(kBrowser)},
      {"/api/health?" + ask,
       "User-Agent: axios/1.0.0\r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/api/health?" + ask,
       "User-Agent: curl/7.68.0\r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/?" + ask, "User-Agent: \r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/?" + ask, "X-Forwarded-For: 203.0.113.7\r\n"},  // no UA at all
      {"/?" + ask,
       "User-Agent: Googlebot/2.1\r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/?" + ask,
       "User-Agent: Bingbot/2.1\r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/?" + ask,
       "User-Agent: Slackbot/2.1\r\nX-Forwarded-For: 203.0.113.7\r\n"},
      {"/?" + ask,
       "User-Agent: facebookexternalhit/2.1\r\nX-Forwarded-For: "
       "203.0.113.7\r\n"},
      {"/robots.txt?" + ask, std::string(kBrowser)},
  };
  for (const auto& [target, headers] : cases) {
    HttpMessage r = Do(Get(target, headers));
    EXPECT_EQ(r.status, 200) << target << "\n" << headers;
    EXPECT_FALSE(r.SessionSetCookie().has_value()) << target << "\n" << headers;
    EXPECT_FALSE(r.Header("x-session-set").has_value());
    // Cookies other than the session cookie pass untouched.
    EXPECT_EQ(r.Headers("set-cookie"),
              std::vector<std::string>{"theme=dark; Path=/"});
    // Bypassed requests carry no session protocol upstream.
    EXPECT_FALSE(EchoedName(r, "x-session-status")) << r.body;
  }
  const auto after = Stats();
  EXPECT_EQ(after.creates(), before.creates());
  EXPECT_EQ(after.reads(), before.reads());
  EXPECT_EQ(after.sessions(), before.sessions());
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_session_calls_total{"), 0) << metrics;
  EXPECT_EQ(MetricSum(metrics, "sg_edge_sessions_created_total"), 0);
  EXPECT_EQ(MetricSum(metrics, "sg_edge_requests_total{decision=\"bypass\""),
            static_cast<double>(cases.size()));
  EXPECT_GE(MetricSum(metrics,
                      "sg_edge_requests_total{decision=\"bypass\","
                      "reason=\"internal_ua:googlebot\"}"),
            1);
  EXPECT_GE(MetricSum(metrics,
                      "sg_edge_requests_total{decision=\"bypass\","
                      "reason=\"empty_or_short_ua\"}"),
            2);
}

// A session's whole life through the edge, over each way the edge can call
// the service: batch RPCs (the default), unary RPCs, or the stream.
class EdgeSessionLifecycleTest : public EdgeTest {
 protected:
  void Run(std::vector<std::string> edge_flags, const std::string& path) {
    StartAll(std::move(edge_flags));
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_NE(edge_->Output().find("session_calls=" + path), std::string::npos)
        << edge_->Output();
    const auto before = Stats();

    // A page that needs a session but stores nothing: no session, no cookie.
    HttpMessage r = Do(Get("/dashboard", kBrowser));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(Echoed(r, "X-Session-Status: none")) << r.body;
    EXPECT_FALSE(r.SessionSetCookie().has_value());
    EXPECT_EQ(Stats().creates(), before.creates());

    // The app stores data: the session is created lazily, cookie issued.
    const std::string data = R"({"cart":[1,2]})";
    r = Do(Get("/api/user/cart?set=" + B64(data), kBrowser));
    ASSERT_TRUE(r.SessionSetCookie().has_value()) << r.body;
    EXPECT_FALSE(r.Header("x-session-set").has_value());
    const std::string cookie1 = CookieValue(*r.SessionSetCookie());
    EXPECT_EQ(cookie1.rfind("s%3A", 0), 0u) << cookie1;
    EXPECT_NE(r.SessionSetCookie()->find("HttpOnly"), std::string::npos);
    EXPECT_EQ(Stats().creates(), before.creates() + 1);

    // Next request: loaded, data and id passed upstream, no Set-Cookie.
    const std::string with1 = std::string(kBrowser) +
                              "Cookie: connect.sid=" + cookie1 +
                              "; theme=dark\r\n";
    r = Do(Get("/api/user/cart", with1));
    EXPECT_TRUE(Echoed(r, "X-Session-Status: loaded")) << r.body;
    EXPECT_TRUE(Echoed(r, "X-Session-Data: " + B64(data))) << r.body;
    EXPECT_TRUE(EchoedName(r, "X-Session-Id")) << r.body;
    EXPECT_FALSE(EchoedName(r, "X-Session-Principal")) << r.body;
    EXPECT_FALSE(r.SessionSetCookie().has_value());
    // A client's own X-Session-Data never reaches the app beside ours.
    r = Do(Get("/api/user/cart", with1 + "X-Session-Data: ZXZpbA==\r\n"));
    EXPECT_TRUE(Echoed(r, "X-Session-Data: " + B64(data))) << r.body;
    EXPECT_FALSE(Echoed(r, "X-Session-Data: ZXZpbA==")) << r.body;

    // Login: the id rotates, the old cookie stops working.
    r = Do(Get("/login?principal=alice", with1));
    ASSERT_TRUE(r.SessionSetCookie().has_value()) << r.body;
    const std::string cookie2 = CookieValue(*r.SessionSetCookie());
    EXPECT_NE(cookie2, cookie1);
    const std::string with2 =
        std::string(kBrowser) + "Cookie: connect.sid=" + cookie2 + "\r\n";
    r = Do(Get("/api/user/me", with2));
    EXPECT_TRUE(Echoed(r, "X-Session-Status: loaded")) << r.body;
    EXPECT_TRUE(Echoed(r, "X-Session-Principal: alice")) << r.body;
    EXPECT_TRUE(Echoed(r, "X-Session-Data: " + B64(data))) << r.body;
    r = Do(Get("/api/user/me", with1));
    EXPECT_TRUE(Echoed(r, "X-Session-Status: expired")) << r.body;

    // Logout: destroyed, cookie cleared, the cookie no longer loads.
    r = Do(Get("/api/auth/logout?destroy=1", with2));
    ASSERT_TRUE(r.SessionSetCookie().has_value());
    EXPECT_NE(r.SessionSetCookie()->find("Max-Age=0"), std::string::npos)
        << *r.SessionSetCookie();
    r = Do(Get("/api/user/me", with2));
    EXPECT_TRUE(Echoed(r, "X-Session-Status: expired")) << r.body;
    EXPECT_FALSE(r.SessionSetCookie().has_value());

    const std::string metrics = Metrics();
    EXPECT_EQ(MetricSum(metrics, "sg_edge_sessions_created_total"), 1);
    EXPECT_EQ(MetricSum(metrics, "sg_edge_sessions_rotated_total"), 1);
    EXPECT_EQ(MetricSum(metrics, "sg_edge_sessions_destroyed_total"), 1);
    EXPECT_GE(MetricSum(metrics, "sg_edge_session_call_duration_seconds_count"),
              5);
  }
};

TEST_F(EdgeSessionLifecycleTest, ThroughTheHeaderProtocolBatched) {
  Run({}, "batch");
}
TEST_F(EdgeSessionLifecycleTest, ThroughTheHeaderProtocolUnary) {
  Run({"--session-batching=false"}, "unary");
}
TEST_F(EdgeSessionLifecycleTest, ThroughTheHeaderProtocolStreamed) {
  Run({"--session-streaming"}, "stream");
}

TEST_F(EdgeTest, ForgedAndMalformedCookiesGetNoSessionAndAreCounted) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  // Create a real session to forge against.
  HttpMessage r = Do(Get("/api/user/x?set=" + B64("secret"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value());
  const std::string real = CookieValue(*r.SessionSetCookie());
  const auto before = Stats();

  // The same id signed with another secret.
  auto other = edge::CookieSigner::Create({"attacker-secret"});
  ASSERT_TRUE(other.ok());
  std::string id = real.substr(4, real.find('.') - 4);
  const std::string forged = (*other)->EncodedValue(id);
  for (const std::string& bad :
       {forged, std::string("s%3Aabc.def"), std::string("plain-unsigned-id")}) {
    r = Do(Get("/api/user/x",
               std::string(kBrowser) + "Cookie: connect.sid=" + bad + "\r\n"));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(Echoed(r, "X-Session-Status: none")) << bad << "\n" << r.body;
    EXPECT_FALSE(EchoedName(r, "X-Session-Data")) << r.body;
  }
  EXPECT_EQ(Stats().reads(), before.reads());  // never asked the service
  const std::string metrics = Metrics();
  EXPECT_EQ(
      MetricSum(metrics,
                "sg_edge_cookies_rejected_total{verdict=\"bad_signature\"}"),
      1);
  EXPECT_EQ(MetricSum(metrics,
                      "sg_edge_cookies_rejected_total{verdict=\"malformed\"}"),
            2);
}

TEST_F(EdgeTest, ClientSessionHeadersAreStrippedAndHopByHopRemoved) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  const std::string spoof =
      "X-Session-Id: stolen\r\nX-Session-Status: loaded\r\n"
      "X-Session-Data: ZXZpbA==\r\nX-Session-Principal: admin\r\n"
      "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
      "Keep-Alive: timeout=99\r\nTE: trailers\r\nProxy-Connection: close\r\n"
      "Upgrade: h2c\r\n";
  // Session-required request: only the edge's own X-Session-Status.
  HttpMessage r = Do(Get("/api/user/x", std::string(kBrowser) + spoof));
  EXPECT_TRUE(Echoed(r, "X-Session-Status: none")) << r.body;
  for (std::string_view name :
       {"X-Session-Id", "X-Session-Data", "X-Session-Principal", "X-Hop",
        "Keep-Alive", "TE", "Proxy-Connection", "Upgrade", "Connection"}) {
    EXPECT_FALSE(EchoedName(r, name)) << name << "\n" << r.body;
  }
  // This hop is appended to the trusted proxy's list; Via added.
  EXPECT_TRUE(Echoed(r, "X-Forwarded-For: 203.0.113.7, 127.0.0.1")) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Forwarded-Proto: http")) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Forwarded-Host: app.test")) << r.body;
  EXPECT_TRUE(Echoed(r, "Via: 1.1 sessiongrid-edge")) << r.body;
  // The upstream's hop-by-hop response fields do not reach the client.
  EXPECT_FALSE(r.Header("x-resp-hop").has_value());
  EXPECT_FALSE(r.Header("keep-alive").has_value());
  // Bypassed request: no X-Session-* at all.
  r = Do(Get("/assets/a.js", std::string(kBrowser) + spoof));
  EXPECT_FALSE(EchoedName(r, "X-Session-")) << r.body;
}

TEST_F(EdgeTest, LimitsAnswer431And413) {
  StartAll({"--max-header-bytes=8KiB", "--max-body-bytes=64KiB"});
  ASSERT_FALSE(HasFatalFailure());
  const int64_t seen = upstream_->requests();
  HttpMessage r =
      Do(Get("/assets/a.js", "X-Big: " + std::string(16 * 1024, 'a') + "\r\n"));
  EXPECT_EQ(r.status, 431);
  // Content-Length over the limit: refused before any byte is forwarded.
  std::string post =
      "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
  r = Do(post + std::string(100000, 'x'));
  EXPECT_EQ(r.status, 413);
  // Chunked over the limit: cut when the limit is crossed.
  std::string chunked =
      "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      "\r\n";
  for (int i = 0; i < 20; ++i)
    chunked += "1000\r\n" + std::string(4096, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  r = Do(chunked);
  EXPECT_EQ(r.status, 413);
  // Within limits: streamed through, length preserved.
  r =
      Do("POST /assets/upload HTTP/1.1\r\nHost: a\r\nContent-Length: "
         "50000\r\n\r\n" +
         std::string(50000, 'z'));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Echoed(r, "body-bytes: 50000")) << r.body;
  EXPECT_EQ(upstream_->requests(), seen + 1);
  EXPECT_GE(MetricSum(Metrics(), "sg_edge_local_replies_total{code=\"413\"}"),
            2);
}

TEST_F(EdgeTest, KeepAliveAndPipeliningOnOneConnection) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    batch += Get("/assets/p" + std::to_string(i) + ".js", kBrowser);
  }
  batch += Get("/assets/head.js", kBrowser, "HEAD");
  ASSERT_TRUE(SendAll(fd, batch));
  Reader reader(fd);
  for (int i = 0; i < 20; ++i) {
    auto r = reader.Read(false);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("GET /assets/p" + std::to_string(i) + ".js"),
              std::string::npos);
  }
  auto head = reader.Read(false, /*no_body=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->Header("content-length").has_value());
  // Still usable afterwards.
  ASSERT_TRUE(SendAll(fd, Get("/assets/last.js", kBrowser)));
  auto last = reader.Read(false);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->status, 200);
  close(fd);
}

TEST_F(EdgeTest, StalePooledUpstreamConnectionIsRetriedForIdempotentGet) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  int fd = ConnectTo(port_);  // one client connection: one edge thread
  ASSERT_GE(fd, 0);
  Reader reader(fd);
  ASSERT_TRUE(SendAll(fd, Get("/assets/a.js?closeafter=1", kBrowser)));
  auto first = reader.Read(false);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  // The pooled connection is dead; this GET must still succeed.
  ASSERT_TRUE(SendAll(fd, Get("/assets/b.js", kBrowser)));
  auto second = reader.Read(false);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_NE(second->body.find("GET /assets/b.js"), std::string::npos);
  close(fd);
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_upstream_errors_total"), 0);
  EXPECT_EQ(MetricSum(metrics,
                      "sg_edge_upstream_connections_total{kind="
                      "\"opened\"}"),
            2);
}

TEST_F(EdgeTest, WebSocketUpgradeTunnelsBytesBothWays) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(
      fd, Get("/ws/chat", std::string(kBrowser) +
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n")));
  Reader reader(fd);
  auto r = reader.Read(false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(Lower(r->Header("upgrade").value_or("")), "websocket");
  EXPECT_EQ(Lower(r->Header("connection").value_or("")), "upgrade");
  EXPECT_FALSE(r->SessionSetCookie().has_value());
  for (const std::string& msg :
       std::vector<std::string>{"hello", std::string(50000, 'w'), "bye"}) {
    ASSERT_TRUE(SendAll(fd, msg));
    std::string got;
    while (got.size() < msg.size()) {
      std::string part = reader.ReadSome();
      ASSERT_FALSE(part.empty()) << "tunnel closed early";
      got += part;
    }
    EXPECT_EQ(got, msg);
  }
  close(fd);
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_tunnels_total"), 1);
  EXPECT_EQ(MetricSum(metrics,
                      "sg_edge_requests_total{decision=\"bypass\","
                      "reason=\"websocket_upgrade\"}"),
            1);
}

TEST_F(EdgeTest, SeedEndpointsAnswerWithoutSessions) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  const auto before = Stats();
  // The seed's load mix: 70 % assets, 20 % API health, 10 % pages.
  for (int i = 0; i < 100; ++i) {
    std::string req;
    if (i < 70) {
      req = Get("/assets/file" + std::to_string(i) + ".js",
                "User-Agent: Mozilla/5.0\r\n");
    } else if (i < 90) {
      req = Get("/api/health", "User-Agent: axios/1.0\r\n");
    } else {
      req = Get("/", "User-Agent: Mozilla/5.0\r\n");
    }
    EXPECT_EQ(Do(req).status, 200);
  }
  for (std::string ua : {"axios/1.0.0", "Mozilla/5.0 (X11) Firefox/120.0"}) {
    HttpMessage h =
        Do(Get("/api/session-health", "User-Agent: " + ua + "\r\n" +
                                          "X-Forwarded-For: 203.0.113.9\r\n"));
    EXPECT_EQ(h.status, 200) << h.body;
    EXPECT_FALSE(h.SessionSetCookie().has_value());
    EXPECT_NE(h.Header("content-type")->find("application/json"),
              std::string::npos);
    for (std::string key :
         {"\"healthy\":true", "\"metrics\":{", "\"totalRequests\":",
          "\"skippedRequests\":", "\"targetSkipRatio\":\"95%\"",
          "\"activeSessions\":", "\"maxSessions\":10000", "\"memory\":{",
          "\"heapUsed\":\"", "\"warningThreshold\":\"70%\"",
          "\"criticalThreshold\":\"85%\"", "\"skipReasonStats\":{",
          "\"uptime\":"}) {
      EXPECT_NE(h.body.find(key), std::string::npos) << key << "\n" << h.body;
    }
    // skipRatio "NN.NN%": at least the seed's 80 % over this mix.
    const size_t at = h.body.find("\"skipRatio\":\"");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GE(std::stod(h.body.substr(at + 13)), 80.0) << h.body;
  }
  HttpMessage d = Do(
      Get("/api/production-monitor/dashboard", "User-Agent: axios/1.0.0\r\n"));
  EXPECT_EQ(d.status, 200);
  EXPECT_NE(d.body.find("\"status\":\"operational\""), std::string::npos);
  EXPECT_NE(d.body.find("\"sessionMetrics\":{"), std::string::npos);
  EXPECT_NE(d.body.find("\"memory\":{\"rss\":"), std::string::npos);
  EXPECT_FALSE(d.SessionSetCookie().has_value());
  const auto after = Stats();
  EXPECT_EQ(after.reads(), before.reads());
  EXPECT_EQ(after.creates(), before.creates());
  EXPECT_EQ(MetricSum(Metrics(), "sg_edge_session_calls_total{"), 0);
  EXPECT_EQ(Do(Get("/healthz")).status, 200);  // proxied, not the admin one
  EXPECT_EQ(Exchange(admin_port_, Get("/healthz"))->status, 200);
  EXPECT_EQ(ReadyzStatus(), 200);
}

TEST_F(EdgeTest, TimeoutsAnswer408And504AndRefusedUpstream502) {
  StartAll({"--header-timeout=300ms", "--upstream-timeout=300ms"});
  ASSERT_FALSE(HasFatalFailure());
  // A request head that never completes.
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "GET /assets/a.js HTTP/1.1\r\nHost: a\r\n"));
  auto r = Reader(fd).Read(false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  close(fd);
  // An upstream slower than --upstream-timeout.
  EXPECT_EQ(Do(Get("/assets/slow.js?delay_ms=2000", kBrowser)).status, 504);
  // The edge keeps serving.
  EXPECT_EQ(Do(Get("/assets/a.js", kBrowser)).status, 200);
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_local_replies_total{code=\"408\"}"), 1);
  EXPECT_EQ(MetricSum(metrics,
                      "sg_edge_upstream_errors_total{kind="
                      "\"response_timeout\"}"),
            1);

  // An upstream port nobody listens on.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  close(probe);
  edge_.reset();
  StartEdge(
      {"--upstream=http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage bad = Do(Get("/assets/a.js", kBrowser));
  EXPECT_EQ(bad.status, 502);
  EXPECT_EQ(MetricSum(Metrics(),
                      "sg_edge_upstream_errors_total{kind="
                      "\"connect\"}"),
            1);
}

TEST_F(EdgeTest, ShadowModeCountsDecisionsButBypassesNothing) {
  StartAll({"--classifier-mode=shadow"});
  ASSERT_FALSE(HasFatalFailure());
  // A bot that the enforcing edge would bypass: here it gets the session
  // flow, and the would-be decision is counted.
  HttpMessage r = Do(Get("/?set=" + B64("x"),
                         "User-Agent: Googlebot/2.1\r\n"
                         "X-Forwarded-For: 203.0.113.7\r\n"));
  EXPECT_TRUE(Echoed(r, "X-Session-Status: none")) << r.body;
  EXPECT_TRUE(r.SessionSetCookie().has_value());
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_classifier_shadow_mode"), 1);
  EXPECT_EQ(MetricSum(metrics,
                      "sg_edge_requests_total{decision=\"bypass\","
                      "reason=\"internal_ua:googlebot\"}"),
            1);
}

TEST_F(EdgeTest, LargeResponseIsStreamedNotBuffered) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Do(Get("/assets/warm.bin?big=1000000", kBrowser)).body.size(),
            1000000u);
  const int64_t before = RssKiB(edge_->pid());
  constexpr size_t kBig = 96u << 20;
  HttpMessage r =
      Do(Get("/assets/huge.bin?big=" + std::to_string(kBig), kBrowser));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), kBig);
  const int64_t after = RssKiB(edge_->pid());
  EXPECT_LT(after - before, 16 * 1024)
      << "RSS " << before << " KiB -> " << after << " KiB";
}

// The request direction of the body relay: a body sent in pieces after
// "100 Continue", and a large chunked body, arrive whole upstream.
TEST_F(EdgeTest, RequestBodiesAreRelayedInPiecesAfterContinue) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  const int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  constexpr size_t kBody = 100000;
  ASSERT_TRUE(SendAll(fd,
                      "POST /assets/upload HTTP/1.1\r\nHost: a\r\n"
                      "Expect: 100-continue\r\nContent-Length: " +
                          std::to_string(kBody) + "\r\n\r\n"));
  Reader reader(fd);
  auto cont = reader.Read(false);
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  for (size_t sent = 0; sent < kBody; sent += 25000) {
    ASSERT_TRUE(SendAll(fd, std::string(25000, 'p')));
  }
  auto r = reader.Read(false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(Echoed(*r, "body-bytes: " + std::to_string(kBody))) << r->body;
  close(fd);

  std::string chunked =
      "POST /assets/up2 HTTP/1.1\r\nHost: a\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 64; ++i) {
    chunked += "4000\r\n" + std::string(0x4000, 'q') + "\r\n";
  }
  chunked += "0\r\n\r\n";
  HttpMessage big = Do(chunked);
  EXPECT_EQ(big.status, 200);
  EXPECT_TRUE(Echoed(big, "body-bytes: " + std::to_string(64 * 0x4000)))
      << big.body;
}

TEST_F(EdgeTest, FailOpenProxiesAsUnavailableWhenServerIsKilled) {
  StartAll({"--fail-mode=open", "--session-timeout=200ms",
            "--breaker-failures=3", "--breaker-cooldown=30s"});
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage r = Do(Get("/api/user/x?set=" + B64("v"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value());
  const std::string with = std::string(kBrowser) + "Cookie: connect.sid=" +
                           CookieValue(*r.SessionSetCookie()) + "\r\n";
  server_->Signal(SIGKILL);
  EXPECT_EQ(server_->Wait(absl::Seconds(30)), 128 + SIGKILL);
  for (int i = 0; i < 6; ++i) {
    r = Do(Get("/api/user/x", with));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(Echoed(r, "X-Session-Status: unavailable")) << r.body;
    EXPECT_FALSE(r.SessionSetCookie().has_value());
  }
  // A write the app asks for cannot be applied: passed through, no cookie.
  r = Do(Get("/api/user/x?set=" + B64("w"), with));
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.SessionSetCookie().has_value());
  // Bypassed traffic is unaffected.
  EXPECT_EQ(Do(Get("/assets/a.js", kBrowser)).status, 200);
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_session_breaker_opened_total"), 1);
  EXPECT_EQ(MetricSum(metrics, "sg_edge_session_breaker_state"), 1);
  // After opening, calls are skipped, not timed out.
  EXPECT_GE(MetricSum(metrics,
                      "sg_edge_session_calls_total{method=\"get\","
                      "result=\"rejected\"}"),
            3);
  EXPECT_EQ(ReadyzStatus(), 200);  // fail-open stays ready
}

TEST_F(EdgeTest, FailClosedAnswers503AndFailsReadiness) {
  StartAll({"--fail-mode=closed", "--session-timeout=200ms",
            "--breaker-failures=3", "--breaker-cooldown=30s"});
  ASSERT_FALSE(HasFatalFailure());
  HttpMessage r = Do(Get("/api/user/x?set=" + B64("v"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value());
  const std::string with = std::string(kBrowser) + "Cookie: connect.sid=" +
                           CookieValue(*r.SessionSetCookie()) + "\r\n";
  // Ready once the monitor has seen the service.
  PollUntil([&] { return ReadyzStatus() == 200; }, absl::Seconds(10));
  EXPECT_EQ(ReadyzStatus(), 200);
  server_->Signal(SIGKILL);
  EXPECT_EQ(server_->Wait(absl::Seconds(30)), 128 + SIGKILL);
  const int64_t upstream_before = upstream_->requests();
  for (int i = 0; i < 5; ++i) {
    r = Do(Get("/api/user/x", with));
    EXPECT_EQ(r.status, 503) << r.body;
  }
  EXPECT_EQ(upstream_->requests(), upstream_before);  // never reached the app
  // Bypassed traffic is still served.
  EXPECT_EQ(Do(Get("/assets/a.js", kBrowser)).status, 200);
  PollUntil([&] { return ReadyzStatus() == 503; }, absl::Seconds(10));
  EXPECT_EQ(ReadyzStatus(), 503);
}

// Clients on keep-alive connections; SIGTERM while they run. Every request
// the edge read must be answered completely: the upstream saw exactly as
// many requests as the clients got 200s, and no response was cut or
// failed. Allowed, as for any HTTP/1.1 server: a connection refused once
// the listener closed, and, after the signal, a connection that closes
// before any byte of a response (a keep-alive connection closed while
// idle, or one the kernel queued in the instant the listener closed: the
// edge never read those requests, and clients retry them).
TEST_F(EdgeTest, SigtermUnderLoadLosesNoRequestAndExitsZero) {
  StartAll({"--drain-delay=300ms", "--drain-timeout=10s"});
  ASSERT_FALSE(HasFatalFailure());
  constexpr int kClients = 6;
  const int64_t upstream_base = upstream_->requests();
  std::atomic<int64_t> ok{0}, refused{0}, retried{0}, lost{0};
  std::atomic<bool> signalled{false};
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const absl::Time stop_by = absl::Now() + absl::Seconds(40);
      int fd = -1;
      std::unique_ptr<Reader> reader;
      for (int i = 0; absl::Now() < stop_by; ++i) {
        if (fd < 0) {
          int err = 0;
          fd = ConnectTo(port_, &err);
          if (fd < 0) {
            (err == ECONNREFUSED && signalled ? refused : lost)++;
            return;
          }
          reader = std::make_unique<Reader>(fd);
        }
        // A mix: assets, and session-required pages that stay in flight.
        std::string target = (i % 3 == 0)
                                 ? "/api/user/p?delay_ms=20"
                                 : "/assets/x" + std::to_string(c) + ".js";
        bool got_bytes = false;
        std::optional<HttpMessage> r;
        if (SendAll(fd, Get(target, kBrowser))) {
          r = reader->Read(false, false, &got_bytes);
        }
        if (i == 5) started++;
        if (!r) {
          close(fd);
          fd = -1;
          if (!got_bytes && signalled) {
            retried++;
            continue;  // never read by the edge: retry on a new connection
          }
          lost++;
          return;
        }
        (r->status == 200 ? ok : lost)++;
        auto conn = r->Header("connection");
        if (conn && Lower(*conn) == "close") {
          close(fd);
          fd = -1;
        }
      }
      if (fd >= 0) close(fd);
    });
  }
  // Wait until every client is well into its loop, then signal.
  PollUntil([&] { return started.load() >= kClients; }, absl::Seconds(20),
            absl::Milliseconds(5));
  const int64_t ok_at_signal = ok.load();
  signalled = true;
  edge_->Signal(SIGTERM);
  for (auto& t : clients) t.join();
  EXPECT_EQ(edge_->Wait(absl::Seconds(30)), 0) << edge_->Output();
  EXPECT_EQ(lost.load(), 0);
  EXPECT_EQ(refused.load(), kClients) << "every client ends at the closed "
                                         "listener";
  EXPECT_EQ(upstream_->requests() - upstream_base, ok.load());
  EXPECT_GE(ok_at_signal, kClients * 5);
  EXPECT_GT(ok.load(), ok_at_signal) << "served during the drain delay";
  EXPECT_NE(edge_->Output().find("phase=\"listener closed\""),
            std::string::npos);
  RecordProperty("requests_ok", std::to_string(ok.load()));
  RecordProperty("retried_after_close", std::to_string(retried.load()));
}

TEST_F(EdgeTest, InFlightSlowRequestFinishesDuringDrain) {
  StartAll({"--drain-delay=0s", "--drain-timeout=10s"});
  ASSERT_FALSE(HasFatalFailure());
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  // Warm the connection so the edge has read the next request before the
  // signal: the upstream holds it for 1.5 s.
  Reader reader(fd);
  ASSERT_TRUE(SendAll(fd, Get("/assets/w.js", kBrowser)));
  ASSERT_TRUE(reader.Read(false).has_value());
  const int64_t seen = upstream_->requests();
  ASSERT_TRUE(SendAll(fd, Get("/assets/slow.js?delay_ms=1500", kBrowser)));
  PollUntil([&] { return upstream_->requests() != seen; }, absl::Seconds(10),
            absl::Milliseconds(2));
  ASSERT_EQ(upstream_->requests(), seen + 1);
  edge_->Signal(SIGTERM);
  auto r = reader.Read(false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Lower(r->Header("connection").value_or("")), "close");
  close(fd);
  EXPECT_EQ(edge_->Wait(absl::Seconds(30)), 0);
  // The listener is gone.
  int err = 0;
  int again = ConnectTo(port_, &err);
  EXPECT_LT(again, 0);
  if (again >= 0) close(again);
}

// 100,000 bypassed requests over keep-alive connections (pipelined): the
// session count does not move and the edge's RSS stays flat.
TEST_F(EdgeTest, FloodOfBypassedRequestsKeepsSessionsAndMemoryFlat) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  constexpr int kThreads = 4;
  constexpr int kBatch = 32;
  auto run = [&](int total) {
    std::atomic<int64_t> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        int fd = ConnectTo(port_);
        if (fd < 0) return;
        Reader reader(fd);
        const std::string one =
            Get("/assets/app.js",
                "User-Agent: Mozilla/5.0 Chrome/120\r\nAccept: */*\r\n"
                "X-Forwarded-For: 198.51.100." +
                    std::to_string(t + 1) + "\r\n");
        std::string batch;
        for (int i = 0; i < kBatch; ++i) batch += one;
        for (int sent = 0; sent < total / kThreads; sent += kBatch) {
          if (!SendAll(fd, batch)) break;
          for (int i = 0; i < kBatch; ++i) {
            auto r = reader.Read(false);
            if (!r) {
              close(fd);
              return;
            }
            if (r->status == 200 && !r->SessionSetCookie()) good++;
          }
        }
        close(fd);
      });
    }
    for (auto& th : threads) th.join();
    return good.load();
  };
  const absl::Time start = absl::Now();
  ASSERT_EQ(run(10'240), 10'240);  // warm-up: pools, buffers, allocator
  const int64_t sessions_before = Stats().sessions();
  const int64_t rss_before = RssKiB(edge_->pid());
  ASSERT_GT(rss_before, 0);
  EXPECT_EQ(run(100'096), 100'096);
  const int64_t rss_after = RssKiB(edge_->pid());
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(60));
  EXPECT_EQ(Stats().sessions(), sessions_before);
  EXPECT_LE(rss_after - rss_before, 5 * 1024)
      << "RSS " << rss_before << " KiB -> " << rss_after << " KiB";
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricSum(metrics, "sg_edge_session_calls_total{"), 0);
  RecordProperty("flood_seconds", std::to_string(absl::ToDoubleSeconds(took)));
  RecordProperty("rss_growth_kib", std::to_string(rss_after - rss_before));
  std::printf("flood: %.1f s, RSS %lld -> %lld KiB\n",
              absl::ToDoubleSeconds(took), static_cast<long long>(rss_before),
              static_cast<long long>(rss_after));
}

TEST_F(EdgeTest, BadFlagsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<Case> cases = {
      {{"--fail-mode=maybe"}, "--fail-mode"},
      {{"--classifier-mode=loud"}, "--classifier-mode"},
      {{"--upstream=ftp://x:1", "--session-service=a:1"}, "--upstream"},
      {{"--upstream=http://127.0.0.1:1", "--session-service=a:1",
        "--listen=nope"},
       "--listen"},
      {{"--max-body-bytes=lots"}, "--max-body-bytes"},
      {{"--upstream=http://127.0.0.1:1", "--session-service=a:1",
        "--cookie-samesite=none"},
       "--cookie-samesite"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {SG_EDGE_BIN};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto p = Subprocess::Start(argv);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->Wait(absl::Seconds(30)), 2) << (*p)->Output();
    EXPECT_NE((*p)->Output().find(c.flag), std::string::npos) << (*p)->Output();
  }
  auto help = Subprocess::Start({SG_EDGE_BIN, "--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_EQ((*help)->Wait(absl::Seconds(30)), 0);
  for (std::string flag : {"--listen",
                           "--admin-listen",
                           "--upstream",
                           "--session-service",
                           "--rules",
                           "--classifier-mode",
                           "--cookie-name",
                           "--cookie-secret-file",
                           "--cookie-secure",
                           "--cookie-samesite",
                           "--cookie-max-age",
                           "--session-ttl",
                           "--fail-mode",
                           "--production",
                           "--trusted-proxies",
                           "--drain-delay",
                           "--drain-timeout",
                           "--threads",
                           "--max-header-bytes",
                           "--max-body-bytes"}) {
    EXPECT_NE((*help)->Output().find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace sg
