// Strict HTTP at the edge, against the real binaries: every malformed or
// ambiguous request (missing/duplicate Host, obs-fold, transfer codings,
// request smuggling, bare LF, control bytes, limits, bad methods and
// targets) gets its status and a closed connection, is never forwarded,
// and the edge goes on serving a client that was already connected and a
// new one. Then slow heads (slowloris) and --max-connections, with
// thousands of idle connections held open.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/edge_harness.h"

namespace sg {
namespace {

using edge_harness::ConnectTo;
using edge_harness::Echoed;
using edge_harness::EdgeTest;
using edge_harness::Get;
using edge_harness::HttpMessage;
using edge_harness::Lower;
using edge_harness::PollUntil;
using edge_harness::Reader;
using edge_harness::SendAll;

struct BadRequest {
  std::string label;
  std::string raw;
  int status;
};

// A request head from its first line and field lines, then `body`.
std::string Raw(std::string_view first_line, std::string_view fields,
                std::string_view body = "") {
  std::string r(first_line);
  r.append("\r\n").append(fields).append("\r\n").append(body);
  return r;
}

// POST / with Transfer-Encoding: chunked and the given (raw) body.
std::string Chunked(std::string_view body) {
  return Raw("POST /upload HTTP/1.1",
             "Host: app.test\r\nTransfer-Encoding: chunked\r\n", body);
}

// `text` with '@' replaced by `byte` (to write NUL and other control bytes).
std::string WithByte(std::string text, char byte) {
  for (char& c : text) {
    if (c == '@') c = byte;
  }
  return text;
}

class EdgeStrictHttpTest : public EdgeTest {
 protected:
  // The edge alone, its session service an address that refuses (a port
  // bound here and never listened on): nothing here needs a session, and
  // the edge fails open.
  void Start(std::vector<std::string> extra = {}) {
    dead_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(dead_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
              0);
    socklen_t len = sizeof(addr);
    getsockname(dead_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    server_address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    StartEdge(std::move(extra));
  }

  void TearDown() override {
    EdgeTest::TearDown();
    if (dead_fd_ >= 0) close(dead_fd_);
  }

  int dead_fd_ = -1;

  // Sends `bad.raw` on its own connection while another client holds a
  // keep-alive connection. Expects the status with Connection: close, the
  // connection then closed by the edge, nothing forwarded to the upstream,
  // and both the other client and a new one served afterwards.
  void ExpectRejected(const BadRequest& bad) {
    SCOPED_TRACE(bad.label);
    const int other = ConnectTo(port_);
    ASSERT_GE(other, 0);
    Reader other_reader(other);
    ASSERT_TRUE(SendAll(other, Get("/before")));
    auto before = other_reader.Read(false);
    ASSERT_TRUE(before.has_value());
    EXPECT_EQ(before->status, 200);
    const int64_t forwarded = upstream_->requests();

    const int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0);
    // May fail part-way: the edge can answer and close before the end.
    (void)SendAll(fd, bad.raw);
    Reader reader(fd);
    auto r = reader.Read(false);
    ASSERT_TRUE(r.has_value()) << "no response";
    EXPECT_EQ(r->status, bad.status) << r->start_line << "\n" << r->body;
    EXPECT_EQ(Lower(r->Header("connection").value_or("")), "close");
    // The edge closes right after its answer: EOF (or a reset) at once,
    // not a receive timeout.
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char byte;
    const ssize_t n = recv(fd, &byte, 1, 0);
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET))
        << "connection left open (recv " << n << ", errno " << errno << ")";
    close(fd);
    EXPECT_EQ(upstream_->requests(), forwarded) << "forwarded upstream";

