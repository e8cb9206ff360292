// The edge's network code: Boost.Beast/Asio HTTP/1.1 reverse proxy, the
// upstream connection pool, WebSocket tunnels, the admin listener and
// drain. Everything Beast is confined to this file (one expensive TU);
// the rules it applies live in Beast-free files (proxy_headers,
// session_flow, metrics, status_json).
//
// Threading: one io_context per I/O thread. A client connection, its
// upstream connection and every handler of both run on the thread whose
// io_context accepted the socket, so per-connection state needs no locks.
// Session service callbacks arrive on gRPC threads and are posted back.
// The upstream pool is per thread. Nothing on the request path throws:
// every Beast/Asio call uses its error_code overload.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/process_memory.h"
#include "edge/classifier/classifier.h"
#include "edge/edge_server.h"
#include "edge/grpc_backend.h"
#include "edge/http/request_validation.h"
#include "edge/http/text_util.h"
#include "edge/metrics.h"
#include "edge/proxy_headers.h"
#include "edge/service_monitor.h"
#include "edge/session_flow.h"
#include "edge/session_protocol.h"
#include "edge/status_json.h"
#include "sessiongrid/client.h"

namespace sg::edge {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
// Concrete executor types: the type-erased any_io_executor costs a
// copy/destroy per operation on the hot path.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer =
    net::basic_waitable_timer<SteadyClock, net::wait_traits<SteadyClock>,
                              Executor>;

constexpr size_t kRelayBufferBytes = 16 * 1024;
// A read buffer larger than this is released when its connection idles.
constexpr size_t kIdleBufferBytes = 8 * 1024;
constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;
// A client read buffer holds at most the head limit plus this much: room
// for one body read (Beast reads up to 64 KiB) and a chunk-size line. A
// longer chunk line (endless extensions) fails with buffer_overflow -> 400
// instead of growing the buffer until the timeout.
constexpr size_t kReadBufferSlack = 80 * 1024;
constexpr size_t kHeadReadBytes = 4096;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::string_view kVia = "1.1 sessiongrid-edge";
constexpr std::string_view kXff = "X-Forwarded-For";

std::string_view SV(beast::string_view s) { return {s.data(), s.size()}; }
beast::string_view BV(std::string_view s) { return {s.data(), s.size()}; }

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  error_code ec;
  const net::ip::address a = ep.address();
  std::string host = a.to_string(ec);
  if (a.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// The peer as text for X-Forwarded-For (IPv4-mapped shown as IPv4).
std::string PeerText(const net::ip::address& a) {
  error_code ec;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6())
        .to_string(ec);
  }
  return a.to_string(ec);
}

classifier::IpAddress ToIp(const net::ip::address& a) {
  if (a.is_v4()) return classifier::IpAddress::FromV4(a.to_v4().to_uint());
  classifier::IpAddress ip;
  const auto bytes = a.to_v6().to_bytes();
  for (size_t i = 0; i < 16; ++i) ip.bytes[i] = bytes[i];
  return ip;
}

int64_t MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

bool IsWouldBlock(const error_code& ec) {
  return ec == net::error::would_block || ec == net::error::try_again;
}

// A parse error of Beast's HTTP parser (the client sent bad HTTP).
bool IsHttpError(const error_code& ec) {
  return ec.category() ==
         http::make_error_code(http::error::bad_method).category();
}

bool IsIdempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head ||
         v == http::verb::options || v == http::verb::trace;
}

// ---------------------------------------------------------------------------
// Process-wide state shared by every thread.

struct Shared {
  EdgeOptions options;
  const classifier::Classifier* classifier = nullptr;
  classifier::CidrSet trusted_proxies;
  std::unique_ptr<EdgeMetrics> metrics;
  std::unique_ptr<client::Client> client;
  std::unique_ptr<client::SessionBatcher> batcher;
  std::unique_ptr<GrpcSessionBackend> backend;
  std::unique_ptr<CookieSigner> signer;
  std::unique_ptr<SessionFlow> flow;
  std::unique_ptr<ServiceMonitor> monitor;
  tcp::endpoint upstream;
  std::string upstream_authority;  // Host for requests that had none
  absl::Time start_time;
  int64_t memory_limit = 0;
  std::string hostname;
  bool kubernetes = false;
  std::atomic<bool> draining{false};  // /readyz fails
  std::atomic<bool> closing{false};   // listener closed: finish and close
  std::atomic<int64_t> pool_idle{0};

  bool ServiceKnownDown() const {
    return flow->breaker().state() == BreakerState::kOpen ||
           !monitor->reachable();
  }

  // Ready: not draining, and in fail-closed mode the service answers.
  std::pair<bool, std::string_view> Ready() const {
    if (draining.load(std::memory_order_acquire)) return {false, "draining"};
    if (options.fail_mode == FailMode::kClosed && ServiceKnownDown()) {
      return {false, "session service unreachable (fail-closed)"};
    }
    return {true, "ready"};
  }

  MetricsGauges Gauges() const {
    MetricsGauges g;
    g.breaker_state = static_cast<int>(flow->breaker().state());
    g.breaker_opened = flow->breaker().opened_count();
    g.draining = draining.load(std::memory_order_relaxed);
    g.shadow = options.shadow;
    g.rss_bytes = ProcessRssBytes();
    g.uptime_seconds = absl::ToDoubleSeconds(absl::Now() - start_time);
    g.upstream_idle_connections = pool_idle.load(std::memory_order_relaxed);
    g.active_sessions = monitor->active_sessions();
    return g;
  }

  StatusSnapshot Snapshot() const {
    StatusSnapshot s;
    auto [total, skipped] = metrics->DecisionTotals();
    s.total_requests = total;
    s.skipped_requests = skipped;
    for (size_t i = 1; i < metrics->num_reasons(); ++i) {
      const uint64_t n = metrics->decisions(static_cast<uint16_t>(i));
      if (n > 0) {
        s.skip_reasons.emplace_back(
            std::string(metrics->reason_name(static_cast<uint16_t>(i))), n);
      }
    }
    s.active_sessions = monitor->active_sessions();
    s.max_sessions = options.max_sessions;
    s.rss_bytes = ProcessRssBytes();
    s.memory_limit_bytes = memory_limit;
    s.uptime_seconds = absl::ToDoubleSeconds(absl::Now() - start_time);
    s.start_time = start_time;
    s.production = options.production;
    s.kubernetes = kubernetes;
    s.hostname = hostname;
    return s;
  }
};

// ---------------------------------------------------------------------------
// Upstream connections and the per-thread pool.

struct UpstreamConn {
  explicit UpstreamConn(Executor ex) : stream(std::move(ex)) {}
  Stream stream;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
};

// Idle keep-alive connections to the upstream, most recently used first.
// Only its worker thread touches it.
class UpstreamPool {
 public:
  explicit UpstreamPool(Shared* shared) : shared_(shared) {}
  ~UpstreamPool() {
    shared_->pool_idle.fetch_sub(static_cast<int64_t>(idle_.size()));
  }

