// The harness of the edge integration tests: a blocking raw-socket HTTP
// client, an echoing upstream written here, and a fixture that starts the
// real sessiongrid-server and sessiongrid-edge on loopback with port 0.
// Included by one test source per binary (SG_SERVER_BIN and SG_EDGE_BIN
// must be defined).
#pragma once

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

namespace sg::edge_harness {

using testutil::Subprocess;

using testutil::Subprocess;

// Polls `done` every `every` until it holds or `timeout` passes. Only for
// state in another process (readiness, counters seen over HTTP) that
// nothing in this test can signal.
template <typename Pred>
void PollUntil(Pred done, absl::Duration timeout,
               absl::Duration every = absl::Milliseconds(20)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done() && absl::Now() < until) absl::SleepFor(every);
}

// ---------------------------------------------------------------------------
// Minimal blocking HTTP/1.1 plumbing for tests.

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(c));
  return s;
}

inline int ConnectTo(int port, int* err = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (err) *err = errno;
    close(fd);
    return -1;
  }
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

inline bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

inline int PortOf(const std::string& host_port) {
  return std::stoi(host_port.substr(host_port.rfind(':') + 1));
}

struct HttpMessage {
  std::string start_line;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (Lower(k) == Lower(std::string(name))) return v;
    }
    return std::nullopt;
  }
  std::vector<std::string> Headers(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (Lower(k) == Lower(std::string(name))) out.push_back(v);
    }
    return out;
  }
  // The session cookie the response sets, if any.
  std::optional<std::string> SessionSetCookie() const {
    for (const std::string& v : Headers("set-cookie")) {
      if (v.rfind("connect.sid=", 0) == 0) return v;
    }
    return std::nullopt;
  }
};

// Reads HTTP messages from a socket, buffering leftovers (pipelining).
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}

  // Reads one message head and body. `is_request` parses a request line;
  // `no_body` for HEAD responses. nullopt on EOF/error; `*got_bytes` says
  // whether any byte of this message arrived.
  std::optional<HttpMessage> Read(bool is_request, bool no_body = false,
                                  bool* got_bytes = nullptr) {
    if (got_bytes) *got_bytes = !buf_.empty();
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
      if (got_bytes) *got_bytes = true;
    }
    HttpMessage m;
    std::istringstream head(buf_.substr(0, end));
    buf_.erase(0, end + 4);
    std::string line;
    std::getline(head, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    m.start_line = line;
    if (!is_request && line.size() >= 12)
      m.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      m.headers.emplace_back(line.substr(0, colon), value);
    }
    if (no_body || m.status == 101 || m.status == 204 || m.status == 304 ||
        (m.status >= 100 && m.status < 200)) {
      return m;
    }
    auto te = m.Header("transfer-encoding");
    if (te && Lower(*te).find("chunked") != std::string::npos) {
      for (;;) {
        size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return std::nullopt;
        }
        const size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
        buf_.erase(0, eol + 2);
        while (buf_.size() < size + 2) {
          if (!Fill()) return std::nullopt;
        }
        m.body.append(buf_, 0, size);
        buf_.erase(0, size + 2);
        if (size == 0) return m;
      }
    }
    if (auto cl = m.Header("content-length")) {
      const size_t n = std::stoul(*cl);
      while (buf_.size() < n) {
        if (!Fill()) return std::nullopt;
      }
      m.body = buf_.substr(0, n);
      buf_.erase(0, n);
      return m;
    }
    if (is_request) return m;
    while (Fill()) {
    }
    m.body = std::move(buf_);
    buf_.clear();
    return m;
  }

  // Raw bytes (after an upgrade).
  std::string ReadSome() {
    if (buf_.empty() && !Fill()) return "";
    std::string out = std::move(buf_);
    buf_.clear();
    return out;
  }
  std::string& buffer() { return buf_; }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

// One request on a fresh connection.
inline std::optional<HttpMessage> Exchange(int port, const std::string& request,
                                    bool no_body = false) {
  int fd = ConnectTo(port);
  if (fd < 0) return std::nullopt;
  std::optional<HttpMessage> r;
  if (SendAll(fd, request)) r = Reader(fd).Read(false, no_body);
  close(fd);
  return r;
}