    ASSERT_TRUE(SendAll(other, Get("/after")));
    auto after = other_reader.Read(false);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->status, 200);
    close(other);
    EXPECT_EQ(Do(Get("/fresh")).status, 200);
  }

  int OpenProxyConnections() {
    return static_cast<int>(
        MetricSum(Metrics(), "sg_edge_open_connections{listener=\"proxy\"}"));
  }

  void ExpectAllRejected(const std::vector<BadRequest>& cases) {
    for (const BadRequest& bad : cases) {
      ExpectRejected(bad);
      if (HasFatalFailure()) return;
    }
    // Still alive and well after all of them.
    EXPECT_FALSE(edge_->Wait(absl::ZeroDuration()).has_value()) << "edge died";
    EXPECT_EQ(Do(Get("/last")).status, 200);
  }
};

TEST_F(EdgeStrictHttpTest, HostMustAppearExactlyOnce) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  ExpectAllRejected({
      {"no Host", Raw("GET / HTTP/1.1", ""), 400},
      {"two Hosts", Raw("GET / HTTP/1.1", "Host: a.test\r\nHost: b.test\r\n"),
       400},
      {"the same Host twice",
       Raw("GET / HTTP/1.1", "Host: a.test\r\nhost: a.test\r\n"), 400},
      {"Host with a space", Raw("GET / HTTP/1.1", "Host: a test\r\n"), 400},
      {"Host with a path", Raw("GET / HTTP/1.1", "Host: a.test/x\r\n"), 400},
  });
}

TEST_F(EdgeStrictHttpTest, ObsoleteLineFoldingIsRejectedNotForwarded) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  ExpectAllRejected({
      {"fold with SP",
       Raw("GET / HTTP/1.1", "Host: app.test\r\nX-A: a\r\n b\r\n"), 400},
      {"fold with HTAB",
       Raw("GET / HTTP/1.1", "Host: app.test\r\nX-A: a\r\n\tb\r\n"), 400},
      {"space before the first field",
       Raw("GET / HTTP/1.1", " Host: app.test\r\n"), 400},
  });
}

TEST_F(EdgeStrictHttpTest, TransferCodingsOtherThanALoneChunkedAreRefused) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  auto te = [](std::string_view value, std::string_view body) {
    return Raw(
        "POST / HTTP/1.1",
        "Host: app.test\r\nTransfer-Encoding: " + std::string(value) + "\r\n",
        body);
  };
  ExpectAllRejected({
      {"gzip", te("gzip", "abc"), 501},
      {"identity", te("identity", "abc"), 501},
      {"gzip, chunked", te("gzip, chunked", "3\r\nabc\r\n0\r\n\r\n"), 501},
      {"chunked, gzip", te("chunked, gzip", "3\r\nabc\r\n0\r\n\r\n"), 501},
      {"chunked, chunked", te("chunked, chunked", "3\r\nabc\r\n0\r\n\r\n"),
       400},
      {"chunked on two lines",
       Raw("POST / HTTP/1.1",
           "Host: app.test\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n",
           "0\r\n\r\n"),
       400},
      {"empty", te("", ""), 400},
      {"chunked with a bare parameter", te("chunked;x", "0\r\n\r\n"), 400},
      {"quoted coding", te("\"chunked\"", "0\r\n\r\n"), 400},
      {"HTTP/1.0 chunked",
       Raw("POST / HTTP/1.0",
           "Host: app.test\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
       400},
  });
}

