// The one body relay, for both directions: the request body from the
// client to the upstream and the response body back. A parser with a
// buffer_body fills a lent buffer of kRelayBufferBytes, the serializer
// writes it on (a response without chunk framing: a plain write behind
// its flat head, WriteFlatResponse), until the parser is done; nothing is
// buffered whole and chunked bodies are re-chunked. A direction (RequestBody,
// ResponseBody) says where to read and write and what a failure means:
//   parser()           the parser the body comes from;
//   buffer()           the relay buffer (borrowed from the worker's pool);
//   Read(h)            one parser read, always asynchronous; h(error_code);
//   Write(h)           write what was read; may call h(error_code) at once;
//   ReadFailed(ec), WriteFailed(ec), Done().
// Since every read is asynchronous, the loop never recurses.
//
// Included only by upstream_exchange.cc, where the relay starts.
#pragma once

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http.hpp>
#include <utility>

#include "edge/proxy/proxy_connection.h"

namespace sg::edge::proxy {

// Client -> upstream. A read waits under --header-timeout (408); a
// failed write is an upstream failure; then the response head.
struct ProxyConnection::RequestBody {
  ProxyConnection* c;

  http::request_parser<http::buffer_body>& parser() { return *c->req_; }
  char* buffer() {
    if (!c->req_buf_) c->req_buf_ = c->w_->buffers.Get();
    return c->req_buf_.get();
  }
  template <class Handler>
  void Read(Handler h) {
    c->op_ = ClientOp::kBody;
    c->SetDeadline(c->sh_->options.header_timeout);
    http::async_read_some(c->sock_, c->cbuf_, *c->req_,
                          [self = c->shared_from_this(), h = std::move(h)](
                              error_code ec, size_t) mutable {
                            self->op_ = ClientOp::kNone;
                            self->ClearDeadline();
                            h(ec);
                          });
  }
  template <class Handler>
  void Write(Handler h) {
    c->up_->stream.expires_after(Chrono(c->sh_->options.upstream_timeout));
    http::async_write(
        c->up_->stream, *c->req_sr_,
        [h = std::move(h)](error_code ec, size_t) mutable { h(ec); });
  }
  void ReadFailed(error_code ec) {
    c->up_.reset();  // a half-sent request: never reuse
    if (c->timed_out_) return c->SendLocal(408, "request timeout\n", true);
    if (ec == http::error::body_limit) {
      return c->SendLocal(413, "payload too large\n", true);
    }
    if (IsHttpError(ec) && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return c->SendLocal(400, "bad request\n", true);
    }
    c->Abort();
  }
  void WriteFailed(error_code ec) {
    c->OnUpstreamFailure(ec, /*wrote_body=*/true);
  }
  void Done() { c->ReadResponseHeader(); }
};

// Upstream -> client. A read waits under --upstream-timeout; a write is
// tried at once and waits under --idle-timeout only when the client is
// slow; then the exchange is finished.
struct ProxyConnection::ResponseBody {
  ProxyConnection* c;

  http::response_parser<http::buffer_body>& parser() { return *c->resp_; }
  char* buffer() {
    if (!c->resp_buf_) c->resp_buf_ = c->w_->buffers.Get();
    return c->resp_buf_.get();
  }
  template <class Handler>
  void Read(Handler h) {
    c->up_->stream.expires_after(Chrono(c->sh_->options.upstream_timeout));
    http::async_read_some(
        c->up_->stream, c->up_->buffer, *c->resp_,
        [h = std::move(h)](error_code ec, size_t) mutable { h(ec); });
  }
  template <class Handler>
  void Write(Handler h) {
    if (c->flat_response_) {
      const auto& body = parser().get().body();
      return c->WriteFlatResponse(net::const_buffer(body.data, body.size),
                                  std::move(h));
    }
    error_code ec;
    http::write(c->sock_, *c->resp_sr_, ec);
    if (!IsWouldBlock(ec)) return h(ec);
    c->op_ = ClientOp::kWrite;
    c->SetDeadline(c->sh_->options.idle_timeout);
    http::async_write(c->sock_, *c->resp_sr_,
                      [self = c->shared_from_this(), h = std::move(h)](
                          error_code ec, size_t) mutable {
                        self->op_ = ClientOp::kNone;
                        self->ClearDeadline();
                        h(ec);
                      });
  }
  void ReadFailed(error_code ec) {
    // The upstream broke mid-response: the client cannot be told
    // otherwise than by closing.
    c->sh_->metrics->CountUpstreamError(ec == beast::error::timeout
                                            ? UpstreamError::kResponseTimeout
                                            : UpstreamError::kProtocol);
    if (!c->ResponseHeadSent()) {  // nothing sent yet: say so
      c->up_.reset();
      return c->SendLocal(502, "bad gateway\n", true);
    }
    c->Abort();
  }
  void WriteFailed(error_code) { c->Abort(); }
  void Done() { c->FinishExchange(); }
};

template <class Handler>
void ProxyConnection::WriteFlatResponse(net::const_buffer body, Handler h) {
  const std::array<net::const_buffer, 2> bufs{net::buffer(head_out_), body};
  error_code ec;
  const size_t n = net::write(sock_, bufs, ec);
  if (!IsWouldBlock(ec)) {
    if (!ec) head_out_.clear();
    return h(ec);
  }
  beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(bufs);
  rest.consume(n);
  op_ = ClientOp::kWrite;
  SetDeadline(sh_->options.idle_timeout);
  net::async_write(sock_, rest,
                   [self = shared_from_this(), h = std::move(h)](
                       error_code ec, size_t) mutable {
                     self->op_ = ClientOp::kNone;
                     self->ClearDeadline();
                     if (!ec) self->head_out_.clear();
                     h(ec);
                   });
}

// Lends the relay buffer to the parser for the next read.
template <class Dir>
void ProxyConnection::ArmRelayRead() {
  Dir dir{this};
  auto& body = dir.parser().get().body();
  body.data = dir.buffer();
  body.size = kRelayBufferBytes;
}

template <class Dir>
void ProxyConnection::RelayRead() {
  ArmRelayRead<Dir>();
  Dir{this}.Read([self = shared_from_this()](error_code ec) {
    self->RelayWrite<Dir>(ec);
  });
}

// Hands what the read produced to the serializer.
template <class Dir>
void ProxyConnection::RelayWrite(error_code read_ec) {
  Dir dir{this};
  if (read_ec == http::error::need_buffer) read_ec = {};
  if (read_ec) return dir.ReadFailed(read_ec);
  auto& parser = dir.parser();
  auto& body = parser.get().body();
  const size_t n = kRelayBufferBytes - body.size;
  body.data = n > 0 ? dir.buffer() : nullptr;
  body.size = n;
  body.more = !parser.is_done();
  if (n == 0 && body.more) return RelayRead<Dir>();
  dir.Write(
      [self = shared_from_this()](error_code ec) { self->RelayNext<Dir>(ec); });
}

template <class Dir>
void ProxyConnection::RelayNext(error_code write_ec) {
  Dir dir{this};
  if (write_ec == http::error::need_buffer) write_ec = {};
  if (write_ec) return dir.WriteFailed(write_ec);
  if (dir.parser().is_done()) return dir.Done();
  RelayRead<Dir>();
}

}  // namespace sg::edge::proxy
