// A client connection on the main listener: reads requests, classifies
// them, runs the session flow, relays each exchange through a pooled
// upstream connection (or answers it locally), tunnels upgrades, and
// closes gracefully. One object per connection, owned by its pending
// handlers (shared_from_this); every member function runs on the thread
// of the worker that accepted it, so nothing here is locked.
//
// The class is implemented in four files, by concern:
//   proxy_connection.cc   life cycle, deadlines, reading and checking
//                         request heads, classification, session lookup,
//                         local replies, closing;
//   upstream_exchange.cc  header rewriting, the upstream pool, request and
//                         response heads, retries, session directives;
//   body_relay.h          the one body relay, both directions;
//   tunnel.cc             the WebSocket (any upgrade) byte tunnel;
//   auth_endpoint.cc      the nginx auth_request check and commit.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "edge/auth_request.h"
#include "edge/classifier/classifier.h"
#include "edge/http/request_validation.h"
#include "edge/proxy/asio_types.h"
#include "edge/proxy/shared_state.h"
#include "edge/proxy/upstream_pool.h"
#include "edge/proxy/worker.h"
#include "edge/session_flow.h"

namespace sg::edge::proxy {

// A read buffer larger than this is released when its connection idles.
inline constexpr size_t kIdleBufferBytes = 8 * 1024;
inline constexpr std::string_view kXff = "X-Forwarded-For";

class ProxyConnection final
    : public std::enable_shared_from_this<ProxyConnection> {
 public:
  // Registers with `worker` and counts the connection open; the count is
  // what --max-connections is checked against.
  ProxyConnection(Shared* shared, Worker* worker, Socket socket);
  ~ProxyConnection();

  ProxyConnection(const ProxyConnection&) = delete;
  ProxyConnection& operator=(const ProxyConnection&) = delete;

  // Runs on the worker thread.
  void Start();
  // Drain: the listener closed. Runs on the worker thread. An idle
  // keep-alive connection closes now; a busy one after its response.
  void OnClosing();

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

  struct Pump {
    std::unique_ptr<char[]> buf;
    bool done = false;
  };

  // ---- deadlines (one timer per connection); proxy_connection.cc ----
  void SetDeadline(absl::Duration d);
  void ClearDeadline() { deadline_ = SteadyClock::time_point::max(); }
  void WatchDeadline();

  // ---- reading requests; proxy_connection.cc ----
  void ReadNext();
  // The head is framed and checked by RequestHeadScanner (strict RFC 9112
  // rules Beast does not apply) before Beast parses it from the buffer.
  // The deadline is set once per head: a head trickled in is cut at
  // --header-timeout however steadily its bytes come.
  void ReadHeader();
  void ScanHead();
  void ParseHead();
  void OnHeader(error_code ec);
  void OnSession();
  // Fetches session_ and continues with `next` on this connection's executor.
  void FetchSessionThen(void (ProxyConnection::*next)());

  // ---- the upstream exchange; upstream_exchange.cc ----
  // Rewrites the request head in place for the upstream.
  void PrepareUpstreamRequest();
  void AcquireUpstream();
  void OnConnected(error_code ec);
  void WriteRequestHeader();
  // A body-less request (so unchunked) goes out as one flat head.
  bool FlatRequest() const { return req_->is_done() && !req_->chunked(); }
  void WriteFlatRequestHeader();
  void AfterRequestHeader(error_code ec);
  // A retry is safe only for a body-less idempotent request on a pooled
  // connection that failed before any response byte.
  bool CanRetry() const;
  void OnUpstreamFailure(error_code ec, bool wrote_body);
  void SendContinue();
  void ReadResponseHeader();
  void OnResponseHeader(error_code ec);
  void OnApplied(ApplyResult result);
  void WriteResponseHeader();
  void FinishExchange();

  // ---- the body relay, both directions; body_relay.h ----
  struct RequestBody;
  struct ResponseBody;
  template <class Dir>
  void ArmRelayRead();
  template <class Dir>
  void RelayRead();
  template <class Dir>
  void RelayWrite(error_code read_ec);
  template <class Dir>
  void RelayNext(error_code write_ec);
  // Without chunk framing (flat_response_): writes head_out_ (empty once
  // sent) and `body` to the client, at once when the socket takes them,
  // else asynchronously under --idle-timeout; then h(error_code).
  template <class Handler>
  void WriteFlatResponse(net::const_buffer body, Handler h);
  bool ResponseHeadSent() {  // Beast's is_header_done() is not const
    return flat_response_ ? head_out_.empty() : resp_sr_->is_header_done();
  }

  // ---- nginx auth_request endpoints; auth_endpoint.cc ----
  // Answers the check or the commit locally (never proxied).
  void ServeAuthRequest(AuthEndpoint endpoint);
  void AuthCheck();
  void OnAuthSession();
  void AuthCommit();
  void OnAuthCommitSession(SessionDirectives directives);
  std::optional<classifier::IpAddress> CommitClient(
      const http::request<http::buffer_body>& req) const;

  // ---- local replies and closing; proxy_connection.cc ----
  void ResetExchange();
  // `extra` header fields are added to the reply as they are.
  void SendLocal(int status, std::string body, bool close,
                 std::string_view content_type = "text/plain; charset=utf-8",
                 const HeaderList& extra = {});
  // Sends FIN, then reads and discards briefly so unread client bytes do
  // not turn the close into a reset that could destroy our last response.
  void CloseGracefully();
  void Linger();
  void Abort();
  void Close();

  // ---- WebSocket (any upgrade) tunnel; tunnel.cc ----
  void StartTunnel();
  void FlushLeftover(bool to_upstream);
  void PumpRead(bool to_upstream);
  void OnPumpRead(bool to_upstream, error_code ec, size_t n);
  void EndTunnel();

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
  // The flat head being written (WriteFlatRequestHeader, WriteFlatResponse).
  std::string head_out_;
  bool flat_response_ = false;
  // "X-Session-Data: ...\r\n" for a flat request head; else empty.
  std::string session_field_;
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

}  // namespace sg::edge::proxy