  // An idle connection that still looks open, or null. A connection used
  // within the last kTrustRecent is taken without the peek (a syscall) when
  // the request may be retried should the upstream have just closed it.
  std::unique_ptr<UpstreamConn> Take(bool retryable) {
    static constexpr auto kTrustRecent = std::chrono::seconds(1);
    const auto now = SteadyClock::now();
    const auto max_idle = Chrono(shared_->options.upstream_idle_timeout);
    while (!idle_.empty()) {
      std::unique_ptr<UpstreamConn> c = std::move(idle_.back());
      idle_.pop_back();
      shared_->pool_idle.fetch_sub(1, std::memory_order_relaxed);
      const auto idle = now - c->idle_since;
      if (idle > max_idle) continue;
      if ((!retryable || idle > kTrustRecent) && !LooksOpen(*c)) continue;
      return c;
    }
    return nullptr;
  }

  void Put(std::unique_ptr<UpstreamConn> c) {
    const size_t max = static_cast<size_t>(shared_->options.upstream_max_idle);
    if (max == 0) return;
    if (idle_.size() >= max) {
      idle_.erase(idle_.begin());  // the least recently used
      shared_->pool_idle.fetch_sub(1, std::memory_order_relaxed);
    }
    c->idle_since = SteadyClock::now();
    c->stream.expires_never();
    idle_.push_back(std::move(c));
    shared_->pool_idle.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  // A pooled connection the upstream closed (EOF) or wrote to unasked is
  // unusable: peek without blocking.
  static bool LooksOpen(UpstreamConn& c) {
    char byte;
    const int fd = c.stream.socket().native_handle();
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return false;
    if (n > 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }

  Shared* const shared_;
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
};

class ProxyConnection;

// One I/O thread with its io_context, connection registry and pool.
// Member order matters: the registry outlives the io_context (pending
// handlers own connections that deregister when destroyed), and the pool
// (sockets of the io_context) dies first.
// Relay buffers (kRelayBufferBytes) lent to connections while they move a
// body, so an idle keep-alive connection holds none. Worker thread only.
class BufferPool {
 public:
  std::unique_ptr<char[]> Get() {
    if (free_.empty())
      return std::unique_ptr<char[]>(new char[kRelayBufferBytes]);
    std::unique_ptr<char[]> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Put(std::unique_ptr<char[]> b) {
    if (b && free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxFree = 64;
  std::vector<std::unique_ptr<char[]>> free_;
};

struct Worker {
  explicit Worker(Shared* shared) : pool(shared) {}
  absl::Mutex mu;
  std::unordered_set<ProxyConnection*> connections ABSL_GUARDED_BY(mu);
  BufferPool buffers;
  net::io_context ioc{1};
  UpstreamPool pool;
  std::thread thread;
};

// ---------------------------------------------------------------------------
// A client connection on the main listener.

class ProxyConnection final
    : public std::enable_shared_from_this<ProxyConnection> {
 public:
  ProxyConnection(Shared* shared, Worker* worker, Socket socket)
      : sh_(shared),
        w_(worker),
        sock_(std::move(socket)),
        timer_(sock_.get_executor()),
        cbuf_(shared->options.max_header_bytes + kReadBufferSlack),
        scanner_(HeadLimits{
            .max_request_line = shared->options.max_request_line_bytes,
            .max_head = shared->options.max_header_bytes}) {
    sh_->metrics->ConnectionOpened(/*admin=*/false);
    absl::MutexLock lock(&w_->mu);
    w_->connections.insert(this);
  }

  ~ProxyConnection() {
    {
      absl::MutexLock lock(&w_->mu);
      w_->connections.erase(this);
    }
    w_->buffers.Put(std::move(req_buf_));
    w_->buffers.Put(std::move(resp_buf_));
    if (tunnel_open_) sh_->metrics->TunnelClosed();
    sh_->metrics->ConnectionClosed(/*admin=*/false);
  }

  ProxyConnection(const ProxyConnection&) = delete;
  ProxyConnection& operator=(const ProxyConnection&) = delete;

  // Runs on the worker thread.
  void Start() {
    error_code ec;
    const tcp::endpoint peer = sock_.remote_endpoint(ec);
    if (ec) return Close();
    peer_ip_ = ToIp(peer.address());
    peer_text_ = PeerText(peer.address());
    peer_trusted_ = sh_->trusted_proxies.Match(*peer_ip_) >= 0;
    sock_.set_option(tcp::no_delay(true), ec);
    // The hot path first tries each step synchronously (no scheduler round
    // trip) and goes asynchronous only on EAGAIN.
    sock_.non_blocking(true, ec);
    timer_.expires_at(SteadyClock::time_point::max());
    WatchDeadline();
    ReadNext();
  }

  // Drain: the listener closed. Runs on the worker thread. An idle
  // keep-alive connection closes now; a busy one after its response.
  void OnClosing() {
    if (op_ != ClientOp::kIdle) return;
    if (exchanges_ == 0) {
      // Just accepted: its first request is probably on the way. Give it
      // the head timeout instead of the keep-alive idle time.
      SetDeadline(sh_->options.header_timeout);
      return;
    }
    error_code ec;
    sock_.cancel(ec);
  }

 private:
  // What the client side is waiting for; decides what a timeout means.
  enum class ClientOp : uint8_t {
    kNone,    // waiting for the session service or the upstream
    kIdle,    // keep-alive: waiting for the next request's first byte
    kHeader,  // reading a request head (408 on timeout)
    kBody,    // reading the request body (408 on timeout)
    kWrite,   // writing to the client
    kTunnel,  // upgraded: no deadline
    kDone,
  };

  // ---- deadlines (one timer per connection) ----

  void SetDeadline(absl::Duration d) {
    deadline_ = SteadyClock::now() + Chrono(d);
    if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
  }
  void ClearDeadline() { deadline_ = SteadyClock::time_point::max(); }

  void WatchDeadline() {
    timer_.async_wait([self = shared_from_this()](error_code) {
      if (self->op_ == ClientOp::kDone) return;
      if (self->deadline_ <= SteadyClock::now()) {
        self->deadline_ = SteadyClock::time_point::max();
        self->timed_out_ = true;
        error_code ec;
        self->sock_.cancel(ec);  // the pending operation sees the timeout
      }
      self->timer_.expires_at(self->deadline_);
      self->WatchDeadline();
    });
  }

  // ---- reading requests ----

  void ReadNext() {
    ResetExchange();
    // Going idle: give back what only a body needed.
    w_->buffers.Put(std::move(req_buf_));
    w_->buffers.Put(std::move(resp_buf_));
    if (cbuf_.size() == 0 && cbuf_.capacity() > kIdleBufferBytes) {
      cbuf_.shrink_to_fit();
    }
    if (sh_->closing.load(std::memory_order_acquire) && cbuf_.size() == 0 &&
        exchanges_ > 0) {
      return CloseGracefully();
    }
    if (cbuf_.size() > 0) return ReadHeader();  // pipelined
    op_ = ClientOp::kIdle;
    SetDeadline(sh_->options.idle_timeout);
    sock_.async_read_some(cbuf_.prepare(4096),
                          [self = shared_from_this()](error_code ec, size_t n) {
                            self->cbuf_.commit(n);
                            if (ec || n == 0) return self->Close();
                            self->ReadHeader();
                          });
  }

  // The head is framed and checked by RequestHeadScanner (strict RFC 9112
  // rules Beast does not apply) before Beast parses it from the buffer.
  // The deadline is set once per head: a head trickled in is cut at
  // --header-timeout however steadily its bytes come.
  void ReadHeader() {
    op_ = ClientOp::kHeader;
    timed_out_ = false;
    req_.emplace();
    // The scanner enforces the limit; Beast's is a backstop.
    req_->header_limit(
        static_cast<uint32_t>(sh_->options.max_header_bytes + 1024));
    req_->body_limit(sh_->options.max_body_bytes);
    scanner_.Reset();
    SetDeadline(sh_->options.header_timeout);
    ScanHead();
  }

  void ScanHead() {
    const auto data = cbuf_.data();
    const std::string_view buffered(static_cast<const char*>(data.data()),
                                    data.size());
    switch (scanner_.Scan(buffered)) {
      case RequestHeadScanner::State::kRejected: {
        const HeadVerdict v = scanner_.verdict();
        return SendLocal(v.status, Cat(v.reason, "\n"), true);
      }
      case RequestHeadScanner::State::kComplete:
        return ParseHead();
      case RequestHeadScanner::State::kNeedMore:
        break;
    }
    const size_t room =
        std::min(kHeadReadBytes, cbuf_.max_size() - cbuf_.size());
    if (room == 0) {
      return SendLocal(431, "request header fields too large\n", true);
    }
    sock_.async_read_some(
        cbuf_.prepare(room),
        [self = shared_from_this()](error_code ec, size_t n) {
          self->cbuf_.commit(n);
          if (ec || n == 0) {
            if (self->timed_out_) {
              return self->SendLocal(408, "request timeout\n", true);
            }
            return self->Close();  // the client went away mid-head
          }
          self->ScanHead();
        });
  }

  void ParseHead() {
    cbuf_.consume(scanner_.head_begin());  // empty lines before the request
    const size_t head = scanner_.head_end() - scanner_.head_begin();
    error_code ec;
    const size_t used = req_->put(net::buffer(cbuf_.data().data(), head), ec);
    cbuf_.consume(used);
    if (ec == http::error::need_more && req_->is_header_done()) ec = {};
    if (!ec && !req_->is_header_done()) {
      return SendLocal(400, "bad request\n", true);  // Beast disagrees
    }
    OnHeader(ec);
  }

  void OnHeader(error_code ec) {
    if (ec) {
      if (timed_out_) return SendLocal(408, "request timeout\n", true);
      if (ec == http::error::header_limit) {
        return SendLocal(431, "request header fields too large\n", true);
      }
      if (ec == http::error::body_limit) {
        return SendLocal(413, "payload too large\n", true);
      }
      if (ec == http::error::end_of_stream ||
          ec == http::error::partial_message ||
          ec == net::error::operation_aborted || ec == net::error::eof ||
          ec == net::error::connection_reset) {
        return Close();
      }
      if (IsHttpError(ec)) {
        return SendLocal(400, "bad request\n", true);
      }
      return Close();
    }
    op_ = ClientOp::kNone;
    ClearDeadline();
    auto& req = req_->get();
    client_keep_alive_ = req_->keep_alive();
    client_version_ = req.version();
    is_head_ = req.method() == http::verb::head;
    method_idempotent_ = IsIdempotent(req.method());
    body_pending_ = !req_->is_done();
    expect_continue_ =
        HeaderHasToken(SV(req[http::field::expect]), "100-continue");

    // Classify every request.
    std::string_view xff;
    auto xffs = req.equal_range(BV(kXff));
    for (auto it = xffs.first; it != xffs.second; ++it) {
      xff = SV(it->value());  // the last one: its right-most hops count
    }
    classifier::RequestView view;
    view.method = SV(req.method_string());
    view.target = SV(req.target());
    view.upgrade = SV(req[http::field::upgrade]);
    view.user_agent = SV(req[http::field::user_agent]);
    view.accept = SV(req[http::field::accept]);
    view.cookie = SV(req[http::field::cookie]);
    view.peer = peer_ip_;
    view.x_forwarded_for = xff;
    const classifier::Decision decision = sh_->classifier->Classify(view);

    // The edge's own JSON endpoints never need a session.
    if (req.method() == http::verb::get || is_head_) {
      std::string_view path = view.target.substr(0, view.target.find('?'));
      const EdgeOptions& o = sh_->options;
      const bool health =
          !o.session_health_path.empty() && path == o.session_health_path;
      const bool dashboard =
          !o.dashboard_path.empty() && path == o.dashboard_path;
      if (health || dashboard) {
        sh_->metrics->CountDecision(decision.bypass
                                        ? decision.reason_id
                                        : sh_->metrics->edge_endpoint_reason());
        const StatusSnapshot snap = sh_->Snapshot();
        if (health) {
          return SendLocal(IsHealthy(snap) ? 200 : 503,
                           RenderSessionHealth(snap), false,
                           "application/json; charset=utf-8");
        }
        return SendLocal(200, RenderDashboard(snap), false,
                         "application/json; charset=utf-8");
      }
    }

    sh_->metrics->CountDecision(decision.reason_id);
    is_upgrade_ = req_->upgrade();
    session_flow_ = sh_->options.shadow || !decision.bypass;
    if (!session_flow_) return PrepareUpstreamRequest();

    // Known-dead service and fail-closed: no need to try.
    if (sh_->options.fail_mode == FailMode::kClosed &&
        sh_->flow->breaker().state() == BreakerState::kOpen) {
      sh_->metrics->CountSessionStatus(SessionStatus::kUnavailable);
      return SendLocal(503, "session service unavailable\n", false);
    }
    session_ = sh_->flow->Verify(view.cookie);
    if (!session_.needs_fetch) return OnSession();
    sh_->flow->Fetch(std::move(session_),
                     [self = shared_from_this()](SessionState state) mutable {
                       auto ex = self->sock_.get_executor();
                       ProxyConnection* raw = self.get();
                       net::post(ex, [self = std::move(self), raw,
                                      state = std::move(state)]() mutable {
                         raw->session_ = std::move(state);
                         raw->OnSession();
                       });
                     });
  }

  void OnSession() {
    if (session_.status == SessionStatus::kUnavailable &&
        sh_->options.fail_mode == FailMode::kClosed) {
      return SendLocal(503, "session service unavailable\n", false);
    }
    PrepareUpstreamRequest();
  }

  // Rewrites the request head in place for the upstream.
  void PrepareUpstreamRequest() {
    auto& req = req_->get();
    std::string forwarded_for;
    {
      ConnectionTokens tokens;
      for (auto it = req.begin(); it != req.end(); ++it) {
        if (it->name() == http::field::connection ||
            it->name() == http::field::proxy_connection) {
          tokens.Add(SV(it->value()));
        }
      }
      absl::InlinedVector<http::fields::const_iterator, 16> drop;
      std::string_view host;
      bool have_proto = false;
      bool have_fwd_host = false;
      for (auto it = req.begin(); it != req.end(); ++it) {
        const std::string_view name = SV(it->name_string());
        if (ForwardAction(name, tokens, /*is_request=*/true, is_upgrade_) ==
            FieldAction::kDrop) {
          drop.push_back(it);
          continue;
        }
        if (EqualsIgnoreCase(name, kXff)) {
          // Several headers fold into one list, this hop appended.
          if (!forwarded_for.empty()) forwarded_for.append(", ");
          forwarded_for.append(TrimOws(SV(it->value())));
          drop.push_back(it);
        } else if (it->name() == http::field::host) {
          host = SV(it->value());
        } else if (EqualsIgnoreCase(name, "x-forwarded-proto")) {
          if (peer_trusted_) {
            have_proto = true;
          } else {
            drop.push_back(it);
          }
        } else if (EqualsIgnoreCase(name, "x-forwarded-host")) {
          if (peer_trusted_) {
            have_fwd_host = true;
          } else {
            drop.push_back(it);
          }
        }
      }
      std::string host_copy(host);
      for (auto it : drop) req.erase(it);
      req.set(BV(kXff), AppendForwardedFor(forwarded_for, peer_text_));
      if (!have_proto) req.set(BV("X-Forwarded-Proto"), "http");
      if (!have_fwd_host && !host_copy.empty()) {
        req.set(BV("X-Forwarded-Host"), host_copy);
      }
      if (host_copy.empty())
        req.set(http::field::host, sh_->upstream_authority);
    }
    {
      auto via = req.find(http::field::via);
      if (via == req.end()) {
        req.set(http::field::via, BV(kVia));
      } else {
        std::string v(SV(via->value()));
        v.append(", ").append(kVia);
        req.set(http::field::via, v);
      }
    }
    req.version(11);
    if (is_upgrade_) req.set(http::field::connection, "upgrade");
    if (req_->chunked()) req.chunked(true);

    if (session_flow_) {
      req.set(BV("X-Session-Status"), BV(SessionStatusName(session_.status)));
      if (session_.status == SessionStatus::kLoaded) {
        req.set(BV("X-Session-Id"), session_.id);
        req.set(BV("X-Session-Data"), EncodeSessionData(session_.data));
        if (!session_.principal.empty()) {
          req.set(BV("X-Session-Principal"), session_.principal);
        }
      }
    }
    AcquireUpstream();
  }

  // ---- upstream ----

  void AcquireUpstream() {
    up_ = retried_ ? nullptr
                   : w_->pool.Take(/*retryable=*/!body_pending_ &&
                                   method_idempotent_);
    if (up_) {
      up_reused_ = true;
      sh_->metrics->CountUpstreamConnection(/*reused=*/true);
      return WriteRequestHeader();
    }
    up_reused_ = false;
    up_ = std::make_unique<UpstreamConn>(sock_.get_executor());
    up_->stream.expires_after(Chrono(sh_->options.upstream_connect_timeout));
    up_->stream.async_connect(
        sh_->upstream,
        [self = shared_from_this()](error_code ec) { self->OnConnected(ec); });
  }

  void OnConnected(error_code ec) {
    if (ec) {
      up_.reset();
      if (ec == beast::error::timeout) {
        sh_->metrics->CountUpstreamError(UpstreamError::kConnectTimeout);
        return SendLocal(504, "upstream connect timeout\n", false);
      }
      sh_->metrics->CountUpstreamError(UpstreamError::kConnect);
      return SendLocal(502, "upstream unavailable\n", false);
    }
    sh_->metrics->CountUpstreamConnection(/*reused=*/false);
    error_code ignored;
    up_->stream.socket().set_option(tcp::no_delay(true), ignored);
    up_->stream.socket().non_blocking(true, ignored);
    WriteRequestHeader();
  }

  void WriteRequestHeader() {
    upstream_start_ = SteadyClock::now();
    req_sr_.emplace(req_->get());
    if (!req_->is_done() && !expect_continue_ && cbuf_.size() > 0) {
      // Body bytes already arrived with the head: parse them first and send
      // head and body in one write.
      return ReadRequestBody();
    }
    error_code ec;
    http::write_header(up_->stream.socket(), *req_sr_, ec);
    if (!IsWouldBlock(ec)) return AfterRequestHeader(ec);
    up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
    http::async_write_header(
        up_->stream, *req_sr_,
        [self = shared_from_this()](error_code ec, size_t) {
          self->AfterRequestHeader(ec);
        });
  }

  void AfterRequestHeader(error_code ec) {
    if (ec) return OnUpstreamFailure(ec, /*wrote_body=*/false);
    if (req_->is_done()) return ReadResponseHeader();
    if (expect_continue_) return SendContinue();
    ReadRequestBody();
  }

  // A retry is safe only for a body-less idempotent request on a pooled
  // connection that failed before any response byte.
  bool CanRetry() const {
    return up_reused_ && !retried_ && !body_pending_ && method_idempotent_;
  }

  void OnUpstreamFailure(error_code ec, bool wrote_body) {
    const bool got_bytes = up_ && up_->buffer.size() > 0;
    up_.reset();
    if (ec == beast::error::timeout) {
      sh_->metrics->CountUpstreamError(UpstreamError::kResponseTimeout);
      return SendLocal(504, "upstream timeout\n", false);
    }
    if (!wrote_body && !got_bytes && CanRetry()) {
      retried_ = true;
      sh_->metrics->CountUpstreamRetry();
      return AcquireUpstream();
    }
    sh_->metrics->CountUpstreamError(UpstreamError::kProtocol);
    SendLocal(502, "bad gateway\n", false);
  }

  void SendContinue() {
    static constexpr std::string_view kContinue =
        "HTTP/1.1 100 Continue\r\n\r\n";
    op_ = ClientOp::kWrite;
    SetDeadline(sh_->options.idle_timeout);
    net::async_write(sock_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->Abort();
                       self->ReadRequestBody();
                     });
  }

  void ReadRequestBody() {
    if (!req_buf_) req_buf_ = w_->buffers.Get();
    auto& body = req_->get().body();
    body.data = req_buf_.get();
    body.size = kRelayBufferBytes;
    op_ = ClientOp::kBody;
    SetDeadline(sh_->options.header_timeout);
    http::async_read_some(sock_, cbuf_, *req_,
                          [self = shared_from_this()](error_code ec, size_t) {
                            self->OnRequestBodyRead(ec);
                          });
  }

  void OnRequestBodyRead(error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    op_ = ClientOp::kNone;
    ClearDeadline();
    if (ec) {
      up_.reset();  // a half-sent request: never reuse
      if (timed_out_) return SendLocal(408, "request timeout\n", true);
      if (ec == http::error::body_limit) {
        return SendLocal(413, "payload too large\n", true);
      }
      if (IsHttpError(ec) && ec != http::error::end_of_stream &&
          ec != http::error::partial_message) {
        return SendLocal(400, "bad request\n", true);
      }
      return Abort();
    }
    auto& body = req_->get().body();
    const size_t n = kRelayBufferBytes - body.size;
    body.data = n > 0 ? req_buf_.get() : nullptr;
    body.size = n;
    body.more = !req_->is_done();
    if (n == 0 && body.more) return ReadRequestBody();
    up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
    http::async_write(up_->stream, *req_sr_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec == http::error::need_buffer) ec = {};
                        if (ec) {
                          return self->OnUpstreamFailure(ec,
                                                         /*wrote_body=*/true);
                        }
                        if (self->req_->is_done()) {
                          return self->ReadResponseHeader();
                        }
                        self->ReadRequestBody();
                      });
  }

  void ReadResponseHeader() {
    resp_.emplace();
    resp_->header_limit(kUpstreamHeaderLimit);
    resp_->body_limit(std::numeric_limits<uint64_t>::max());
    if (is_head_) resp_->skip(true);
    up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
    http::async_read_header(up_->stream, up_->buffer, *resp_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              self->OnResponseHeader(ec);
                            });
  }

  void OnResponseHeader(error_code ec) {
    if (ec) return OnUpstreamFailure(ec, body_pending_);
    auto& res = resp_->get();
    const int status = res.result_int();
    if (status >= 100 && status < 200 && status != 101) {
      return ReadResponseHeader();  // interim (100, 103): not forwarded
    }
    sh_->metrics->ObserveUpstream(
        absl::FromChrono(SteadyClock::now() - upstream_start_));
    if (status == 101 && !is_upgrade_) {
      up_.reset();
      sh_->metrics->CountUpstreamError(UpstreamError::kProtocol);
      return SendLocal(502, "unexpected upgrade\n", true);
    }
    const bool tunnel = status == 101;

    // Strip hop-by-hop fields; consume the session protocol; keep the
    // session cookie ours.
    RawDirectives raw;
    SessionDirectives directives;
    {
      ConnectionTokens tokens;
      for (auto it = res.begin(); it != res.end(); ++it) {
        if (it->name() == http::field::connection ||
            it->name() == http::field::proxy_connection) {
          tokens.Add(SV(it->value()));
        }
      }
      absl::InlinedVector<http::fields::const_iterator, 16> drop;
      const std::string_view cookie_name = sh_->options.cookie_name;
      for (auto it = res.begin(); it != res.end(); ++it) {
        const std::string_view name = SV(it->name_string());
        if (raw.Offer(name, SV(it->value()))) {
          drop.push_back(it);
          continue;
        }
        if (ForwardAction(name, tokens, /*is_request=*/false, tunnel) ==
            FieldAction::kDrop) {
          drop.push_back(it);
          continue;
        }
        if (it->name() == http::field::set_cookie &&
            SetCookieName(SV(it->value())) == cookie_name) {
          drop.push_back(it);
        }
      }
      if (session_flow_) directives = ParseDirectives(raw);
      for (auto it : drop) res.erase(it);
    }
    if (tunnel) {
      res.set(http::field::connection, "upgrade");
      return WriteResponseHeader();
    }
    if (session_flow_ && (directives.any() || directives.invalid > 0 ||
                          (session_.status == SessionStatus::kLoaded &&
                           session_.key_index > 0))) {
      sh_->flow->Apply(std::move(session_), std::move(directives),
                       [self = shared_from_this()](ApplyResult result) mutable {
                         auto ex = self->sock_.get_executor();
                         ProxyConnection* raw_self = self.get();
                         net::post(ex, [self = std::move(self), raw_self,
                                        result = std::move(result)]() mutable {
                           raw_self->OnApplied(std::move(result));
                         });
                       });
      return;
    }
    WriteResponseHeader();
  }

  void OnApplied(ApplyResult result) {
    if (result.failed && sh_->options.fail_mode == FailMode::kClosed) {
      up_.reset();  // its body is unread
      return SendLocal(503, "session service unavailable\n", false);
    }
    if (result.set_cookie) {
      resp_->get().insert(http::field::set_cookie, *result.set_cookie);
    }
    WriteResponseHeader();
  }

  void WriteResponseHeader() {
    auto& res = resp_->get();
    const bool tunnel = res.result_int() == 101;
    has_body_ = !resp_->is_done();
    if (!tunnel) {
      if (resp_->chunked()) {
        if (client_version_ >= 11) {
          res.chunked(true);
        } else {
          must_close_ = true;  // HTTP/1.0: the close delimits the body
        }
      } else if (has_body_ && !resp_->content_length()) {
        // Delimited by the upstream closing: chunk it for the client.
        if (client_version_ >= 11) {
          res.chunked(true);
        } else {
          must_close_ = true;
        }
      }
      keep_alive_ = client_keep_alive_ && !must_close_ &&
                    !sh_->closing.load(std::memory_order_acquire);
      res.keep_alive(keep_alive_);
      if (keep_alive_ && client_version_ < 11) {
        res.set(http::field::connection, "keep-alive");
      }
    }
    res.version(11);
    sh_->metrics->CountResponse(res.result_int());
    resp_sr_.emplace(res);
    if (!tunnel && has_body_ && up_->buffer.size() > 0) {
      // Body bytes came with the head (the usual small response): parse
      // them now and send head and body in one write. Otherwise the head
      // goes out alone, at once (a streaming upstream may pause).
      if (!resp_buf_) resp_buf_ = w_->buffers.Get();
      auto& body = res.body();
      body.data = resp_buf_.get();
      body.size = kRelayBufferBytes;
      error_code ec;
      http::read_some(up_->stream.socket(), up_->buffer, *resp_, ec);
      if (IsWouldBlock(ec) || ec == http::error::need_buffer) ec = {};
      return OnResponseBodyRead(ec);
    }
    if (!tunnel) {
      error_code ec;
      http::write_header(sock_, *resp_sr_, ec);
      if (!IsWouldBlock(ec)) {
        if (ec) return Abort();
        if (!has_body_) return FinishExchange();
        return ReadResponseBody();
      }
    }
    op_ = ClientOp::kWrite;
    SetDeadline(sh_->options.idle_timeout);
    http::async_write_header(
        sock_, *resp_sr_,
        [self = shared_from_this(), tunnel](error_code ec, size_t) {
          self->op_ = ClientOp::kNone;
          self->ClearDeadline();
          if (ec) return self->Abort();
          if (tunnel) return self->StartTunnel();
          if (!self->has_body_) return self->FinishExchange();
          self->ReadResponseBody();
        });
  }

  void ReadResponseBody() {
    if (!resp_buf_) resp_buf_ = w_->buffers.Get();
    auto& body = resp_->get().body();
    body.data = resp_buf_.get();
    body.size = kRelayBufferBytes;
    up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
    http::async_read_some(up_->stream, up_->buffer, *resp_,
                          [self = shared_from_this()](error_code ec, size_t) {
                            self->OnResponseBodyRead(ec);
                          });
  }

  void OnResponseBodyRead(error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      // The upstream broke mid-response: the client cannot be told
      // otherwise than by closing.
      sh_->metrics->CountUpstreamError(ec == beast::error::timeout
                                           ? UpstreamError::kResponseTimeout
                                           : UpstreamError::kProtocol);
      if (!resp_sr_->is_header_done()) {  // nothing sent yet: say so
        up_.reset();
        return SendLocal(502, "bad gateway\n", true);
      }
      return Abort();
    }
    auto& body = resp_->get().body();
    const size_t n = kRelayBufferBytes - body.size;
    body.data = n > 0 ? resp_buf_.get() : nullptr;
    body.size = n;
    body.more = !resp_->is_done();
    if (n == 0 && body.more) return ReadResponseBody();
    // Non-blocking attempt first; the next read is always asynchronous, so
    // this never recurses through a long body.
    error_code wec;
    http::write(sock_, *resp_sr_, wec);
    if (!IsWouldBlock(wec)) return AfterResponseWrite(wec);
    op_ = ClientOp::kWrite;
    SetDeadline(sh_->options.idle_timeout);
    http::async_write(sock_, *resp_sr_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->op_ = ClientOp::kNone;
                        self->ClearDeadline();
                        self->AfterResponseWrite(ec);
                      });
  }

  void AfterResponseWrite(error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Abort();
    if (resp_->is_done()) return FinishExchange();
    ReadResponseBody();
  }

  void FinishExchange() {
    ++exchanges_;
    if (up_ && resp_ && resp_->is_done() && resp_->keep_alive() && req_ &&
        req_->is_done() && up_->buffer.size() == 0) {
      if (up_->buffer.capacity() > kIdleBufferBytes) {
        up_->buffer.shrink_to_fit();
      }
      w_->pool.Put(std::move(up_));
    }
    up_.reset();
    if (!keep_alive_) return CloseGracefully();
    ReadNext();
  }

  void ResetExchange() {
    is_head_ = false;
    req_sr_.reset();
    resp_sr_.reset();
    req_.reset();
    resp_.reset();
    local_.reset();
    session_ = SessionState();
    up_.reset();
    retried_ = false;
    up_reused_ = false;
    must_close_ = false;
    keep_alive_ = false;
    session_flow_ = false;
    is_upgrade_ = false;
    timed_out_ = false;
  }

  // ---- local replies ----

  void SendLocal(int status, std::string body, bool close,
                 std::string_view content_type = "text/plain; charset=utf-8") {
    up_.reset();
    if (req_ && !req_->is_done()) close = true;  // unread body
    if (!req_) close = true;
    if (sh_->closing.load(std::memory_order_acquire)) close = true;
    if (!client_keep_alive_) close = true;
    keep_alive_ = !close;
    local_ = std::make_unique<http::response<http::string_body>>(
        static_cast<http::status>(status), 11);
    local_->set(http::field::content_type, BV(content_type));
    local_->set(http::field::cache_control, "no-store");
    if (!is_head_) local_->body() = std::move(body);
    local_->prepare_payload();
    if (is_head_) local_->content_length(body.size());
    local_->keep_alive(keep_alive_);
    sh_->metrics->CountResponse(status);
    if (status >= 400) sh_->metrics->CountLocalReply(status);
    op_ = ClientOp::kWrite;
    SetDeadline(sh_->options.idle_timeout);
    http::async_write(sock_, *local_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->op_ = ClientOp::kNone;
                        self->ClearDeadline();
                        if (ec) return self->Abort();
                        ++self->exchanges_;
                        if (!self->keep_alive_) return self->CloseGracefully();
                        self->ReadNext();
                      });
  }

  // ---- WebSocket (any upgrade) tunnel ----

  struct Pump {
    std::unique_ptr<char[]> buf;
    bool done = false;
  };

  void StartTunnel() {
    op_ = ClientOp::kTunnel;
    ClearDeadline();
    up_->stream.expires_never();
    tunnel_open_ = true;
    sh_->metrics->TunnelOpened();
    to_up_.buf.reset(new char[kRelayBufferBytes]);
    to_client_.buf.reset(new char[kRelayBufferBytes]);
    // Bytes already read past the heads go first.
    FlushLeftover(/*to_upstream=*/true);
    FlushLeftover(/*to_upstream=*/false);
  }

  void FlushLeftover(bool to_upstream) {
    beast::flat_buffer& leftover = to_upstream ? cbuf_ : up_->buffer;
    if (leftover.size() == 0) return PumpRead(to_upstream);
    auto self = shared_from_this();
    auto done = [self, to_upstream](error_code ec, size_t) {
      beast::flat_buffer& b = to_upstream ? self->cbuf_ : self->up_->buffer;
      b.consume(b.size());
      if (ec) return self->EndTunnel();
      self->PumpRead(to_upstream);
    };
    if (to_upstream) {
      net::async_write(up_->stream.socket(), leftover.data(), done);
    } else {
      net::async_write(sock_, leftover.data(), done);
    }
  }

  void PumpRead(bool to_upstream) {
    Pump& p = to_upstream ? to_up_ : to_client_;
    auto handler = [self = shared_from_this(), to_upstream](error_code ec,
                                                            size_t n) {
      self->OnPumpRead(to_upstream, ec, n);
    };
    if (to_upstream) {
      sock_.async_read_some(net::buffer(p.buf.get(), kRelayBufferBytes),
                            std::move(handler));
    } else {
      up_->stream.socket().async_read_some(
          net::buffer(p.buf.get(), kRelayBufferBytes), std::move(handler));
    }
  }

  void OnPumpRead(bool to_upstream, error_code ec, size_t n) {
    Pump& p = to_upstream ? to_up_ : to_client_;
    if (ec) {
      // One side finished: pass the half-close on; end when both are done.
      p.done = true;
      error_code ignored;
      if (ec == net::error::eof) {
        (to_upstream ? up_->stream.socket() : sock_)
            .shutdown(tcp::socket::shutdown_send, ignored);
        if (to_up_.done && to_client_.done) EndTunnel();
        return;
      }
      return EndTunnel();
    }
    auto done = [self = shared_from_this(), to_upstream](error_code ec,
                                                         size_t) {
      if (ec) return self->EndTunnel();
      self->PumpRead(to_upstream);
    };
    if (to_upstream) {
      net::async_write(up_->stream.socket(), net::buffer(p.buf.get(), n),
                       std::move(done));
    } else {
      net::async_write(sock_, net::buffer(p.buf.get(), n), std::move(done));
    }
  }

  void EndTunnel() {
    if (op_ == ClientOp::kDone) return;
    if (up_) {
      error_code ignored;
      up_->stream.socket().close(ignored);
    }
    Close();
  }

  // ---- closing ----

  // Sends FIN, then reads and discards briefly so unread client bytes do
  // not turn the close into a reset that could destroy our last response.
  void CloseGracefully() {
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    op_ = ClientOp::kWrite;  // a timeout just closes
    deadline_ = SteadyClock::now() + kLingerTime;
    if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
    Linger();
  }

  void Linger() {
    if (!req_buf_) req_buf_ = w_->buffers.Get();
    sock_.async_read_some(net::buffer(req_buf_.get(), kRelayBufferBytes),
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (ec) return self->Close();
                            self->Linger();
                          });
  }

  void Abort() {
    up_.reset();
    Close();
  }

  void Close() {
    if (op_ == ClientOp::kDone) return;
    op_ = ClientOp::kDone;
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    timer_.cancel();
  }

  Shared* const sh_;
  Worker* const w_;
  Socket sock_;
  Timer timer_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  ClientOp op_ = ClientOp::kNone;
  bool timed_out_ = false;
  uint64_t exchanges_ = 0;  // responses completed on this connection

  std::optional<classifier::IpAddress> peer_ip_;
  std::string peer_text_;
  bool peer_trusted_ = false;
  beast::flat_buffer cbuf_;
  RequestHeadScanner scanner_;

  // The current exchange.
  std::optional<http::request_parser<http::buffer_body>> req_;
  std::optional<http::request_serializer<http::buffer_body>> req_sr_;
  std::optional<http::response_parser<http::buffer_body>> resp_;
  std::optional<http::response_serializer<http::buffer_body>> resp_sr_;
  std::unique_ptr<http::response<http::string_body>> local_;
  std::unique_ptr<UpstreamConn> up_;
  std::unique_ptr<char[]> req_buf_;
  std::unique_ptr<char[]> resp_buf_;
  SessionState session_;
  SteadyClock::time_point upstream_start_;
  unsigned client_version_ = 11;
  bool client_keep_alive_ = false;
  bool keep_alive_ = false;
  bool must_close_ = false;
  bool is_head_ = false;
  bool method_idempotent_ = false;
  bool body_pending_ = false;
  bool expect_continue_ = false;
  bool is_upgrade_ = false;
  bool session_flow_ = false;
  bool has_body_ = false;
  bool up_reused_ = false;
  bool retried_ = false;

  Pump to_up_;
  Pump to_client_;
  bool tunnel_open_ = false;
};

