// The session flow of requests that need a session: cookie verification,
// the one Get per request, and applying the upstream's directives. No
// HTTP here: the proxy hands in header values and gets back header values.
//
// Concurrency semantics (several requests of one session in flight):
//  * Each request reads the session once (Get with touch) and remembers the
//    version it saw.
//  * X-Session-Set is a whole-value write, applied with Update(expected
//    version = the version read). If another request wrote in between, the
//    edge re-reads the session: when it still exists the write is applied
//    on top of the new version (last writer wins, whole value; counted in
//    sg_edge_session_write_conflicts_total{resolution="overwritten"}), at
//    most kMaxCasAttempts times; when it is gone (destroyed, rotated away
//    or expired) the write is dropped (resolution="dropped") and no cookie
//    is sent, so a request can never bring back a destroyed session, and a
//    slow request cannot clear the cookie a concurrent login just issued.
//  * X-Session-Destroy deletes unconditionally: a logout wins over any
//    concurrent write (the service's tombstone stops replicated
//    resurrection).
//  * X-Session-Principal / X-Session-Regenerate rotate with Regenerate,
//    which fails when the session is gone. A login on a vanished session
//    creates a fresh session (new id, none of the old data): logging in is
//    an explicit intent. A plain regenerate on a vanished session does
//    nothing.
//  * A session created for a request that carried none (or a gone one)
//    and no login (X-Session-Principal) first takes a token from the
//    client's bucket (edge/anon_session_limiter.h, --anon-session-rate).
//    Without one nothing is created and no cookie is sent; with
//    --anon-session-over-limit=reject the result asks for a 429. Logins
//    and requests that had a loaded session are never limited.
//  * With status "unavailable" (the service could not be read) no write is
//    attempted: the edge does not know whether a session exists and must
//    not orphan it by minting a new one.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "edge/anon_session_limiter.h"
#include "edge/circuit_breaker.h"
#include "edge/classifier/ip.h"
#include "edge/metrics.h"
#include "edge/session_cookie.h"
#include "edge/session_protocol.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::edge {

// Asynchronous access to the session service. Callbacks run exactly once,
// on any thread; they must not block. Implementations are thread-safe.
class SessionBackend {
 public:
  template <typename T>
  using Callback = std::function<void(absl::StatusOr<T>)>;
  virtual ~SessionBackend() = default;
  virtual void Get(sessiongrid::v1::GetRequest request,
                   Callback<sessiongrid::v1::GetResponse> done) = 0;
  virtual void Create(sessiongrid::v1::CreateRequest request,
                      Callback<sessiongrid::v1::CreateResponse> done) = 0;
  virtual void Update(sessiongrid::v1::UpdateRequest request,
                      Callback<sessiongrid::v1::UpdateResponse> done) = 0;
  virtual void Delete(sessiongrid::v1::DeleteRequest request,
                      Callback<sessiongrid::v1::DeleteResponse> done) = 0;
  virtual void Regenerate(
      sessiongrid::v1::RegenerateRequest request,
      Callback<sessiongrid::v1::RegenerateResponse> done) = 0;
};

// The session a request carries, after verification and the Get.
struct SessionState {
  SessionStatus status = SessionStatus::kNone;
  CookieVerdict cookie = CookieVerdict::kMissing;
  int key_index = -1;                // secret that verified the cookie
  std::string id;                    // verified cookie id (also when expired)
  std::string data;                  // loaded only
  std::string principal;             // loaded only
  sessiongrid::v1::Version version;  // loaded only
  // True when the cookie needs a Get (verified, not yet fetched).
  bool needs_fetch = false;
  // The client as the classifier sees it (XFF from trusted proxies): the
  // key of the anonymous session limit. None: not limited.
  std::optional<classifier::IpAddress> client;
};

// What the response needs after the directives were applied.
struct ApplyResult {
  // A Set-Cookie value to add, when the session was created, rotated,
  // destroyed (a clearing cookie) or verified with an old key.
  std::optional<std::string> set_cookie;
  // The service failed while applying; in fail-closed mode the proxy
  // answers 503 instead of the upstream's response.
  bool failed = false;
  // A new anonymous session was refused by the limit in reject mode: the
  // proxy answers 429 with Retry-After (whole seconds) instead.
  bool reject = false;
  absl::Duration retry_after = absl::ZeroDuration();
};

struct SessionFlowOptions {
  std::string cookie_name = "connect.sid";
  SetCookieOptions cookie;
  // TTL for new sessions; zero: the service's default.
  absl::Duration session_ttl = absl::ZeroDuration();
  CircuitBreakerOptions breaker;
  // New anonymous sessions per client (rate 0: no limit).
  AnonSessionLimiterOptions anon_limit;

  absl::Status Validate() const;
};

// Shared by all proxy threads. Thread-safe.
class SessionFlow final {
 public:
  static constexpr int kMaxCasAttempts = 3;

  // `backend`, `signer`, `metrics` and `clock` must outlive the flow.
  // Options must Validate().
  SessionFlow(SessionFlowOptions options, SessionBackend* backend,
              const CookieSigner* signer, EdgeMetrics* metrics,
              const Clock* clock);
  SessionFlow(const SessionFlow&) = delete;
  SessionFlow& operator=(const SessionFlow&) = delete;

  // Verifies the session cookie of a Cookie header (synchronous, counted).
  // The result has needs_fetch set when Fetch() must run; otherwise its
  // status is final (none). `client` keys the anonymous session limit.
  SessionState Verify(
      std::string_view cookie_header,
      std::optional<classifier::IpAddress> client = std::nullopt) const;

  // Reads the session with one Get (touch) unless the breaker is open.
  // `done` gets the state with status loaded, expired or unavailable.
  void Fetch(SessionState state, std::function<void(SessionState)> done);

  // Applies the upstream's directives (see the header comment for the
  // semantics). `done` runs exactly once, possibly inline.
  void Apply(SessionState state, SessionDirectives directives,
             std::function<void(ApplyResult)> done);

  // The Set-Cookie value for a session id / for clearing the cookie.
  std::string IssueCookie(std::string_view id,
                          std::optional<absl::Duration> max_age) const;
  std::string ClearCookie() const;

  const CircuitBreaker& breaker() const { return breaker_; }
  CircuitBreaker& breaker() { return breaker_; }
  const SessionFlowOptions& options() const { return options_; }
  // Session calls started and not yet completed (for shutdown).
  int64_t inflight_calls() const {
    return inflight_.load(std::memory_order_acquire);
  }

 private:
  class ApplyOp;
  friend class ApplyOp;

  // Runs a backend call through the breaker, timing and counting it.
  template <typename Resp, typename Req, typename Method>
  void Call(SessionMethod method, Req request, Method backend_method,
            std::function<void(absl::StatusOr<Resp>)> done);

  const SessionFlowOptions options_;
  SessionBackend* const backend_;
  const CookieSigner* const signer_;
  EdgeMetrics* const metrics_;
  const Clock* const clock_;
  CircuitBreaker breaker_;
  std::unique_ptr<AnonSessionLimiter> limiter_;  // null: no limit
  std::atomic<int64_t> inflight_{0};
};

// Classifies a call's outcome for metrics and the breaker.
CallResult ResultOf(const absl::Status& status);

}  // namespace sg::edge
