// Threats of docs/security.md at the real edge: a spoofed X-Forwarded-For
// (believed only from --trusted-proxies, right-most untrusted hop) and
// header injection (CR, LF or NUL in what the app answers, and in stored
// session fields the edge writes into the app's request).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "edge/session_cookie.h"
#include "tests/integration/edge_harness.h"

namespace sg {
namespace {

using namespace edge_harness;  // NOLINT(build/namespaces)

// A browser page that stores data (so the edge creates a session when the
// request has none), from the given X-Forwarded-For.
std::string FirstVisit(const std::string& xff, const std::string& extra = "") {
  return Get("/api/user/page?set=" + absl::Base64Escape("{\"v\":1}"),
             "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
             "Accept: text/html\r\n"
             "X-Forwarded-For: " +
                 xff + "\r\n" + extra);
}

// An upstream that answers every request on a connection with one fixed
// response head (raw bytes, so it can hold what no HTTP library writes),
// then closes.
class RawUpstream {
 public:
  explicit RawUpstream(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // the listener was shut down
        Reader reader(c);
        if (reader.Read(/*is_request=*/true).has_value()) {
          (void)SendAll(c, response_);
        }
        shutdown(c, SHUT_RDWR);
        close(c);
      }
    });
  }
  ~RawUpstream() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

class EdgeThreatTest : public EdgeTest {
 protected:
  double Reason(const std::string& reason) {
    return MetricSum(
        Metrics(),
        "sg_edge_requests_total{decision=\"" +
            std::string(reason == "session_required" ? "session" : "bypass") +
            "\",reason=\"" + reason + "\"}");
  }
  double Limited() {
    return MetricSum(Metrics(),
                     "sg_edge_anon_sessions_limited_total{action=\"proxy\"}");
  }
};

// The peer (loopback) is not a trusted proxy here: whatever it claims in
// X-Forwarded-For, the limiter (keyed by the client address) sees the peer
// itself, so six claimed clients share one bucket of two; the app gets the
// claim with the real peer appended as the right-most hop, and
// X-Forwarded-Proto and X-Forwarded-Host from it are replaced.
TEST_F(EdgeThreatTest, ForwardedForFromAnUntrustedPeerIsNotBelieved) {
  StartAll({"--trusted-proxies=192.0.2.0/24", "--anon-session-rate=0.1",
            "--anon-session-burst=2"});
  ASSERT_FALSE(HasFatalFailure());
  int cookies = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string claim =
        i % 2 == 0 ? "203.0.113." + std::to_string(i + 1)
                   : "198.51.100.1, 203.0.113." + std::to_string(i + 1);
    SCOPED_TRACE(claim);
    HttpMessage r = Do(FirstVisit(
        claim, "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n"));
    EXPECT_EQ(r.status, 200);
    if (r.SessionSetCookie().has_value()) ++cookies;
    EXPECT_TRUE(Echoed(r, "X-Forwarded-For: " + claim + ", 127.0.0.1"))
        << r.body;
    EXPECT_TRUE(Echoed(r, "X-Forwarded-Proto: http")) << r.body;
    EXPECT_TRUE(Echoed(r, "X-Forwarded-Host: app.test")) << r.body;
    EXPECT_EQ(r.body.find("evil.test"), std::string::npos) << r.body;
  }
  EXPECT_EQ(cookies, 2);
  EXPECT_EQ(Limited(), 4);
}

// Behind a trusted proxy (loopback, as the harness sets), the client is the
// right-most untrusted hop: hops a client writes to the left of it do not
// make it a new client, so they do not spread it over the per-client limit.
TEST_F(EdgeThreatTest, SpoofedHopsLeftOfTheRealClientDoNotEvadeTheLimit) {
  StartAll({"--anon-session-rate=0.1", "--anon-session-burst=2"});
  ASSERT_FALSE(HasFatalFailure());
  int cookies = 0;
  for (int i = 0; i < 6; ++i) {
    HttpMessage r =
        Do(FirstVisit("198.51.100." + std::to_string(i + 1) + ", 203.0.113.7"));
    EXPECT_EQ(r.status, 200);
    if (r.SessionSetCookie().has_value()) ++cookies;
  }
  EXPECT_EQ(cookies, 2);
  EXPECT_EQ(Limited(), 4);
  // A spoofed internal address on the left is not believed either.
  HttpMessage internal = Do(FirstVisit("10.0.0.1, 203.0.113.7"));
  EXPECT_FALSE(internal.SessionSetCookie().has_value());
  EXPECT_EQ(Limited(), 5);
  EXPECT_EQ(Reason("internal_ip:10.0.0.0/8"), 0);
  // Another real client has its own bucket.
  EXPECT_TRUE(Do(FirstVisit("203.0.113.8")).SessionSetCookie().has_value());
}