// ---------------------------------------------------------------------------
// Admin listener: /healthz, /readyz, /metrics and the JSON endpoints.

class AdminConnection final
    : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(Shared* shared, tcp::socket socket)
      : sh_(shared), stream_(std::move(socket)) {
    sh_->metrics->ConnectionOpened(/*admin=*/true);
  }
  ~AdminConnection() { sh_->metrics->ConnectionClosed(/*admin=*/true); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(error_code ec) {
    if (ec) {
      stream_.socket().close(ec);
      return;
    }
    const auto& req = parser_->get();
    std::string_view target = SV(req.target());
    const std::string_view path = target.substr(0, target.find('?'));
    int status = 200;
    std::string body;
    std::string_view type = "text/plain; charset=utf-8";
    if (path == "/healthz") {
      body = "ok\n";
    } else if (path == "/readyz") {
      auto [ready, why] = sh_->Ready();
      status = ready ? 200 : 503;
      body = std::string(why) + "\n";
    } else if (path == "/metrics") {
      body = sh_->metrics->Render(sh_->Gauges());
      type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path == sh_->options.session_health_path ||
               path == "/api/session-health") {
      const StatusSnapshot snap = sh_->Snapshot();
      status = IsHealthy(snap) ? 200 : 503;
      body = RenderSessionHealth(snap);
      type = "application/json; charset=utf-8";
    } else if (path == sh_->options.dashboard_path ||
               path == "/api/production-monitor/dashboard") {
      body = RenderDashboard(sh_->Snapshot());
      type = "application/json; charset=utf-8";
    } else {
      status = 404;
      body = "not found\n";
    }
    res_.emplace(static_cast<http::status>(status), 11);
    res_->set(http::field::content_type, BV(type));
    res_->set(http::field::cache_control, "no-store");
    res_->body() = std::move(body);
    res_->prepare_payload();
    keep_alive_ = parser_->keep_alive();
    res_->keep_alive(keep_alive_);
    http::async_write(
        stream_, *res_, [self = shared_from_this()](error_code ec, size_t) {
          if (ec || !self->keep_alive_) {
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
            return;
          }
          self->Read();
        });
  }

  Shared* const sh_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = false;
};

