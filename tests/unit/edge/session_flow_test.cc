// The session flow against an in-memory fake of the session service, with
// hooks that play a concurrent request between our read and our write.
#include "edge/session_flow.h"

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

namespace v1 = ::sessiongrid::v1;

// Synchronous in-memory SessionService with compare-and-set versions.
class FakeBackend final : public SessionBackend {
 public:
  struct Record {
    std::string data;
    std::string principal;
    int64_t version = 0;
  };

  std::map<std::string, Record> sessions;
  std::map<std::string, int> calls;          // by method
  std::map<std::string, absl::Status> fail;  // injected errors by method
  // Runs just before an Update is applied (a concurrent request).
  std::function<void()> before_update;

  std::string Put(std::string data, std::string principal = "") {
    const std::string id = "id" + std::to_string(++next_id_);
    sessions[id] = {std::move(data), std::move(principal), ++clock_};
    return id;
  }
  void Touch(const std::string& id) { sessions[id].version = ++clock_; }

  void Get(v1::GetRequest r, Callback<v1::GetResponse> done) override {
    if (Injected("get", done)) return;
    auto it = sessions.find(r.id());
    if (it == sessions.end()) return done(absl::NotFoundError("gone"));
    v1::GetResponse resp;
    Fill(it->first, it->second, resp.mutable_session());
    done(resp);
  }
  void Create(v1::CreateRequest r, Callback<v1::CreateResponse> done) override {
    if (Injected("create", done)) return;
    last_create = r;
    const std::string id = Put(r.data(), r.principal());
    v1::CreateResponse resp;
    Fill(id, sessions[id], resp.mutable_session());
    done(resp);
  }
  void Update(v1::UpdateRequest r, Callback<v1::UpdateResponse> done) override {
    if (Injected("update", done)) return;
    if (before_update) {
      auto hook = std::move(before_update);
      before_update = nullptr;
      hook();
    }
    auto it = sessions.find(r.id());
    if (it == sessions.end()) return done(absl::NotFoundError("gone"));
    if (r.has_expected_version() &&
        r.expected_version().wall_millis() != it->second.version) {
      return done(absl::FailedPreconditionError("version"));
    }
    if (r.has_data()) it->second.data = r.data();
    if (r.has_principal()) it->second.principal = r.principal();
    it->second.version = ++clock_;
    v1::UpdateResponse resp;
    Fill(it->first, it->second, resp.mutable_session());
    done(resp);
  }
  void Delete(v1::DeleteRequest r, Callback<v1::DeleteResponse> done) override {
    if (Injected("delete", done)) return;
    v1::DeleteResponse resp;
    resp.set_deleted(sessions.erase(r.id()) > 0);
    done(resp);
  }
  void Regenerate(v1::RegenerateRequest r,
                  Callback<v1::RegenerateResponse> done) override {
    if (Injected("regenerate", done)) return;
    auto it = sessions.find(r.id());
    if (it == sessions.end()) return done(absl::NotFoundError("gone"));
    Record rec = it->second;
    sessions.erase(it);
    if (r.has_principal()) rec.principal = r.principal();
    const std::string id = Put(rec.data, rec.principal);
    v1::RegenerateResponse resp;
    Fill(id, sessions[id], resp.mutable_session());
    resp.set_previous_id(r.id());
    done(resp);
  }

  v1::CreateRequest last_create;

 private:
  template <typename T>
  bool Injected(const std::string& method, Callback<T>& done) {
    ++calls[method];
    auto it = fail.find(method);
    if (it == fail.end()) return false;
    done(it->second);
    return true;
  }
  static void Fill(const std::string& id, const Record& r, v1::Session* s) {
    s->set_id(id);
    s->set_data(r.data);
    s->set_principal(r.principal);
    s->mutable_version()->set_wall_millis(r.version);
  }
  int next_id_ = 0;
  int64_t clock_ = 0;
};

class SessionFlowTest : public ::testing::Test {
 protected:
  SessionFlowTest()
      : signer_(*CookieSigner::Create({"current-secret", "old-secret"})),
        old_signer_(*CookieSigner::Create({"old-secret"})),
        metrics_({"session_required"}),
        flow_(Options(), &backend_, signer_.get(), &metrics_, &clock_) {}

