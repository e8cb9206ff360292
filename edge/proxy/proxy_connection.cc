// ProxyConnection: life cycle, deadlines, reading and checking request
// heads, classification and session lookup, local replies, closing.
#include "edge/proxy/proxy_connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <utility>

#include "edge/http/text_util.h"
#include "edge/proxy_headers.h"
#include "edge/session_protocol.h"
#include "edge/status_json.h"

namespace sg::edge::proxy {
namespace {

// A client read buffer holds at most the head limit plus this much: room
// for one body read (Beast reads up to 64 KiB) and a chunk-size line. A
// longer chunk line (endless extensions) fails with buffer_overflow -> 400
// instead of growing the buffer until the timeout.
constexpr size_t kReadBufferSlack = 80 * 1024;
constexpr size_t kHeadReadBytes = 4096;
constexpr auto kLingerTime = std::chrono::seconds(2);

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

bool IsIdempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head ||
         v == http::verb::options || v == http::verb::trace;
}

}  // namespace

ProxyConnection::ProxyConnection(Shared* shared, Worker* worker, Socket socket)
    : sh_(shared),
      w_(worker),
      sock_(std::move(socket)),
      timer_(sock_.get_executor()),
      cbuf_(shared->options.max_header_bytes + kReadBufferSlack),
      scanner_(
          HeadLimits{.max_request_line = shared->options.max_request_line_bytes,
                     .max_head = shared->options.max_header_bytes}) {
  sh_->metrics->ConnectionOpened(/*admin=*/false);
  absl::MutexLock lock(&w_->mu);
  w_->connections.insert(this);
}

ProxyConnection::~ProxyConnection() {
  {
    absl::MutexLock lock(&w_->mu);
    w_->connections.erase(this);
  }
  w_->buffers.Put(std::move(req_buf_));
  w_->buffers.Put(std::move(resp_buf_));
  if (tunnel_open_) sh_->metrics->TunnelClosed();
  sh_->metrics->ConnectionClosed(/*admin=*/false);
}

void ProxyConnection::Start() {
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

void ProxyConnection::OnClosing() {
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

void ProxyConnection::SetDeadline(absl::Duration d) {
  deadline_ = SteadyClock::now() + Chrono(d);
  if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
}

void ProxyConnection::WatchDeadline() {
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

void ProxyConnection::ReadNext() {
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

void ProxyConnection::ReadHeader() {
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

void ProxyConnection::ScanHead() {
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
  const size_t room = std::min(kHeadReadBytes, cbuf_.max_size() - cbuf_.size());
  if (room == 0) {
    return SendLocal(431, "request header fields too large\n", true);
  }
  sock_.async_read_some(cbuf_.prepare(room), [self = shared_from_this()](
                                                 error_code ec, size_t n) {
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

void ProxyConnection::ParseHead() {
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

void ProxyConnection::OnHeader(error_code ec) {
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

  if (AuthEndpoint ep =
          MatchAuthEndpoint(SV(req.target()), sh_->options.auth_request_path);
      ep != AuthEndpoint::kNone) {
    return ServeAuthRequest(ep);
  }

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
        return SendLocal(IsHealthy(snap) ? 200 : 503, RenderSessionHealth(snap),
                         false, "application/json; charset=utf-8");
      }
      return SendLocal(200, RenderDashboard(snap), false,
                       "application/json; charset=utf-8");
    }
  }

  sh_->metrics->CountDecision(decision.reason_id);
  if (!sh_->has_upstream) {
    return SendLocal(404, "not found (auth_request mode: no --upstream)\n",
                     false);
  }
  is_upgrade_ = req_->upgrade();
  session_flow_ = sh_->options.shadow || !decision.bypass;
  if (!session_flow_) return PrepareUpstreamRequest();

  // Known-dead service and fail-closed: no need to try.
  if (sh_->options.fail_mode == FailMode::kClosed &&
      sh_->flow->breaker().state() == BreakerState::kOpen) {
    sh_->metrics->CountSessionStatus(SessionStatus::kUnavailable);
    return SendLocal(503, "session service unavailable\n", false);
  }
  // The anonymous session limit counts the client the classifier sees.
  session_ = sh_->flow->Verify(view.cookie,
                               sh_->classifier->ClientIp(view).value_or(
                                   peer_ip_.value_or(classifier::IpAddress{})));
  if (!session_.needs_fetch) return OnSession();
  FetchSessionThen(&ProxyConnection::OnSession);
}

void ProxyConnection::FetchSessionThen(void (ProxyConnection::*next)()) {
  sh_->flow->Fetch(std::move(session_), [self = shared_from_this(),
                                         next](SessionState state) mutable {
    // Back on this connection's strand before touching it.
    auto ex = self->sock_.get_executor();
    ProxyConnection* raw = self.get();
    net::post(ex, [self = std::move(self), raw, next,
                   state = std::move(state)]() mutable {
      raw->session_ = std::move(state);
      (raw->*next)();
    });
  });
}

void ProxyConnection::OnSession() {
  if (session_.status == SessionStatus::kUnavailable &&
      sh_->options.fail_mode == FailMode::kClosed) {
    return SendLocal(503, "session service unavailable\n", false);
  }
  PrepareUpstreamRequest();
}

void ProxyConnection::ResetExchange() {
  is_head_ = false;
  req_sr_.reset();
  resp_sr_.reset();
  flat_response_ = false;
  for (std::string* s : {&head_out_, &session_field_}) {
    s->clear();
    if (s->capacity() > kIdleBufferBytes) s->shrink_to_fit();
  }
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

void ProxyConnection::SendLocal(int status, std::string body, bool close,
                                std::string_view content_type,
                                const HeaderList& extra) {
  up_.reset();
  if (req_ && !req_->is_done()) close = true;  // unread body
  if (!req_) close = true;
  if (sh_->closing.load(std::memory_order_acquire)) close = true;
  // Draining: the client reconnects to a ready edge (UpstreamExchange).
  if (sh_->draining.load(std::memory_order_acquire)) close = true;
  if (!client_keep_alive_) close = true;
  keep_alive_ = !close;
  local_ = std::make_unique<http::response<http::string_body>>(
      static_cast<http::status>(status), 11);
  local_->set(http::field::content_type, BV(content_type));
  local_->set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : extra) local_->insert(BV(name), value);
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

void ProxyConnection::CloseGracefully() {
  error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  op_ = ClientOp::kWrite;  // a timeout just closes
  deadline_ = SteadyClock::now() + kLingerTime;
  if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
  Linger();
}

void ProxyConnection::Linger() {
  if (!req_buf_) req_buf_ = w_->buffers.Get();
  sock_.async_read_some(net::buffer(req_buf_.get(), kRelayBufferBytes),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->Close();
                          self->Linger();
                        });
}

void ProxyConnection::Abort() {
  up_.reset();
  Close();
}

void ProxyConnection::Close() {
  if (op_ == ClientOp::kDone) return;
  op_ = ClientOp::kDone;
  error_code ec;
  sock_.shutdown(tcp::socket::shutdown_both, ec);
  sock_.close(ec);
  timer_.cancel();
}

}  // namespace sg::edge::proxy
