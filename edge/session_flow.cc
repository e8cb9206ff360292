#include "edge/session_flow.h"

#include <cstdlib>
#include <utility>

namespace sg::edge {

namespace v1 = ::sessiongrid::v1;

CallResult ResultOf(const absl::Status& status) {
  if (status.ok()) return CallResult::kOk;
  if (status.code() == absl::StatusCode::kNotFound)
    return CallResult::kNotFound;
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    return CallResult::kConflict;
  }
  if (CircuitBreaker::IsFailure(status)) return CallResult::kError;
  return CallResult::kInvalid;
}

absl::Status SessionFlowOptions::Validate() const {
  if (!IsCookieName(cookie_name)) {
    return absl::InvalidArgumentError("cookie_name must be a cookie token");
  }
  if (session_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("session_ttl must be >= 0");
  }
  if (absl::Status s = cookie.Validate(); !s.ok()) return s;
  if (absl::Status s = anon_limit.Validate(); !s.ok()) return s;
  return breaker.Validate();
}

SessionFlow::SessionFlow(SessionFlowOptions options, SessionBackend* backend,
                         const CookieSigner* signer, EdgeMetrics* metrics,
                         const Clock* clock)
    : options_(std::move(options)),
      backend_(backend),
      signer_(signer),
      metrics_(metrics),
      clock_(clock),
      breaker_(options_.breaker, clock) {
  if (options_.anon_limit.enabled()) {
    auto limiter = AnonSessionLimiter::Create(options_.anon_limit, clock);
    // Options were validated (a precondition): a failure is a bug.
    if (!limiter.ok()) std::abort();
    limiter_ = *std::move(limiter);
  }
}

template <typename Resp, typename Req, typename Method>
void SessionFlow::Call(SessionMethod method, Req request, Method backend_method,
                       std::function<void(absl::StatusOr<Resp>)> done) {
  if (!breaker_.Allow()) {
    metrics_->CountCall(method, CallResult::kRejected, absl::ZeroDuration());
    done(absl::UnavailableError("session service circuit breaker is open"));
    return;
  }
  inflight_.fetch_add(1, std::memory_order_acq_rel);
  const absl::Time start = clock_->Now();
  (backend_->*backend_method)(
      std::move(request),
      [this, method, start, done = std::move(done)](absl::StatusOr<Resp> r) {
        breaker_.Record(!CircuitBreaker::IsFailure(r.status()));
        metrics_->CountCall(method, ResultOf(r.status()),
                            clock_->Now() - start);
        done(std::move(r));
        inflight_.fetch_sub(1, std::memory_order_acq_rel);
      });
}

SessionState SessionFlow::Verify(
    std::string_view cookie_header,
    std::optional<classifier::IpAddress> client) const {
  SessionState state;
  state.client = client;
  const VerifiedCookie cookie =
      signer_->VerifyHeader(cookie_header, options_.cookie_name);
  metrics_->CountCookie(cookie.verdict());
  state.cookie = cookie.verdict();
  if (cookie.ok()) {
    if (cookie.key_index() > 0) metrics_->CountCookieOldKey();
    state.id = std::string(cookie.id());
    state.key_index = cookie.key_index();
    state.needs_fetch = true;
  } else {
    metrics_->CountSessionStatus(SessionStatus::kNone);
  }
  return state;
}

void SessionFlow::Fetch(SessionState state,
                        std::function<void(SessionState)> done) {
  v1::GetRequest request;
  request.set_id(state.id);
  request.set_touch(true);
  Call<v1::GetResponse>(
      SessionMethod::kGet, std::move(request), &SessionBackend::Get,
      [this, state = std::move(state),
       done = std::move(done)](absl::StatusOr<v1::GetResponse> r) mutable {
        state.needs_fetch = false;
        if (r.ok()) {
          state.status = SessionStatus::kLoaded;
          v1::Session* s = r->mutable_session();
          state.data = std::move(*s->mutable_data());
          // Written into a request header later: a principal stored by
          // some other client with control bytes in it must not become
          // header lines (the service refuses them, but the edge does not
          // rely on that).
          if (IsValidPrincipal(s->principal())) {
            state.principal = std::move(*s->mutable_principal());
          }
          state.version = s->version();
        } else if (r.status().code() == absl::StatusCode::kNotFound ||
                   r.status().code() == absl::StatusCode::kInvalidArgument) {
          // Gone, or an id the service cannot have issued.
          state.status = SessionStatus::kExpired;
        } else {
          state.status = SessionStatus::kUnavailable;
        }
        metrics_->CountSessionStatus(state.status);
        done(std::move(state));
      });
}