  static SessionFlowOptions Options() {
    SessionFlowOptions o;
    o.breaker.failure_threshold = 2;
    o.breaker.cooldown = absl::Seconds(5);
    return o;
  }

  std::string CookieHeader(const std::string& id,
                           const CookieSigner* signer = nullptr) {
    return "connect.sid=" + (signer ? signer : signer_.get())->EncodedValue(id);
  }

  // Verify + Fetch, synchronously (the fake completes inline).
  SessionState Load(const std::string& cookie_header) {
    SessionState s = flow_.Verify(cookie_header);
    if (!s.needs_fetch) return s;
    std::optional<SessionState> out;
    flow_.Fetch(std::move(s), [&](SessionState r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(SessionState{});
  }

  ApplyResult Apply(SessionState s, SessionDirectives d) {
    std::optional<ApplyResult> out;
    flow_.Apply(std::move(s), std::move(d),
                [&](ApplyResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(ApplyResult{});
  }

  // The id a Set-Cookie value carries, verified with our secrets.
  std::string IdOf(const std::string& set_cookie) {
    const size_t eq = set_cookie.find('=');
    const std::string value =
        set_cookie.substr(eq + 1, set_cookie.find(';') - eq - 1);
    VerifiedCookie c = signer_->VerifyValue(value);
    EXPECT_TRUE(c.ok()) << set_cookie;
    return std::string(c.id());
  }

  FakeClock clock_;
  FakeBackend backend_;
  std::unique_ptr<CookieSigner> signer_;
  std::unique_ptr<CookieSigner> old_signer_;
  EdgeMetrics metrics_;
  SessionFlow flow_;
};

TEST_F(SessionFlowTest, NoOrBadCookieMeansNoCall) {
  EXPECT_EQ(Load("").status, SessionStatus::kNone);
  EXPECT_EQ(Load("connect.sid=plain").status, SessionStatus::kNone);
  auto forged = *CookieSigner::Create({"attacker"});
  EXPECT_EQ(Load(CookieHeader("id1", forged.get())).status,
            SessionStatus::kNone);
  EXPECT_EQ(backend_.calls["get"], 0);
  EXPECT_EQ(metrics_.cookies(CookieVerdict::kMalformed), 1u);
  EXPECT_EQ(metrics_.cookies(CookieVerdict::kBadSignature), 1u);
}

TEST_F(SessionFlowTest, ValidCookieLoadsWithOneGet) {
  const std::string id = backend_.Put("data", "bob");
  SessionState s = Load(CookieHeader(id));
  EXPECT_EQ(s.status, SessionStatus::kLoaded);
  EXPECT_EQ(s.id, id);
  EXPECT_EQ(s.data, "data");
  EXPECT_EQ(s.principal, "bob");
  EXPECT_EQ(backend_.calls["get"], 1);
  // Nothing asked: nothing written, no cookie.
  ApplyResult r = Apply(s, {});
  EXPECT_FALSE(r.set_cookie.has_value());
  EXPECT_EQ(backend_.calls["update"], 0);
}

// A stored principal the edge could not write into a header as is (CR, LF,
// NUL: header injection into the app's request) loads as no principal;
// the session and its data still load.
TEST_F(SessionFlowTest, StoredPrincipalWithControlBytesIsDropped) {
  for (const std::string evil :
       {std::string("alice\r\nX-Injected: 1"), std::string("bob\nX"),
        std::string("carol\0X", 7)}) {
    SCOPED_TRACE(testing::PrintToString(evil));
    const std::string id = backend_.Put("data", evil);
    SessionState s = Load(CookieHeader(id));
    EXPECT_EQ(s.status, SessionStatus::kLoaded);
    EXPECT_EQ(s.data, "data");
    EXPECT_EQ(s.principal, "");
  }
}

TEST_F(SessionFlowTest, UnknownIdIsExpiredAndServiceErrorIsUnavailable) {
  EXPECT_EQ(Load(CookieHeader("nope")).status, SessionStatus::kExpired);
  backend_.fail["get"] = absl::UnavailableError("down");
  EXPECT_EQ(Load(CookieHeader("nope")).status, SessionStatus::kUnavailable);
}

TEST_F(SessionFlowTest, OpenBreakerSkipsTheServiceUntilCooldown) {
  backend_.fail["get"] = absl::UnavailableError("down");
  const std::string cookie = CookieHeader("x");
  Load(cookie);
  Load(cookie);  // second failure opens it
  EXPECT_EQ(flow_.breaker().state(), BreakerState::kOpen);
  EXPECT_EQ(Load(cookie).status, SessionStatus::kUnavailable);
  EXPECT_EQ(backend_.calls["get"], 2);  // the third never reached it
  EXPECT_EQ(metrics_.calls(SessionMethod::kGet, CallResult::kRejected), 1u);
  backend_.fail.clear();
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(Load(cookie).status, SessionStatus::kExpired);  // probe passes
  EXPECT_EQ(flow_.breaker().state(), BreakerState::kClosed);
}

TEST_F(SessionFlowTest, SetWithoutSessionCreatesLazilyAndIssuesCookie) {
  SessionDirectives d;
  d.data = "cart";
  d.ttl = absl::Minutes(10);
  ApplyResult r = Apply(Load(""), d);
  ASSERT_TRUE(r.set_cookie.has_value());
  const std::string id = IdOf(*r.set_cookie);
  EXPECT_EQ(backend_.sessions[id].data, "cart");
  EXPECT_EQ(backend_.last_create.ttl().seconds(), 600);
  EXPECT_NE(r.set_cookie->find("Max-Age=600"), std::string::npos);
  EXPECT_EQ(metrics_.sessions_created(), 1u);
}

TEST_F(SessionFlowTest, SetOnLoadedSessionUpdatesInPlaceWithoutCookie) {
  const std::string id = backend_.Put("v1");
  SessionDirectives d;
  d.data = "v2";
  ApplyResult r = Apply(Load(CookieHeader(id)), d);
  EXPECT_FALSE(r.set_cookie.has_value());
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(backend_.sessions[id].data, "v2");
  EXPECT_EQ(backend_.calls["create"], 0);
}

TEST_F(SessionFlowTest, ConcurrentWriteIsOverwrittenLastWriterWins) {
  const std::string id = backend_.Put("v1");
  SessionState s = Load(CookieHeader(id));
  backend_.before_update = [&] {
    backend_.sessions[id].data = "other-request";
    backend_.Touch(id);
  };
  SessionDirectives d;
  d.data = "mine";
  ApplyResult r = Apply(s, d);
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(backend_.sessions[id].data, "mine");
  EXPECT_EQ(backend_.calls["update"], 2);  // conflict, re-read, write
  EXPECT_EQ(backend_.calls["get"], 2);     // load + re-read
}

TEST_F(SessionFlowTest, ConcurrentDestroyIsNeverUndone) {
  const std::string id = backend_.Put("v1");
  SessionState s = Load(CookieHeader(id));
  backend_.before_update = [&] { backend_.sessions.erase(id); };  // logout
  SessionDirectives d;
  d.data = "late write";
  ApplyResult r = Apply(s, d);
  EXPECT_TRUE(backend_.sessions.empty());  // not recreated
  EXPECT_FALSE(r.set_cookie.has_value());  // and no cookie churn
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(backend_.calls["create"], 0);
}

TEST_F(SessionFlowTest, DestroyDeletesAndClearsTheCookie) {
  const std::string id = backend_.Put("v1");
  SessionDirectives d;
  d.destroy = true;
  ApplyResult r = Apply(Load(CookieHeader(id)), d);
  ASSERT_TRUE(r.set_cookie.has_value());
  EXPECT_NE(r.set_cookie->find("Max-Age=0"), std::string::npos);
  EXPECT_TRUE(backend_.sessions.empty());
  EXPECT_EQ(metrics_.sessions_destroyed(), 1u);
}

TEST_F(SessionFlowTest, PrincipalRotatesTheIdAndKeepsData) {
  const std::string id = backend_.Put("cart");
  SessionDirectives d;
  d.principal = "alice";
  ApplyResult r = Apply(Load(CookieHeader(id)), d);
  ASSERT_TRUE(r.set_cookie.has_value());
  const std::string new_id = IdOf(*r.set_cookie);
  EXPECT_NE(new_id, id);
  EXPECT_EQ(backend_.sessions.count(id), 0u);
  EXPECT_EQ(backend_.sessions[new_id].principal, "alice");
  EXPECT_EQ(backend_.sessions[new_id].data, "cart");
}

TEST_F(SessionFlowTest, LoginOnVanishedSessionStartsAFreshOne) {
  const std::string id = backend_.Put("old data");
  SessionState s = Load(CookieHeader(id));
  backend_.sessions.erase(id);  // logged out elsewhere meanwhile
  SessionDirectives d;
  d.principal = "alice";
  ApplyResult r = Apply(s, d);
  ASSERT_TRUE(r.set_cookie.has_value());
  const std::string new_id = IdOf(*r.set_cookie);
  EXPECT_EQ(backend_.sessions[new_id].principal, "alice");
  EXPECT_EQ(backend_.sessions[new_id].data, "");  // none of the old data
}

TEST_F(SessionFlowTest, UnavailableStateNeverWrites) {
  backend_.fail["get"] = absl::UnavailableError("down");
  SessionState s = Load(CookieHeader("x"));
  backend_.fail.clear();
  SessionDirectives d;
  d.data = "x";
  ApplyResult r = Apply(s, d);
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.set_cookie.has_value());
  EXPECT_EQ(backend_.calls["create"], 0);
  EXPECT_EQ(backend_.calls["update"], 0);
}

TEST_F(SessionFlowTest, ServiceFailureWhileWritingIsReported) {
  backend_.fail["create"] = absl::UnavailableError("down");
  SessionDirectives d;
  d.data = "x";
  ApplyResult r = Apply(Load(""), d);
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.set_cookie.has_value());
  // A refusal about the data itself is not an outage.
  backend_.fail["create"] = absl::InvalidArgumentError("too big");
  r = Apply(Load(""), d);
  EXPECT_FALSE(r.failed);
  EXPECT_FALSE(r.set_cookie.has_value());
}

TEST_F(SessionFlowTest, CookieSignedWithOldKeyIsReissuedWithCurrentKey) {
  const std::string id = backend_.Put("v");
  SessionState s = Load(CookieHeader(id, old_signer_.get()));
  ASSERT_EQ(s.status, SessionStatus::kLoaded);
  EXPECT_EQ(s.key_index, 1);
  ApplyResult r = Apply(s, {});
  ASSERT_TRUE(r.set_cookie.has_value());
  EXPECT_EQ(IdOf(*r.set_cookie), id);
  EXPECT_NE(r.set_cookie->find(signer_->EncodedValue(id)), std::string::npos);
}

// ---- the anonymous session limit (--anon-session-*) ----

class AnonLimitFlowTest : public SessionFlowTest {
 protected:
  static SessionFlowOptions LimitOptions(OverLimitAction action) {
    SessionFlowOptions o = Options();
    o.anon_limit.rate = 1;
    o.anon_limit.burst = 2;
    o.anon_limit.slots = 64;
    o.anon_limit.over_limit = action;
    return o;
  }
  ApplyResult ApplyOn(SessionFlow& flow, SessionState s, SessionDirectives d) {
    std::optional<ApplyResult> out;
    flow.Apply(std::move(s), std::move(d),
               [&](ApplyResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(ApplyResult{});
  }
  // A first visit from `ip` whose response stores data.
  ApplyResult Visit(SessionFlow& flow, const std::string& ip,
                    const std::string& cookie = "") {
    SessionDirectives d;
    d.data = "cart";
    SessionState s = flow.Verify(cookie, classifier::IpAddress::Parse(ip));
    if (s.needs_fetch) {
      flow.Fetch(std::move(s), [&](SessionState r) { s = std::move(r); });
    }
    return ApplyOn(flow, std::move(s), d);
  }
};

TEST_F(AnonLimitFlowTest, ProxyModeOverLimitCreatesNothingAndSetsNoCookie) {
  SessionFlow flow(LimitOptions(OverLimitAction::kProxy), &backend_,
                   signer_.get(), &metrics_, &clock_);
  EXPECT_TRUE(Visit(flow, "203.0.113.7").set_cookie.has_value());
  EXPECT_TRUE(Visit(flow, "203.0.113.7").set_cookie.has_value());
  ApplyResult r = Visit(flow, "203.0.113.7");
  EXPECT_FALSE(r.set_cookie.has_value());
  EXPECT_FALSE(r.reject);
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(backend_.calls["create"], 2);
  EXPECT_EQ(metrics_.anon_sessions_limited(/*rejected=*/false), 1u);
  // Another client is unaffected; the first gets a token back in 1 s.
  EXPECT_TRUE(Visit(flow, "198.51.100.9").set_cookie.has_value());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Visit(flow, "203.0.113.7").set_cookie.has_value());
  EXPECT_EQ(backend_.calls["create"], 4);
}

TEST_F(AnonLimitFlowTest, RejectModeAsksForA429WithRetryAfter) {
  SessionFlow flow(LimitOptions(OverLimitAction::kReject), &backend_,
                   signer_.get(), &metrics_, &clock_);
  Visit(flow, "2001:db8::1");
  Visit(flow, "2001:db8::2");
  ApplyResult r = Visit(flow, "2001:db8::3");  // same /64
  EXPECT_TRUE(r.reject);
  EXPECT_EQ(r.retry_after, absl::Seconds(1));
  EXPECT_FALSE(r.set_cookie.has_value());
  EXPECT_EQ(backend_.calls["create"], 2);
  EXPECT_EQ(metrics_.anon_sessions_limited(/*rejected=*/true), 1u);
}

TEST_F(AnonLimitFlowTest, ExpiredCookieCountsAsAnonymous) {
  SessionFlow flow(LimitOptions(OverLimitAction::kProxy), &backend_,
                   signer_.get(), &metrics_, &clock_);
  const std::string gone = CookieHeader("never-stored");
  Visit(flow, "203.0.113.7", gone);
  Visit(flow, "203.0.113.7", gone);
  EXPECT_FALSE(Visit(flow, "203.0.113.7", gone).set_cookie.has_value());
  EXPECT_EQ(backend_.calls["create"], 2);
}

TEST_F(AnonLimitFlowTest, LoginsAndExistingSessionsAreNeverLimited) {
  SessionFlow flow(LimitOptions(OverLimitAction::kReject), &backend_,
                   signer_.get(), &metrics_, &clock_);
  Visit(flow, "203.0.113.7");
  Visit(flow, "203.0.113.7");
  ASSERT_TRUE(Visit(flow, "203.0.113.7").reject);
  // A login without a session creates one all the same.
  SessionDirectives login;
  login.principal = "alice";
  ApplyResult r = ApplyOn(
      flow, flow.Verify("", classifier::IpAddress::Parse("203.0.113.7")),
      login);
  EXPECT_FALSE(r.reject);
  ASSERT_TRUE(r.set_cookie.has_value());
  // A loaded session that logs out and stores data starts afresh.
  const std::string id = backend_.Put("v");
  SessionState s = flow.Verify(CookieHeader(id),
                               classifier::IpAddress::Parse("203.0.113.7"));
  flow.Fetch(std::move(s), [&](SessionState got) { s = std::move(got); });
  ASSERT_EQ(s.status, SessionStatus::kLoaded);
  SessionDirectives restart;
  restart.destroy = true;
  restart.data = "fresh";
  r = ApplyOn(flow, std::move(s), restart);
  EXPECT_FALSE(r.reject);
  EXPECT_TRUE(r.set_cookie.has_value());
  EXPECT_EQ(metrics_.anon_sessions_limited(/*rejected=*/true), 1u);
}

TEST_F(AnonLimitFlowTest, NoClientAddressIsNotLimited) {
  SessionFlow flow(LimitOptions(OverLimitAction::kReject), &backend_,
                   signer_.get(), &metrics_, &clock_);
  SessionDirectives d;
  d.data = "x";
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(ApplyOn(flow, flow.Verify(""), d).set_cookie.has_value());
  }
}

}  // namespace
}  // namespace sg::edge
