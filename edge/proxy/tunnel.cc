// ProxyConnection: after a 101 answer to an upgrade (WebSocket or any
// other), bytes are pumped both ways until either side closes; a
// half-close is passed on.
#include <boost/asio/write.hpp>

#include "edge/proxy/proxy_connection.h"

namespace sg::edge::proxy {

void ProxyConnection::StartTunnel() {
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

void ProxyConnection::FlushLeftover(bool to_upstream) {
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

void ProxyConnection::PumpRead(bool to_upstream) {
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

void ProxyConnection::OnPumpRead(bool to_upstream, error_code ec, size_t n) {
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
  auto done = [self = shared_from_this(), to_upstream](error_code ec, size_t) {
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

void ProxyConnection::EndTunnel() {
  if (op_ == ClientOp::kDone) return;
  if (up_) {
    error_code ignored;
    up_->stream.socket().close(ignored);
  }
  Close();
}

}  // namespace sg::edge::proxy