TEST_F(EdgeStrictHttpTest, RequestSmugglingFramingIsRejected) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  auto post = [](std::string_view fields, std::string_view body) {
    return Raw("POST / HTTP/1.1", "Host: app.test\r\n" + std::string(fields),
               body);
  };
  ExpectAllRejected({
      // CL.TE and TE.CL: the classic desync pair.
      {"CL then TE",
       post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\nG"),
       400},
      {"TE then CL",
       post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "8\r\nSMUGGLED\r\n0\r\n\r\n"),
       400},
      {"CL twice, equal",
       post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"), 400},
      {"CL twice, different",
       post("Content-Length: 3\r\nContent-Length: 5\r\n", "abcde"), 400},
      {"CL list", post("Content-Length: 3, 3\r\n", "abc"), 400},
      {"CL with a sign", post("Content-Length: +3\r\n", "abc"), 400},
      {"CL in hex", post("Content-Length: 0x3\r\n", "abc"), 400},
      {"CL with a space inside", post("Content-Length: 1 2\r\n", "abc"), 400},
      {"CL overflowing", post("Content-Length: 99999999999999999999\r\n", ""),
       400},
      // Chunk framing (checked by Beast's chunk parser, tested here).
      {"chunk size not hex", Chunked("zz\r\nabc\r\n0\r\n\r\n"), 400},
      {"chunk size negative", Chunked("-3\r\nabc\r\n0\r\n\r\n"), 400},
      {"chunk size 0x", Chunked("0x3\r\nabc\r\n0\r\n\r\n"), 400},
      {"chunk size overflowing",
       Chunked("1ffffffffffffffff\r\nabc\r\n0\r\n\r\n"), 400},
      {"chunk size empty", Chunked("\r\nabc\r\n0\r\n\r\n"), 400},
      {"chunk data longer than its size", Chunked("3\r\nabcdef\r\n0\r\n\r\n"),
       400},
      {"chunk extension with a control byte",
       Chunked(WithByte("3;a@b\r\nabc\r\n0\r\n\r\n", '\x01')), 400},
      {"chunk extension without a name", Chunked("3;\r\nabc\r\n0\r\n\r\n"),
       400},
      {"chunk size with trailing space", Chunked("3 \r\nabc\r\n0\r\n\r\n"),
       400},
      {"chunk extension that never ends",
       Chunked("3;" + std::string(200 * 1024, 'a')), 400},
      {"chunk line with a bare LF", Chunked("3\nabc\r\n0\r\n\r\n"), 400},
      {"chunk data ended by a bare LF", Chunked("3\r\nabc\n0\r\n\r\n"), 400},
  });
}

TEST_F(EdgeStrictHttpTest, BareLineEndingsAndControlBytesAreRejected) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  std::vector<BadRequest> cases = {
      {"bare LF everywhere", "GET / HTTP/1.1\nHost: app.test\n\n", 400},
      {"bare LF after the request line",
       "GET / HTTP/1.1\nHost: app.test\r\n\r\n", 400},
      {"bare LF in a field", "GET / HTTP/1.1\r\nHost: app.test\nX: 1\r\n\r\n",
       400},
      {"bare CR in a field", "GET / HTTP/1.1\r\nHost: app.test\rX: 1\r\n\r\n",
       400},
      {"space before the colon", Raw("GET / HTTP/1.1", "Host : app.test\r\n"),
       400},
      {"field line without a colon",
       Raw("GET / HTTP/1.1", "Host: app.test\r\nNoColon\r\n"), 400},
  };
  for (char c : {'\0', '\x01', '\x07', '\x0b', '\x0c', '\x1b', '\x7f'}) {
    const std::string hex = std::to_string(static_cast<int>(c));
    cases.push_back(
        {"byte " + hex + " in a value",
         WithByte(Raw("GET / HTTP/1.1", "Host: app.test\r\nX-A: a@b\r\n"), c),
         400});
    cases.push_back(
        {"byte " + hex + " in a name",
         WithByte(Raw("GET / HTTP/1.1", "Host: app.test\r\nX-@A: b\r\n"), c),
         400});
  }
  cases.push_back({"NUL in the Host value",
                   WithByte(Raw("GET / HTTP/1.1", "Host: app@.test\r\n"), '\0'),
                   400});
  ExpectAllRejected(cases);
}