// The app answers a header holding CR, LF or NUL: the edge does not pass
// it on, split or otherwise (502), and goes on serving. An obs-fold is
// replaced by a space (RFC 9112 5.2), so the folded text stays inside the
// one field it belonged to and never becomes a header of its own.
TEST_F(EdgeThreatTest, AppResponseHeaderWithCrLfOrNulIsNotForwarded) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  const std::string tail =
      "Content-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
  const std::string nul_head(
      "HTTP/1.1 200 OK\r\nX-Evil: a\0Set-Cookie: pwned=1\r\n", 48);
  const struct {
    std::string label;
    std::string head;
    int status;
  } cases[] = {
      {"bare CR", "HTTP/1.1 200 OK\r\nX-Evil: a\rSet-Cookie: pwned=1\r\n", 502},
      {"bare LF", "HTTP/1.1 200 OK\r\nX-Evil: a\nSet-Cookie: pwned=1\r\n", 502},
      {"NUL", nul_head, 502},
      {"obs-fold", "HTTP/1.1 200 OK\r\nX-Evil: a\r\n Set-Cookie: pwned=1\r\n",
       200},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    RawUpstream app(c.head + tail);
    StartEdge({"--upstream=" + app.url()});
    ASSERT_FALSE(HasFatalFailure());
    HttpMessage r = Do(Get("/page", kBrowser));
    EXPECT_EQ(r.status, c.status) << r.start_line;
    for (const auto& [name, value] : r.headers) {
      EXPECT_NE(Lower(name), "set-cookie") << value;
      EXPECT_EQ(value.find_first_of(std::string("\r\n\0", 3)),
                std::string::npos)
          << name;
      if (Lower(name) == "x-evil") {
        EXPECT_EQ(c.status, 200);
        EXPECT_EQ(value, "a Set-Cookie: pwned=1");
      }
    }
    EXPECT_FALSE(edge_->Wait(absl::ZeroDuration()).has_value()) << "edge died";
    EXPECT_EQ(
        Exchange(admin_port_, Get("/healthz")).value_or(HttpMessage{}).status,
        200);
    edge_.reset();
  }
}

// Stored session fields cannot write header lines into the app's request:
// the service refuses a principal with CR, LF or NUL (so no client can
// store one), and session data reaches the app base64-encoded whatever it
// holds. (The edge also drops such a principal if one were stored:
// session_flow_test.)
TEST_F(EdgeThreatTest, StoredSessionFieldsCannotInjectRequestHeaders) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  for (const std::string evil :
       {std::string("alice\r\nX-Injected: 1"),
        std::string("bob\nX-Injected: 1"), std::string("carol\rX-Injected: 1"),
        std::string("dave\0X-Injected: 1", 18)}) {
    SCOPED_TRACE(testing::PrintToString(evil));
    sessiongrid::v1::CreateRequest create;
    create.set_principal(evil);
    auto refused = client_->Create(create);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << refused.status();
  }
  auto signer = edge::CookieSigner::Create({kSecret});
  ASSERT_TRUE(signer.ok()) << signer.status();
  sessiongrid::v1::CreateRequest create;
  create.set_principal("erin");
  create.set_data("{\"x\":\"\r\nX-Injected: 2\"}");
  auto made = client_->Create(create);
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string cookie =
      "Cookie: connect.sid=" + (*signer)->EncodedValue(made->session().id()) +
      "\r\n";
  HttpMessage r = Do(Get("/api/user/page", std::string(kBrowser) + cookie));
  EXPECT_EQ(r.status, 200);
  // The app's echo lists every header it received, one per line.
  EXPECT_EQ(r.body.find("X-Injected"), std::string::npos) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Session-Status: loaded")) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Session-Principal: erin")) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Session-Data: " + absl::Base64Escape(create.data())))
      << r.body;
  EXPECT_FALSE(edge_->Wait(absl::ZeroDuration()).has_value()) << "edge died";
}

}  // namespace
}  // namespace sg