// A GET with the given extra header lines ("Name: value\r\n" each).
inline std::string Get(std::string_view target, std::string_view extra = "",
                std::string_view method = "GET") {
  std::string r(method);
  r.append(" ").append(target).append(" HTTP/1.1\r\nHost: app.test\r\n");
  r.append(extra);
  r.append("\r\n");
  return r;
}

// A browser coming through a trusted proxy from a public address, so the
// internal-IP rule (loopback) does not bypass it.
constexpr std::string_view kBrowser =
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml\r\n"
    "X-Forwarded-For: 203.0.113.7\r\n";

// ---------------------------------------------------------------------------
// The upstream application: thread-per-connection, keep-alive, speaks the
// header protocol on request (query parameters):
//   set=<base64>  -> X-Session-Set      principal=<p> -> X-Session-Principal
//   destroy=1     -> X-Session-Destroy  regenerate=1  -> X-Session-Regenerate
//   evilcookie=1  -> Set-Cookie connect.sid=... plus an unrelated cookie
//   delay_ms=N    -> answers after N ms
//   closeafter=1  -> closes the connection after answering (keep-alive
//                    announced)
//   big=N         -> an N-byte body
// /ws with Upgrade answers 101 and echoes raw bytes. Otherwise the body
// lists the request line and every header it received, one per line.
class Upstream {
 public:
  Upstream() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 512);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~Upstream() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    acceptor_.join();
    {
      absl::MutexLock lock(&mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
  }

  int port() const { return port_; }
  int64_t requests() const { return requests_.load(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  void AcceptLoop() {
    for (;;) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      absl::MutexLock lock(&mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static std::map<std::string, std::string> Query(const std::string& target) {
    std::map<std::string, std::string> q;
    const size_t qm = target.find('?');
    if (qm == std::string::npos) return q;
    std::string rest = target.substr(qm + 1);
    std::istringstream in(rest);
    std::string kv;
    while (std::getline(in, kv, '&')) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) continue;
      q[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return q;
  }

  void Serve(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Reader reader(fd);
    for (;;) {
      auto req = reader.Read(/*is_request=*/true);
      if (!req) break;
      requests_.fetch_add(1);
      std::istringstream rl(req->start_line);
      std::string method, target;
      rl >> method >> target;
      auto q = Query(target);
      if (q.count("delay_ms")) {
        absl::SleepFor(absl::Milliseconds(std::stoi(q["delay_ms"])));
      }
      if (target.rfind("/ws", 0) == 0 && req->Header("upgrade")) {
        SendAll(fd,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n");
        std::string pending = std::move(reader.buffer());
        if (!pending.empty() && !SendAll(fd, pending)) break;
        for (;;) {
          std::string bytes = reader.ReadSome();
          if (bytes.empty() || !SendAll(fd, bytes)) break;
        }
        break;
      }
      if (q.count("big")) {  // a large body, written in pieces
        const size_t n = std::stoul(q["big"]);
        if (!SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " +
                             std::to_string(n) + "\r\n\r\n")) {
          break;
        }
        const std::string piece(64 * 1024, 'b');
        size_t left = n;
        while (left > 0) {
          const size_t k = std::min(left, piece.size());
          if (!SendAll(fd, std::string_view(piece).substr(0, k))) break;
          left -= k;
        }
        continue;
      }
      std::string body = req->start_line + "\n";
      for (const auto& [k, v] : req->headers) body += k + ": " + v + "\n";
      body += "body-bytes: " + std::to_string(req->body.size()) + "\n";
      std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
      head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
      head += "Connection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\n";
      head += "Keep-Alive: timeout=30\r\n";
      if (q.count("set")) head += "X-Session-Set: " + q["set"] + "\r\n";
      if (q.count("principal")) {
        head += "X-Session-Principal: " + q["principal"] + "\r\n";
      }
      if (q.count("destroy")) head += "X-Session-Destroy: 1\r\n";
      if (q.count("regenerate")) head += "X-Session-Regenerate: 1\r\n";
      if (q.count("evilcookie")) {
        head += "Set-Cookie: connect.sid=app-made; Path=/\r\n";
        head += "Set-Cookie: theme=dark; Path=/\r\n";
      }
      head += "\r\n";
      if (!SendAll(fd, head + (method == "HEAD" ? "" : body))) break;
      // Closes after a response that claimed keep-alive (as an upstream
      // with a short keep-alive timeout does).
      if (q.count("closeafter")) break;
    }
    shutdown(fd, SHUT_RDWR);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> requests_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------
// Server + upstream + edge, per test.

constexpr char kSecret[] = "integration-test-secret-0123456789";

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-edge");
    std::ofstream(dir_ + "/secrets") << kSecret << "\n";
  }
  void TearDown() override {
    edge_.reset();
    server_.reset();
    upstream_.reset();
    testutil::RemoveTree(dir_);
  }

  void StartServer() {
    auto server = Subprocess::Start({SG_SERVER_BIN, "--listen=127.0.0.1:0",
                                     "--data-dir=" + dir_ + "/data"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto line = server_->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << server_->Output();
    server_address_ = testutil::FieldFromLogLine(*line, "address");
    client::ClientOptions options;
    options.target = server_address_;
    auto c = client::Client::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  void StartEdge(std::vector<std::string> extra = {}) {
    if (!upstream_) upstream_ = std::make_unique<Upstream>();
    std::vector<std::string> argv = {
        SG_EDGE_BIN,
        "--listen=127.0.0.1:0",
        "--admin-listen=127.0.0.1:0",
        "--upstream=" + upstream_->url(),
        "--session-service=" + server_address_,
        "--cookie-secret-file=" + dir_ + "/secrets",
        "--trusted-proxies=127.0.0.0/8",
        "--threads=2",
        "--stats-interval=100ms",
        "--drain-delay=0s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto edge = Subprocess::Start(argv);
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = *std::move(edge);
    auto line = edge_->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << edge_->Output();
    port_ = PortOf(testutil::FieldFromLogLine(*line, "address"));
    admin_port_ = PortOf(testutil::FieldFromLogLine(*line, "admin"));
  }

  void StartAll(std::vector<std::string> extra = {}) {
    StartServer();
    if (HasFatalFailure()) return;
    StartEdge(std::move(extra));
  }

  HttpMessage Do(const std::string& request, bool no_body = false) {
    auto r = Exchange(port_, request, no_body);
    EXPECT_TRUE(r.has_value()) << request;
    return r.value_or(HttpMessage{});
  }

  sessiongrid::v1::NodeStats Stats() {
    auto s = client_->NodeStats();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->stats() : sessiongrid::v1::NodeStats{};
  }

  std::string Metrics() {
    auto r = Exchange(admin_port_, Get("/metrics"));
    EXPECT_TRUE(r.has_value());
    return r ? r->body : "";
  }

  // Sum of every sample whose line starts with `prefix`.
  static double MetricSum(const std::string& text, std::string_view prefix) {
    double sum = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) == 0) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  }

  // The session cookie value ("s%3A...") of a Set-Cookie header.
  static std::string CookieValue(const std::string& set_cookie) {
    const size_t eq = set_cookie.find('=');
    return set_cookie.substr(eq + 1, set_cookie.find(';') - eq - 1);
  }

  static std::string B64(std::string_view s) {
    return absl::Base64Escape(absl::string_view(s.data(), s.size()));
  }

  int ReadyzStatus() {
    auto r = Exchange(admin_port_, Get("/readyz"));
    return r ? r->status : 0;
  }

  std::string dir_;
  std::unique_ptr<Subprocess> server_;
  std::string server_address_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<Subprocess> edge_;
  int port_ = 0;
  int admin_port_ = 0;
};

// Resident set size of a process, from /proc.
inline int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// A line of the upstream's echo body, e.g. "X-Session-Status: loaded".
inline bool Echoed(const HttpMessage& m, std::string_view line) {
  return m.body.find("\n" + std::string(line) + "\n") != std::string::npos;
}
inline bool EchoedName(const HttpMessage& m, std::string_view name) {
  return Lower(m.body).find("\n" + Lower(std::string(name)) + ":") !=
         std::string::npos;
}

}  // namespace sg::edge_harness
