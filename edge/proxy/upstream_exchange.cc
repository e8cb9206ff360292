// ProxyConnection: the exchange with the upstream. Rewrites the request
// head (hop-by-hop fields, X-Forwarded-*, Via, the session protocol),
// takes a pooled connection or opens one, writes the request head, retries
// once on a stale pooled connection, reads the response head, applies the
// session directives, and writes the response head. The bodies go through
// the relay in body_relay.h.
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <limits>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "edge/http/text_util.h"
#include "edge/proxy/body_relay.h"
#include "edge/proxy/head_text.h"
#include "edge/proxy/proxy_connection.h"
#include "edge/proxy_headers.h"
#include "edge/session_protocol.h"

namespace sg::edge::proxy {
namespace {

constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr std::string_view kVia = "1.1 sessiongrid-edge";

}  // namespace

void ProxyConnection::PrepareUpstreamRequest() {
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
    if (host_copy.empty()) req.set(http::field::host, sh_->upstream_authority);
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

  if (session_flow_) {  // session_field_ is empty: ResetExchange
    req.set(BV("X-Session-Status"), BV(SessionStatusName(session_.status)));
    if (session_.status == SessionStatus::kLoaded) {
      req.set(BV("X-Session-Id"), session_.id);
      if (FlatRequest()) {
        // The largest field (the data's base64) skips Beast's field
        // storage: written behind the head's fields, into a reused string.
        session_field_.append("X-Session-Data: ");
        AppendSessionData(session_.data, session_field_);
        session_field_.append("\r\n");
      } else {
        req.set(BV("X-Session-Data"), EncodeSessionData(session_.data));
      }
      if (!session_.principal.empty()) {
        req.set(BV("X-Session-Principal"), session_.principal);
      }
    }
  }
  AcquireUpstream();
}

void ProxyConnection::AcquireUpstream() {
  up_ = retried_
            ? nullptr
            : w_->pool.Take(/*retryable=*/!body_pending_ && method_idempotent_);
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

void ProxyConnection::OnConnected(error_code ec) {
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

void ProxyConnection::WriteRequestHeader() {
  upstream_start_ = SteadyClock::now();
  if (FlatRequest()) return WriteFlatRequestHeader();
  req_sr_.emplace(req_->get());
  if (!req_->is_done() && !expect_continue_ && cbuf_.size() > 0) {
    // Body bytes already arrived with the head: parse them first and send
    // head and body in one write.
    return RelayRead<RequestBody>();
  }
  error_code ec;
  http::write_header(up_->stream.socket(), *req_sr_, ec);
  if (!IsWouldBlock(ec)) return AfterRequestHeader(ec);
  up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
  http::async_write_header(up_->stream, *req_sr_,
                           [self = shared_from_this()](error_code ec, size_t) {
                             self->AfterRequestHeader(ec);
                           });
}

void ProxyConnection::WriteFlatRequestHeader() {
  head_out_.clear();
  AppendHeadText(req_->get().base(), head_out_, session_field_);
  error_code ec;
  const size_t n = net::write(up_->stream.socket(), net::buffer(head_out_), ec);
  if (!IsWouldBlock(ec)) return AfterRequestHeader(ec);
  up_->stream.expires_after(Chrono(sh_->options.upstream_timeout));
  net::async_write(up_->stream, net::buffer(head_out_) + n,
                   [self = shared_from_this()](error_code ec, size_t) {
                     self->AfterRequestHeader(ec);
                   });
}

void ProxyConnection::AfterRequestHeader(error_code ec) {
  if (ec) return OnUpstreamFailure(ec, /*wrote_body=*/false);
  if (req_->is_done()) return ReadResponseHeader();
  if (expect_continue_) return SendContinue();
  RelayRead<RequestBody>();
}

bool ProxyConnection::CanRetry() const {
  return up_reused_ && !retried_ && !body_pending_ && method_idempotent_;
}

void ProxyConnection::OnUpstreamFailure(error_code ec, bool wrote_body) {
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

void ProxyConnection::SendContinue() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  op_ = ClientOp::kWrite;
  SetDeadline(sh_->options.idle_timeout);
  net::async_write(sock_, net::buffer(kContinue.data(), kContinue.size()),
                   [self = shared_from_this()](error_code ec, size_t) {
                     if (ec) return self->Abort();
                     self->RelayRead<RequestBody>();
                   });
}

void ProxyConnection::ReadResponseHeader() {
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

void ProxyConnection::OnResponseHeader(error_code ec) {
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
  if (session_flow_ &&
      (directives.any() || directives.invalid > 0 ||
       (session_.status == SessionStatus::kLoaded && session_.key_index > 0))) {
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

void ProxyConnection::OnApplied(ApplyResult result) {
  if (result.failed && sh_->options.fail_mode == FailMode::kClosed) {
    up_.reset();  // its body is unread
    return SendLocal(503, "session service unavailable\n", false);
  }
  if (result.reject) {  // --anon-session-over-limit=reject
    up_.reset();
    return SendLocal(
        429, "too many new sessions from this address; retry later\n", false,
        "text/plain; charset=utf-8",
        {{"Retry-After",
          std::to_string(absl::ToInt64Seconds(result.retry_after))}});
  }
  if (result.set_cookie) {
    resp_->get().insert(http::field::set_cookie, *result.set_cookie);
  }
  WriteResponseHeader();
}

void ProxyConnection::WriteResponseHeader() {
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
    // Draining (the drain delay, /readyz failing): each client's next
    // response closes its connection, so it reconnects through the Service
    // to a ready edge instead of racing the close of an idle connection
    // when the listener goes (a reset a non-idempotent request cannot retry).
    keep_alive_ = client_keep_alive_ && !must_close_ &&
                  !sh_->draining.load(std::memory_order_acquire) &&
                  !sh_->closing.load(std::memory_order_acquire);
    res.keep_alive(keep_alive_);
    if (keep_alive_ && client_version_ < 11) {
      res.set(http::field::connection, "keep-alive");
    }
  }
  res.version(11);
  sh_->metrics->CountResponse(res.result_int());
  // Without chunk framing the body goes out as it came, behind one flat
  // head; otherwise Beast's serializer frames it.
  flat_response_ = !tunnel && !res.chunked();
  if (flat_response_) {
    head_out_.clear();
    AppendHeadText(res.base(), head_out_);
  } else {
    resp_sr_.emplace(res);
  }
  if (!tunnel && has_body_ && up_->buffer.size() > 0) {
    // Body bytes came with the head (the usual small response): parse
    // them now and send head and body in one write. Otherwise the head
    // goes out alone, at once (a streaming upstream may pause).
    ArmRelayRead<ResponseBody>();
    error_code ec;
    http::read_some(up_->stream.socket(), up_->buffer, *resp_, ec);
    if (IsWouldBlock(ec)) ec = {};
    return RelayWrite<ResponseBody>(ec);
  }
  if (flat_response_) {
    return WriteFlatResponse({}, [this](error_code ec) {
      if (ec) return Abort();
      if (!has_body_) return FinishExchange();
      RelayRead<ResponseBody>();
    });
  }
  if (!tunnel) {
    error_code ec;
    http::write_header(sock_, *resp_sr_, ec);
    if (!IsWouldBlock(ec)) {
      if (ec) return Abort();
      if (!has_body_) return FinishExchange();
      return RelayRead<ResponseBody>();
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
        self->RelayRead<ResponseBody>();
      });
}

void ProxyConnection::FinishExchange() {
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

}  // namespace sg::edge::proxy