std::string SessionFlow::IssueCookie(
    std::string_view id, std::optional<absl::Duration> max_age) const {
  SetCookieOptions cookie = options_.cookie;
  if (max_age) cookie.max_age_seconds = absl::ToInt64Seconds(*max_age);
  return BuildSetCookie(options_.cookie_name, signer_->EncodedValue(id),
                        cookie);
}

std::string SessionFlow::ClearCookie() const {
  return BuildClearCookie(options_.cookie_name, options_.cookie);
}

// One Apply(): a chain of service calls. Owned by the callbacks in flight
// (shared_ptr); each step runs on whatever thread completed the last call.
class SessionFlow::ApplyOp final
    : public std::enable_shared_from_this<ApplyOp> {
 public:
  ApplyOp(SessionFlow* flow, SessionState state, SessionDirectives d,
          std::function<void(ApplyResult)> done)
      : flow_(flow),
        s_(std::move(state)),
        d_(std::move(d)),
        done_(std::move(done)) {}

  void Start() {
    if (s_.status == SessionStatus::kUnavailable) {
      // Unknown whether a session exists: never mint one over it.
      if (d_.any()) {
        flow_->metrics_->CountSessionWriteFailure();
        result_.failed = true;
      }
      return Finish();
    }
    have_session_ = s_.status == SessionStatus::kLoaded;
    had_session_ = have_session_;
    if (d_.destroy) return Destroy();
    Main();
  }

 private:
  void Destroy() {
    if (!have_session_) {
      // A cookie for a session that is already gone: clear it anyway.
      if (s_.cookie != CookieVerdict::kMissing) {
        result_.set_cookie = flow_->ClearCookie();
      }
      return AfterDestroy();
    }
    v1::DeleteRequest req;
    req.set_id(s_.id);
    auto self = shared_from_this();
    flow_->Call<v1::DeleteResponse>(
        SessionMethod::kDelete, std::move(req), &SessionBackend::Delete,
        [self](absl::StatusOr<v1::DeleteResponse> r) {
          if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
            return self->Fail(r.status());
          }
          if (r.ok() && r->deleted()) {
            self->flow_->metrics_->CountSessionDestroyed();
          }
          self->have_session_ = false;
          self->result_.set_cookie = self->flow_->ClearCookie();
          self->AfterDestroy();
        });
  }

  void AfterDestroy() {
    // "Destroy, then start afresh" when the same response also stores data
    // or logs in.
    if (d_.data || d_.principal) return Create();
    Finish();
  }

  void Main() {
    if (d_.principal || d_.regenerate) {
      if (have_session_) return Regenerate();
      if (d_.principal || d_.data) return Create();
      return Finish();
    }
    if (d_.data || d_.ttl) {
      if (have_session_) return UpdateCas(s_.version);
      if (d_.data) return Create();
    }
    MaybeReissue();
    Finish();
  }

  void Create() {
    if (!d_.principal && !had_session_ && !TakeAnonToken()) return Finish();
    v1::CreateRequest req;
    if (d_.data) req.set_data(*d_.data);
    if (d_.principal) req.set_principal(*d_.principal);
    const absl::Duration ttl = d_.ttl.value_or(flow_->options_.session_ttl);
    if (ttl > absl::ZeroDuration()) {
      req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    }
    auto self = shared_from_this();
    flow_->Call<v1::CreateResponse>(
        SessionMethod::kCreate, std::move(req), &SessionBackend::Create,
        [self](absl::StatusOr<v1::CreateResponse> r) {
          if (!r.ok()) return self->Fail(r.status());
          self->flow_->metrics_->CountSessionCreated();
          self->result_.set_cookie =
              self->flow_->IssueCookie(r->session().id(), self->d_.ttl);
          self->Finish();
        });
  }

  void Regenerate() {
    v1::RegenerateRequest req;
    req.set_id(s_.id);
    if (d_.principal) req.set_principal(*d_.principal);
    auto self = shared_from_this();
    flow_->Call<v1::RegenerateResponse>(
        SessionMethod::kRegenerate, std::move(req), &SessionBackend::Regenerate,
        [self](absl::StatusOr<v1::RegenerateResponse> r) {
          if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound) {
            // Gone since we read it: a login starts a fresh session, a bare
            // regenerate has nothing to rotate.
            self->have_session_ = false;
            self->flow_->metrics_->CountConflict(/*dropped=*/true);
            if (self->d_.principal) return self->Create();
            return self->Finish();
          }
          if (!r.ok()) return self->Fail(r.status());
          self->flow_->metrics_->CountSessionRotated();
          const v1::Session& s = r->session();
          self->result_.set_cookie =
              self->flow_->IssueCookie(s.id(), self->d_.ttl);
          if (self->d_.data || self->d_.ttl) {
            return self->UpdateRotated(s.id(), s.version());
          }
          self->Finish();
        });
  }

  // Data/TTL on the freshly rotated id: nobody else knows the id yet.
  void UpdateRotated(const std::string& id, const v1::Version& version) {
    v1::UpdateRequest req;
    req.set_id(id);
    if (d_.data) req.set_data(*d_.data);
    if (d_.ttl) req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(*d_.ttl));
    *req.mutable_expected_version() = version;
    auto self = shared_from_this();
    flow_->Call<v1::UpdateResponse>(
        SessionMethod::kUpdate, std::move(req), &SessionBackend::Update,
        [self](absl::StatusOr<v1::UpdateResponse> r) {
          if (!r.ok()) return self->Fail(r.status());
          self->Finish();
        });
  }

  void UpdateCas(const v1::Version& expected) {
    v1::UpdateRequest req;
    req.set_id(s_.id);
    if (d_.data) req.set_data(*d_.data);
    if (d_.ttl) req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(*d_.ttl));
    *req.mutable_expected_version() = expected;
    auto self = shared_from_this();
    flow_->Call<v1::UpdateResponse>(
        SessionMethod::kUpdate, std::move(req), &SessionBackend::Update,
        [self](absl::StatusOr<v1::UpdateResponse> r) {
          if (r.ok()) {
            self->MaybeReissue();
            return self->Finish();
          }
          switch (r.status().code()) {
            case absl::StatusCode::kNotFound:
              self->flow_->metrics_->CountConflict(/*dropped=*/true);
              return self->Finish();
            case absl::StatusCode::kFailedPrecondition:
              return self->Reread();
            default:
              return self->Fail(r.status());
          }
        });
  }

  // After a version conflict: read the current version and write on top of
  // it (last writer wins), unless the session is gone.
  void Reread() {
    if (++cas_attempts_ >= kMaxCasAttempts) {
      return Fail(absl::AbortedError("session write kept conflicting"));
    }
    v1::GetRequest req;
    req.set_id(s_.id);
    auto self = shared_from_this();
    flow_->Call<v1::GetResponse>(
        SessionMethod::kGet, std::move(req), &SessionBackend::Get,
        [self](absl::StatusOr<v1::GetResponse> r) {
          if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound) {
            self->flow_->metrics_->CountConflict(/*dropped=*/true);
            return self->Finish();
          }
          if (!r.ok()) return self->Fail(r.status());
          self->flow_->metrics_->CountConflict(/*dropped=*/false);
          self->UpdateCas(r->session().version());
        });
  }

  void MaybeReissue() {
    // Complete a secret rotation: re-sign with the current key.
    if (have_session_ && s_.key_index > 0 && !result_.set_cookie) {
      result_.set_cookie = flow_->IssueCookie(s_.id, std::nullopt);
    }
  }

  // False when the client is over its anonymous session limit; then the
  // result carries no cookie (and asks for a 429 in reject mode).
  bool TakeAnonToken() {
    AnonSessionLimiter* limiter = flow_->limiter_.get();
    if (limiter == nullptr || !s_.client) return true;
    const AnonSessionLimiter::Verdict v = limiter->Acquire(*s_.client);
    if (v.allowed) return true;
    const bool reject =
        limiter->options().over_limit == OverLimitAction::kReject;
    flow_->metrics_->CountAnonSessionLimited(reject);
    result_.reject = reject;
    result_.retry_after = v.retry_after;
    // A clearing cookie set before (destroy) stays; nothing new is issued.
    return false;
  }

  void Fail(const absl::Status& status) {
    flow_->metrics_->CountSessionWriteFailure();
    // Only an unhealthy service makes fail-closed answer 503; a refusal
    // (oversized data, memory pressure) is the app's problem and the
    // response goes out without the change.
    if (CircuitBreaker::IsFailure(status) ||
        status.code() == absl::StatusCode::kAborted) {
      result_.failed = true;
    }
    Finish();
  }

  void Finish() {
    auto done = std::move(done_);
    done(std::move(result_));
  }

  SessionFlow* const flow_;
  SessionState s_;
  SessionDirectives d_;
  std::function<void(ApplyResult)> done_;
  ApplyResult result_;
  bool have_session_ = false;
  bool had_session_ = false;  // the request came with a loaded session
  int cas_attempts_ = 0;
};

void SessionFlow::Apply(SessionState state, SessionDirectives directives,
                        std::function<void(ApplyResult)> done) {
  if (directives.invalid > 0)
    metrics_->CountInvalidDirective(directives.invalid);
  auto op = std::make_shared<ApplyOp>(this, std::move(state),
                                      std::move(directives), std::move(done));
  op->Start();
}

}  // namespace sg::edge