TEST_F(EdgeStrictHttpTest, InvalidMethodsTargetsAndVersionsAreRejected) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  const std::string host = "Host: app.test\r\n";
  ExpectAllRejected({
      {"method with '('", Raw("G(T / HTTP/1.1", host), 400},
      {"method with a control byte",
       WithByte(Raw("GE@T / HTTP/1.1", host), '\x01'), 400},
      {"method with non-ASCII", Raw("G\xc3\x89T / HTTP/1.1", host), 400},
      {"method with a NUL", WithByte(Raw("GET@ / HTTP/1.1", host), '\0'), 400},
      {"empty method", Raw(" / HTTP/1.1", host), 400},
      {"relative target", Raw("GET index.html HTTP/1.1", host), 400},
      {"asterisk with GET", Raw("GET * HTTP/1.1", host), 400},
      {"space in the target", Raw("GET /a b HTTP/1.1", host), 400},
      {"two spaces", Raw("GET  / HTTP/1.1", host), 400},
      {"control byte in the target",
       WithByte(Raw("GET /a@b HTTP/1.1", host), '\x01'), 400},
      {"tab in the target", Raw("GET /a\tb HTTP/1.1", host), 400},
      {"non-ASCII target", Raw("GET /caf\xc3\xa9 HTTP/1.1", host), 400},
      {"fragment", Raw("GET /a#top HTTP/1.1", host), 400},
      {"ftp absolute-form", Raw("GET ftp://app.test/ HTTP/1.1", host), 400},
      {"absolute-form with userinfo",
       Raw("GET http://u:p@app.test/ HTTP/1.1", host), 400},
      {"no version", Raw("GET /", host), 400},
      {"lower-case version", Raw("GET / http/1.1", host), 400},
      {"HTTP/2.0 in text", Raw("GET / HTTP/2.0", host), 505},
      {"CONNECT",
       Raw("CONNECT app.test:443 HTTP/1.1", "Host: app.test:443\r\n"), 501},
  });
}

TEST_F(EdgeStrictHttpTest, OversizedRequestLineIs414AndHeadersAre431) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  std::string fields = "Host: app.test\r\n";
  for (int i = 0; i < 40; ++i) {
    fields += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'f') +
              "\r\n";
  }
  ExpectAllRejected({
      {"10 KiB request line",
       Raw("GET /" + std::string(10 * 1024, 'a') + " HTTP/1.1",
           "Host: app.test\r\n"),
       414},
      {"request line that never ends", "GET /" + std::string(10 * 1024, 'a'),
       414},
      {"40 KiB of fields", Raw("GET / HTTP/1.1", fields), 431},
      {"64 KiB cookie",
       Raw("GET / HTTP/1.1", "Host: app.test\r\nCookie: a=" +
                                 std::string(64 * 1024, 'c') + "\r\n"),
       431},
      {"endless empty lines",
       [] {
         std::string crlfs;
         for (int i = 0; i < 20000; ++i) crlfs += "\r\n";
         return crlfs;
       }(),
       431},
  });
  // Just under the limits passes.
  HttpMessage r =
      Do(Raw("GET /" + std::string(8 * 1024 - 20, 'a') + " HTTP/1.1",
             "Host: app.test\r\n"));
  EXPECT_EQ(r.status, 200);
  r = Do(Raw("GET / HTTP/1.1", "Host: app.test\r\nCookie: a=" +
                                   std::string(30 * 1024, 'c') + "\r\n"));
  EXPECT_EQ(r.status, 200);
}

