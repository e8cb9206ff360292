// ProxyConnection: the nginx auth_request endpoints (edge/auth_request.h).
// The check classifies the request nginx describes and, when it needs a
// session, verifies the cookie and reads the session; the commit applies an
// application's directives with the proxy's session flow. Both answer
// locally and never touch the upstream.
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "edge/auth_request.h"
#include "edge/http/text_util.h"
#include "edge/proxy/proxy_connection.h"
#include "edge/session_protocol.h"

namespace sg::edge::proxy {
namespace {

constexpr std::string_view kUnavailable = "session service unavailable\n";

}  // namespace

// The client a commit creates a session for, for the anonymous session
// limit: the right-most X-Forwarded-For hop (the application passes on
// what nginx sent) that is not a trusted proxy. The committing peer is
// already an allowed one. None when the commit names no client: the
// application's own address would put every visitor in one bucket.
std::optional<classifier::IpAddress> ProxyConnection::CommitClient(
    const http::request<http::buffer_body>& req) const {
  std::string_view xff;
  auto xffs = req.equal_range(BV(kXff));
  for (auto it = xffs.first; it != xffs.second; ++it) xff = SV(it->value());
  if (xff.empty()) xff = SV(req[BV(kHdrRealIp)]);
  std::optional<classifier::IpAddress> client;
  while (!xff.empty()) {
    const size_t comma = xff.rfind(',');
    const std::string_view hop =
        comma == std::string_view::npos ? xff : xff.substr(comma + 1);
    xff = comma == std::string_view::npos ? std::string_view()
                                          : xff.substr(0, comma);
    client = classifier::IpAddress::Parse(hop);
    if (!client) return std::nullopt;  // garbage: do not guess
    if (sh_->trusted_proxies.Match(*client) < 0) return client;
  }
  return client;  // all hops trusted: the left-most
}

void ProxyConnection::ServeAuthRequest(AuthEndpoint endpoint) {
  // Never a session of its own; counted like the edge's JSON endpoints
  // when refused, by the original request's reason when checked.
  if (!peer_ip_ || sh_->auth_request_allow.Match(*peer_ip_) < 0) {
    sh_->metrics->CountDecision(sh_->metrics->edge_endpoint_reason());
    return SendLocal(403,
                     "auth_request endpoint: this peer is not allowed "
                     "(--trusted-proxies, --auth-request-allow)\n",
                     false);
  }
  if (endpoint == AuthEndpoint::kCommit) return AuthCommit();
  AuthCheck();
}

void ProxyConnection::AuthCheck() {
  auto& req = req_->get();
  auto original = ParseOriginalRequest(SV(req[BV(kHdrOriginalUri)]),
                                       SV(req[BV(kHdrOriginalUrl)]),
                                       SV(req[BV(kHdrOriginalMethod)]));
  if (!original.ok()) {
    sh_->metrics->CountDecision(sh_->metrics->edge_endpoint_reason());
    return SendLocal(400, Cat(original.status().message(), "\n"), false);
  }
  std::string_view xff;
  auto xffs = req.equal_range(BV(kXff));
  for (auto it = xffs.first; it != xffs.second; ++it) {
    xff = SV(it->value());  // the last one: its right-most hops count
  }
  // ingress-nginx and `proxy_set_header X-Real-IP $remote_addr` configs.
  if (xff.empty()) xff = SV(req[BV(kHdrRealIp)]);
  classifier::RequestView view;
  view.method = original->method;
  view.target = original->target;
  view.upgrade = SV(req[http::field::upgrade]);
  view.user_agent = SV(req[http::field::user_agent]);
  view.accept = SV(req[http::field::accept]);
  view.cookie = SV(req[http::field::cookie]);
  view.peer = peer_ip_;
  view.x_forwarded_for = xff;
  const classifier::Decision decision = sh_->classifier->Classify(view);
  sh_->metrics->CountDecision(decision.reason_id);
  if (decision.bypass && !sh_->options.shadow) {
    return SendLocal(
        200, "", false, "text/plain; charset=utf-8",
        {{std::string(kHdrBypassOut),
          std::string(sh_->classifier->ReasonName(decision.reason_id))}});
  }
  if (sh_->options.fail_mode == FailMode::kClosed &&
      sh_->flow->breaker().state() == BreakerState::kOpen) {
    sh_->metrics->CountSessionStatus(SessionStatus::kUnavailable);
    return SendLocal(503, std::string(kUnavailable), false);
  }
  session_ = sh_->flow->Verify(view.cookie);
  if (!session_.needs_fetch) return OnAuthSession();
  FetchSessionThen(&ProxyConnection::OnAuthSession);
}

void ProxyConnection::OnAuthSession() {
  if (session_.status == SessionStatus::kUnavailable &&
      sh_->options.fail_mode == FailMode::kClosed) {
    return SendLocal(503, std::string(kUnavailable), false);
  }
  std::optional<std::string> cookie;
  switch (CheckCookieAction(session_)) {
    case CookieAction::kClear:
      cookie = sh_->flow->ClearCookie();
      break;
    case CookieAction::kReissue:
      cookie = sh_->flow->IssueCookie(session_.id, std::nullopt);
      break;
    case CookieAction::kNone:
      break;
  }
  SendLocal(200, "", false, "text/plain; charset=utf-8",
            CheckReplyHeaders(session_, cookie));
}

void ProxyConnection::AuthCommit() {
  auto& req = req_->get();
  if (req.method() != http::verb::post) {
    return SendLocal(405, "the commit endpoint takes POST\n", false,
                     "text/plain; charset=utf-8", {{"Allow", "POST"}});
  }
  RawDirectives raw;
  for (auto it = req.begin(); it != req.end(); ++it) {
    raw.Offer(SV(it->name_string()), SV(it->value()));
  }
  SessionDirectives directives = ParseDirectives(raw);
  session_ = sh_->flow->Verify(SV(req[http::field::cookie]), CommitClient(req));
  if (!session_.needs_fetch) return OnAuthCommitSession(std::move(directives));
  // The version the check read: CAS against it, as the proxy does against
  // the version its own Get read. Without one, read now.
  if (auto version = DecodeVersionToken(SV(req[BV(kHdrVersion)]))) {
    session_.needs_fetch = false;
    session_.status = SessionStatus::kLoaded;
    session_.version = *std::move(version);
    return OnAuthCommitSession(std::move(directives));
  }
  sh_->flow->Fetch(
      std::move(session_),
      [self = shared_from_this(), directives = std::move(directives)](
          SessionState state) mutable {
        auto ex = self->sock_.get_executor();
        ProxyConnection* raw_self = self.get();
        net::post(ex, [self = std::move(self), raw_self,
                       state = std::move(state),
                       directives = std::move(directives)]() mutable {
          raw_self->session_ = std::move(state);
          raw_self->OnAuthCommitSession(std::move(directives));
        });
      });
}

void ProxyConnection::OnAuthCommitSession(SessionDirectives directives) {
  sh_->flow->Apply(
      std::move(session_), std::move(directives),
      [self = shared_from_this()](ApplyResult result) mutable {
        auto ex = self->sock_.get_executor();
        ProxyConnection* raw_self = self.get();
        net::post(ex, [self = std::move(self), raw_self,
                       result = std::move(result)]() mutable {
          // As on the proxy path: fail-closed turns a failed write into
          // 503 (the application should not send its response);
          // fail-open lets the response go out without the change.
          if (result.failed &&
              raw_self->sh_->options.fail_mode == FailMode::kClosed) {
            return raw_self->SendLocal(
                503, "session service unavailable: change not applied\n",
                false);
          }
          HeaderList headers;
          if (result.reject) {  // --anon-session-over-limit=reject
            return raw_self->SendLocal(
                429, "too many new sessions from this address\n", false,
                "text/plain; charset=utf-8",
                {{"Retry-After",
                  std::to_string(absl::ToInt64Seconds(result.retry_after))}});
          }
          if (result.failed) headers.emplace_back("X-Session-Result", "failed");
          if (result.set_cookie) {
            headers.emplace_back("Set-Cookie", *std::move(result.set_cookie));
          }
          raw_self->SendLocal(200, "", false, "text/plain; charset=utf-8",
                              headers);
        });
      });
}

}  // namespace sg::edge::proxy