// ---------------------------------------------------------------------------
// The server.

absl::StatusOr<tcp::endpoint> ResolveEndpoint(const HostPort& hp,
                                              bool passive) {
  error_code ec;
  const net::ip::address addr = net::ip::make_address(hp.host, ec);
  if (!ec) return tcp::endpoint(addr, hp.port);
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(
      hp.host, std::to_string(hp.port),
      passive ? tcp::resolver::passive : tcp::resolver::flags(), ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        Cat("cannot resolve \"", hp.host, "\": ", ec.message()));
  }
  // Prefer IPv4 (what "localhost" usually means to the operator).
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) return r.endpoint();
  }
  return results.begin()->endpoint();
}

class EdgeServerImpl final : public EdgeServer {
 public:
  EdgeServerImpl() = default;

  ~EdgeServerImpl() override {
    Stop();
    // Session callbacks post into the io_contexts: let them finish first.
    const absl::Time until =
        absl::Now() + 4 * shared_.options.session_timeout + absl::Seconds(1);
    while (shared_.flow && shared_.flow->inflight_calls() > 0 &&
           absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    acceptor_.reset();
    admin_acceptor_.reset();
    workers_.clear();
  }

  absl::Status Init(EdgeOptions options,
                    const classifier::Classifier* classifier) {
    Shared& sh = shared_;
    sh.options = std::move(options);
    sh.classifier = classifier;
    sh.start_time = absl::Now();
    sh.hostname = Hostname();
    sh.kubernetes = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
    if (sh.options.memory_limit_bytes > 0) {
      sh.memory_limit = static_cast<int64_t>(sh.options.memory_limit_bytes);
    } else if (auto cg = CgroupMemoryLimitBytes()) {
      sh.memory_limit = *cg;
    } else {
      sh.memory_limit = MemTotalBytes();
    }
    std::vector<classifier::Cidr> trusted;
    for (const std::string& t : sh.options.trusted_proxies) {
      auto cidr = classifier::Cidr::Parse(t);
      if (!cidr.ok()) return cidr.status();
      trusted.push_back(*cidr);
    }
    sh.trusted_proxies = classifier::CidrSet(trusted);

    std::vector<std::string> reasons;
    for (size_t i = 0; i < classifier->num_reasons(); ++i) {
      reasons.emplace_back(classifier->ReasonName(static_cast<uint16_t>(i)));
    }
    sh.metrics = std::make_unique<EdgeMetrics>(std::move(reasons));

    auto up = ParseUpstreamUrl(sh.options.upstream);
    if (!up.ok()) return up.status();
    auto up_ep = ResolveEndpoint(*up, /*passive=*/false);
    if (!up_ep.ok()) return up_ep.status();
    sh.upstream = *up_ep;
    sh.upstream_authority = up->host + ":" + std::to_string(up->port);

    client::ClientOptions copts;
    copts.target = sh.options.session_service;
    copts.deadline = sh.options.session_timeout;
    copts.max_attempts = 1;
    auto c = client::Client::Create(copts);
    if (!c.ok()) return c.status();
    sh.client = *std::move(c);
    if (sh.options.session_batching) {
      client::BatcherOptions bo;
      bo.deadline = sh.options.session_timeout;
      bo.max_in_flight = sh.options.session_batch_in_flight;
      auto batcher = client::SessionBatcher::Create(sh.client.get(), bo);
      if (!batcher.ok()) return batcher.status();
      sh.batcher = *std::move(batcher);
    }
    sh.backend = std::make_unique<GrpcSessionBackend>(sh.client.get(),
                                                      sh.batcher.get());
    auto signer = CookieSigner::Create(sh.options.cookie_secrets);
    if (!signer.ok()) return signer.status();
    sh.signer = *std::move(signer);
    SessionFlowOptions fo;
    fo.cookie_name = sh.options.cookie_name;
    fo.cookie = sh.options.cookie;
    fo.session_ttl = sh.options.session_ttl;
    fo.breaker = sh.options.breaker;
    if (absl::Status s = fo.Validate(); !s.ok()) return s;
    sh.flow = std::make_unique<SessionFlow>(
        fo, sh.backend.get(), sh.signer.get(), sh.metrics.get(), Clock::Real());
    sh.monitor = std::make_unique<ServiceMonitor>(sh.client.get(),
                                                  sh.options.stats_interval);

    int threads = sh.options.threads;
    if (threads <= 0) {
      threads = static_cast<int>(std::thread::hardware_concurrency());
    }
    if (threads <= 0) threads = 1;
    for (int i = 0; i < threads; ++i) {
      workers_.push_back(std::make_unique<Worker>(&shared_));
    }
    return absl::OkStatus();
  }

  absl::Status Start() override {
    auto main_ep = Listen("listen", shared_.options.listen, &acceptor_);
    if (!main_ep.ok()) return main_ep.status();
    auto admin_ep =
        Listen("admin_listen", shared_.options.admin_listen, &admin_acceptor_);
    if (!admin_ep.ok()) return admin_ep.status();
    address_ = FormatEndpoint(*main_ep);
    admin_address_ = FormatEndpoint(*admin_ep);
    shared_.monitor->Start();
    DoAccept();
    DoAdminAccept();
    for (auto& w : workers_) {
      Worker* worker = w.get();
      worker->thread = std::thread([worker] {
        auto guard = net::make_work_guard(worker->ioc);
        worker->ioc.run();
      });
    }
    started_ = true;
    return absl::OkStatus();
  }

  std::string address() const override { return address_; }
  std::string admin_address() const override { return admin_address_; }

  int Drain() override {
    Shared& sh = shared_;
    sh.draining.store(true, std::memory_order_release);
    LogInfo("draining",
            {{"phase", "readyz failing"},
             {"drain_delay", absl::FormatDuration(sh.options.drain_delay)}});
    absl::SleepFor(sh.options.drain_delay);

    // Stop accepting (taking what the kernel already queued), then let
    // every idle keep-alive connection go.
    absl::Notification closed;
    net::post(workers_[0]->ioc, [this, &closed] {
      shared_.closing.store(true, std::memory_order_release);
      CloseListener();
      closed.Notify();
    });
    closed.WaitForNotificationWithTimeout(absl::Seconds(5));
    for (auto& w : workers_) {
      Worker* worker = w.get();
      net::post(worker->ioc, [worker] {
        absl::MutexLock lock(&worker->mu);
        for (ProxyConnection* c : worker->connections) c->OnClosing();
      });
    }
    LogInfo("draining", {{"phase", "listener closed"},
                         {"open_connections",
                          std::to_string(sh.metrics->open_connections())}});
    const absl::Time until = absl::Now() + sh.options.drain_timeout;
    while (sh.metrics->open_connections() > 0 && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    const int64_t left = sh.metrics->open_connections();
    Stop();
    return static_cast<int>(left);
  }

 private:
  absl::StatusOr<tcp::endpoint> Listen(std::string_view flag,
                                       const std::string& text,
                                       std::unique_ptr<tcp::acceptor>* out) {
    auto fail = [&](std::string_view what, const error_code& ec) {
      return absl::UnavailableError(
          Cat(flag, " ", text, ": ", what, ": ", ec.message()));
    };
    auto hp = ParseHostPort(text);
    if (!hp.ok()) return hp.status();
    auto ep = ResolveEndpoint(*hp, /*passive=*/true);
    if (!ep.ok()) return ep.status();
    auto acceptor = std::make_unique<tcp::acceptor>(workers_[0]->ioc);
    error_code ec;
    acceptor->open(ep->protocol(), ec);
    if (ec) return fail("open", ec);
    acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("SO_REUSEADDR", ec);
    acceptor->bind(*ep, ec);
    if (ec) return fail("bind", ec);
    acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen", ec);
    const tcp::endpoint bound = acceptor->local_endpoint(ec);
    if (ec) return fail("local_endpoint", ec);
    *out = std::move(acceptor);
    return bound;
  }

  void DoAccept() {
    Worker* target = workers_[next_worker_++ % workers_.size()].get();
    acceptor_->async_accept(
        target->ioc.get_executor(),
        [this, target](error_code ec, Socket socket) {
          if (!ec) Admit(target, std::move(socket));
          if (listener_closed_) return;
          if (ec == net::error::operation_aborted) return;
          if (ec) {
            // Out of descriptors or similar: do not spin.
            LogWarn("accept failed", {{"error", ec.message()}});
            accept_backoff_ = std::make_unique<net::steady_timer>(
                workers_[0]->ioc, std::chrono::milliseconds(50));
            accept_backoff_->async_wait([this](error_code e) {
              if (!e && !listener_closed_) DoAccept();
            });
            return;
          }
          DoAccept();
        });
  }

  // Hands an accepted socket to `target`, or over --max-connections
  // answers 503 and closes it at once: no ProxyConnection, no buffer, no
  // timer. The count is taken here (the constructor counts the connection
  // on this thread), so the limit holds however fast clients connect.
  // Runs on worker 0 (the acceptor's thread).
  void Admit(Worker* target, Socket socket) {
    if (shared_.metrics->open_connections() >=
        shared_.options.max_connections) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n"
          "\r\ntoo many connections\n";
      shared_.metrics->CountConnectionRefused();
      shared_.metrics->CountResponse(503);
      shared_.metrics->CountLocalReply(503);
      const int fd = socket.native_handle();
      // Read what already arrived so the close is a FIN, not a reset that
      // could discard the answer (a few reads at most: never blocks).
      char sink[4096];
      for (int i = 0; i < 4 && ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0;
           ++i) {
      }
      (void)::send(fd, kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);
      error_code ec;
      socket.close(ec);
      return;
    }
    auto c =
        std::make_shared<ProxyConnection>(&shared_, target, std::move(socket));
    net::post(target->ioc, [c] { c->Start(); });
  }

  // Runs on worker 0 (the acceptor's thread).
  void CloseListener() {
    listener_closed_ = true;
    error_code ec;
    acceptor_->cancel(ec);
    acceptor_->non_blocking(true, ec);
    for (;;) {
      Worker* target = workers_[next_worker_++ % workers_.size()].get();
      Socket socket(target->ioc.get_executor());
      acceptor_->accept(socket, ec);
      if (ec) break;
      Admit(target, std::move(socket));
    }
    acceptor_->close(ec);
  }

  void DoAdminAccept() {
    admin_acceptor_->async_accept(
        net::any_io_executor(workers_[0]->ioc.get_executor()),
        [this](error_code ec, tcp::socket socket) {
          if (!ec) {
            std::make_shared<AdminConnection>(&shared_, std::move(socket))
                ->Read();
          }
          if (ec == net::error::operation_aborted || admin_closed_) return;
          DoAdminAccept();
        });
  }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    absl::Notification closed;
    net::post(workers_[0]->ioc, [this, &closed] {
      admin_closed_ = true;
      error_code ec;
      admin_acceptor_->close(ec);
      if (!listener_closed_) {
        listener_closed_ = true;
        acceptor_->close(ec);
      }
      closed.Notify();
    });
    closed.WaitForNotificationWithTimeout(absl::Seconds(5));
    shared_.monitor->Stop();
    for (auto& w : workers_) w->ioc.stop();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<tcp::acceptor> admin_acceptor_;
  std::unique_ptr<net::steady_timer> accept_backoff_;
  size_t next_worker_ = 0;
  bool listener_closed_ = false;  // worker 0 only
  bool admin_closed_ = false;     // worker 0 only
  bool started_ = false;
  bool stopped_ = false;
  std::string address_;
  std::string admin_address_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EdgeServer>> EdgeServer::Create(
    EdgeOptions options, const classifier::Classifier* classifier) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto server = std::make_unique<EdgeServerImpl>();
  if (absl::Status s = server->Init(std::move(options), classifier); !s.ok()) {
    return s;
  }
  return std::unique_ptr<EdgeServer>(std::move(server));
}

}  // namespace sg::edge