TEST_F(EdgeStrictHttpTest, ValidButUnusualRequestsAreForwardedUnchanged) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  // obs-text (RFC 9110 §5.5): bytes >= 0x80 in values, UTF-8 or not, are
  // passed on byte for byte.
  const std::string bytes = "caf\xc3\xa9 \xff\xfe\x80";
  HttpMessage r = Do(Raw("GET /bytes HTTP/1.1",
                         "Host: app.test\r\nX-Bytes: " + bytes +
                             "\r\nUser-Agent: Mozilla/5.0 \xff\xfe\r\n"
                             "Cookie: connect.sid=\xc3\x28; x=\xa0\xa1\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Echoed(r, "X-Bytes: " + bytes)) << r.body;
  EXPECT_TRUE(Echoed(r, "User-Agent: Mozilla/5.0 \xff\xfe")) << r.body;

  r = Do(Raw("OPTIONS * HTTP/1.1", "Host: app.test\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind("OPTIONS * HTTP/1.1\n", 0), 0u) << r.body;

  r = Do(Raw("GET http://app.test/abs?q=1 HTTP/1.1", "Host: app.test\r\n"));
  EXPECT_EQ(r.status, 200);

  r = Do("\r\nGET /after-empty-line HTTP/1.1\r\nHost: app.test\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind("GET /after-empty-line HTTP/1.1\n", 0), 0u) << r.body;

  r = Do("GET /old HTTP/1.0\r\n\r\n");  // Host is optional in HTTP/1.0
  EXPECT_EQ(r.status, 200);

  // Chunked with (valid) extensions: the body arrives, re-chunked.
  r = Do(Raw("POST /up HTTP/1.1",
             "Host: app.test\r\nTransfer-Encoding: Chunked\r\n",
             "3;name=value;q=\"x y\"\r\nabc\r\n2 ; n\r\nde\r\n0\r\n\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Echoed(r, "body-bytes: 5")) << r.body;

  r = Do(Raw("POST /cl HTTP/1.1", "Host: app.test\r\nContent-Length: 004\r\n",
             "abcd"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Echoed(r, "body-bytes: 4")) << r.body;
}

// A bad request pipelined behind a good one (each head is checked, not
// only a connection's first): the good one is answered and forwarded, the
// bad one refused, the connection closed, and nothing after it (a third
// request) reaches the upstream.
TEST_F(EdgeStrictHttpTest, BadPipelinedRequestIsRefusedAfterTheGoodOne) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  const int64_t forwarded = upstream_->requests();
  const int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, Get("/first") +
                              Raw("POST /second HTTP/1.1",
                                  "Host: app.test\r\n"
                                  "Transfer-Encoding: gzip, chunked\r\n",
                                  "0\r\n\r\n") +
                              Get("/smuggled")));
  Reader reader(fd);
  auto first = reader.Read(false);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body.rfind("GET /first HTTP/1.1\n", 0), 0u) << first->body;
  auto second = reader.Read(false);
  ASSERT_TRUE(second.has_value());
  // Beast alone takes this as chunked and forwards it.
  EXPECT_EQ(second->status, 501);
  EXPECT_FALSE(reader.Read(false).has_value()) << "answered after the 501";
  close(fd);
  EXPECT_EQ(upstream_->requests(), forwarded + 1);
  EXPECT_EQ(Do(Get("/fresh")).status, 200);
}

// Slowloris: heads trickled in are cut at --header-timeout (408) while
// other clients are served at full speed meanwhile.
TEST_F(EdgeStrictHttpTest, SlowHeadsAreCutAtHeaderTimeoutWhileOthersAreServed) {
  Start({"--header-timeout=1s"});
  ASSERT_FALSE(HasFatalFailure());
  constexpr int kSlow = 50;
  // Each slow client would need 20 s for its head: one byte per 100 ms.
  constexpr int kBytes = 200;
  constexpr auto kPace = absl::Milliseconds(100);
  struct Slow {
    int fd = -1;
    int status = -1;  // 0: closed without a response
    absl::Duration cut;
  };
  std::vector<Slow> slow(kSlow);
  for (Slow& s : slow) {
    s.fd = ConnectTo(port_);
    ASSERT_GE(s.fd, 0);
    ASSERT_TRUE(SendAll(s.fd, "GET /slow HTTP/1.1\r\nHost: app.test\r\nX-S: "));
  }
  const absl::Time start = absl::Now();
  std::thread trickler([&] {
    int open = kSlow;
    for (int i = 0; i < kBytes && open > 0; ++i) {
      for (Slow& s : slow) {
        if (s.status >= 0) continue;
        char buf[256];
        const ssize_t n = recv(s.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 || n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          const std::string got(buf, n > 0 ? static_cast<size_t>(n) : 0);
          s.status =
              got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
          s.cut = absl::Now() - start;
          --open;
          continue;
        }
        (void)send(s.fd, "x", 1, MSG_NOSIGNAL);
      }
      absl::SleepFor(kPace);  // the attack's pace, not a synchronisation
    }
  });
  // Meanwhile, other clients get quick answers.
  int served = 0;
  absl::Duration slowest;
  for (int i = 0; i < 30; ++i) {
    const absl::Time t0 = absl::Now();
    if (Do(Get("/fast")).status == 200) ++served;
    slowest = std::max(slowest, absl::Now() - t0);
  }
  trickler.join();
  EXPECT_EQ(served, 30);
  EXPECT_LT(slowest, absl::Seconds(1));
  for (const Slow& s : slow) {
    EXPECT_EQ(s.status, 408);
    EXPECT_GE(s.cut, absl::Milliseconds(900));
    EXPECT_LT(s.cut, absl::Seconds(5));  // not after the 20 s trickle
    close(s.fd);
  }
  const std::string metrics = Metrics();
  EXPECT_GE(MetricSum(metrics, "sg_edge_local_replies_total{code=\"408\"}"),
            kSlow);
}

// Raises this process's descriptor limit to the hard limit (the edge, a
// child, inherits it) and returns it.
rlim_t RaiseNoFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

TEST_F(EdgeStrictHttpTest, ConnectionsBeyondMaxConnectionsAreAnswered503) {
  Start({"--max-connections=100"});
  ASSERT_FALSE(HasFatalFailure());
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    const int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  PollUntil([&] { return OpenProxyConnections() == 100; }, absl::Seconds(10));
  ASSERT_EQ(OpenProxyConnections(), 100);
  // The 101st: answered 503 at once (not left waiting), then closed.
  for (int i = 0; i < 3; ++i) {
    const absl::Time t0 = absl::Now();
    auto r = edge_harness::Exchange(port_, Get("/over"));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(Lower(r->Header("connection").value_or("")), "close");
    EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  }
  EXPECT_EQ(MetricSum(Metrics(), "sg_edge_connections_refused_total"), 3);
  // The held connections still work.
  ASSERT_TRUE(SendAll(idle.front(), Get("/held")));
  auto held = Reader(idle.front()).Read(false);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->status, 200);
  // One leaves: a new client gets in.
  close(idle.back());
  idle.pop_back();
  PollUntil([&] { return OpenProxyConnections() == 99; }, absl::Seconds(10));
  EXPECT_EQ(Do(Get("/room-again")).status, 200);
  for (int fd : idle) close(fd);
}

TEST_F(EdgeStrictHttpTest, TenThousandIdleConnectionsDoNotStopFreshRequests) {
  const rlim_t nofile = RaiseNoFileLimit();
  // The test holds the connections and the edge their other ends: each
  // process needs one descriptor per connection plus some to spare.
  const int want = 10000;
  const int n = static_cast<int>(
      std::min<rlim_t>(want, nofile > 1024 ? nofile - 1024 : 0));
  if (n < want) {
    std::fprintf(stderr,
                 "RLIMIT_NOFILE is %llu: holding %d idle connections, not "
                 "%d\n",
                 static_cast<unsigned long long>(nofile), n, want);
  }
  ASSERT_GE(n, 1000) << "RLIMIT_NOFILE too low: " << nofile;
  Start({"--idle-timeout=300s"});  // default --max-connections (20000)
  ASSERT_FALSE(HasFatalFailure());
  std::vector<int> idle;
  idle.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  PollUntil([&] { return OpenProxyConnections() >= n; }, absl::Seconds(30),
            absl::Milliseconds(100));
  EXPECT_GE(OpenProxyConnections(), n);
  // Fresh requests are answered promptly while all of them are held.
  absl::Duration slowest;
  for (int i = 0; i < 50; ++i) {
    const absl::Time t0 = absl::Now();
    EXPECT_EQ(Do(Get("/fresh")).status, 200);
    slowest = std::max(slowest, absl::Now() - t0);
  }
  EXPECT_LT(slowest, absl::Seconds(1));
  // And the first and the last held connection still work.
  for (int fd : {idle.front(), idle.back()}) {
    ASSERT_TRUE(SendAll(fd, Get("/held")));
    auto r = Reader(fd).Read(false);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(MetricSum(Metrics(), "sg_edge_connections_refused_total"), 0);
  for (int fd : idle) close(fd);
}

}  // namespace
}  // namespace sg
