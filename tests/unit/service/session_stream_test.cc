// SessionService/Stream and the client's SessionPipeline over it, in
// process: the real service and reactor on 127.0.0.1:0, over a backend
// that parks Gets until the test lets them go, so the order and timing of
// answers is the test's to choose.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/service/session_service.h"
#include "sessiongrid/client.h"
#include "sessiongrid/pipeline.h"

namespace sg::service {
namespace {
namespace v1 = ::sessiongrid::v1;
using client::SessionPipeline;

// An id the service accepts: 43 base64url characters ending in `tag`.
std::string Id(const std::string& tag) {
  return std::string(43 - tag.size(), 'A') + tag;
}

// Gets park until Release(id) (or ReleaseAll); everything else answers at
// once. Counts what reached it and how many Gets it held at most at once.
class ParkingBackend final : public store::SessionBackend {
 public:
  void Create(store::CreateParams params,
              store::Reply<store::SessionRecord> done) override {
    store::SessionRecord r;
    r.data = std::move(params.data);
    {
      absl::MutexLock lock(&mu_);
      ++creates_;
      r.id = Id(absl::StrCat("c", creates_));
      if (park_creates_) {
        parked_creates_.emplace_back(std::move(r), std::move(done));
        return;
      }
    }
    std::move(done)(std::move(r));
  }
  // Counts the batches (the default answers each entry by Create).
  void CreateMany(std::vector<store::CreateParams> params,
                  store::ManyReply done) override {
    {
      absl::MutexLock lock(&mu_);
      create_many_sizes_.push_back(static_cast<int>(params.size()));
    }
    SessionBackend::CreateMany(std::move(params), std::move(done));
  }
  std::vector<int> create_many_sizes() const {
    absl::MutexLock lock(&mu_);
    return create_many_sizes_;
  }
  // From now on Creates park too (until ReleaseAll).
  void ParkCreates() {
    absl::MutexLock lock(&mu_);
    park_creates_ = true;
  }
  void Get(std::string id, bool, store::Reply<store::SessionRecord> done) override {
    absl::MutexLock lock(&mu_);
    parked_.emplace(std::move(id), std::move(done));
    max_parked_ = std::max(max_parked_, static_cast<int>(parked_.size()));
  }
  void Touch(std::string id, std::optional<absl::Duration>,
             store::Reply<store::SessionRecord> done) override {
    store::SessionRecord r;
    r.id = std::move(id);
    r.expire_time = absl::FromUnixSeconds(2000000000);
    std::move(done)(std::move(r));
  }
  void Update(std::string id, store::UpdateParams params,
              store::Reply<store::SessionRecord> done) override {
    store::SessionRecord r;
    r.id = std::move(id);
    r.data = params.data.value_or("");
    std::move(done)(std::move(r));
  }
  void Delete(std::string, std::optional<store::Hlc>,
              store::Reply<bool> done) override {
    std::move(done)(true);
  }
  void Regenerate(std::string, std::optional<std::string>,
                  store::Reply<store::SessionRecord> done) override {
    std::move(done)(absl::UnimplementedError("not in this test"));
  }
  void ListByPrincipal(std::string, size_t,
                       store::Reply<std::vector<store::SessionRecord>> done) override {
    std::move(done)(absl::UnimplementedError("not in this test"));
  }
  void DeleteByPrincipal(std::string, store::Reply<int64_t> done) override {
    std::move(done)(absl::UnimplementedError("not in this test"));
  }
  void ListSessions(std::string, size_t, bool,
                    store::Reply<store::SessionPage> done) override {
    std::move(done)(absl::UnimplementedError("not in this test"));
  }

  // Answers the parked Get of `id` with a session whose data is `id`, or
  // NOT_FOUND when `found` is false. False when no such Get is parked.
  bool Release(const std::string& id, bool found = true) {
    store::Reply<store::SessionRecord> done;
    {
      absl::MutexLock lock(&mu_);
      auto it = parked_.find(id);
      if (it == parked_.end()) return false;
      done = std::move(it->second);
      parked_.erase(it);
    }
    if (!found) {
      std::move(done)(absl::NotFoundError("no such session"));
      return true;
    }
    store::SessionRecord r;
    r.id = id;
    r.data = "data of " + id;
    std::move(done)(std::move(r));
    return true;
  }
  void ReleaseAll() {
    std::vector<std::string> ids;
    std::vector<std::pair<store::SessionRecord, store::Reply<store::SessionRecord>>>
        creates;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, done] : parked_) ids.push_back(id);
      creates.swap(parked_creates_);
    }
    for (const auto& id : ids) Release(id);
    for (auto& [record, done] : creates) std::move(done)(std::move(record));
  }
  bool WaitParked(int n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return static_cast<int>(parked_.size()) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  int parked() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(parked_.size());
  }
  int max_parked() const {
    absl::MutexLock lock(&mu_);
    return max_parked_;
  }
  int creates() const {
    absl::MutexLock lock(&mu_);
    return creates_;
  }

 private:
  mutable absl::Mutex mu_;
  std::multimap<std::string, store::Reply<store::SessionRecord>> parked_;
  std::vector<std::pair<store::SessionRecord, store::Reply<store::SessionRecord>>>
      parked_creates_;
  bool park_creates_ = false;
  int max_parked_ = 0;
  int creates_ = 0;
  std::vector<int> create_many_sizes_;
};

// Polls `done` every millisecond for at most `timeout`.
bool WaitUntil(const std::function<bool()>& done,
               absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// A SessionService on 127.0.0.1:0 over a ParkingBackend.
class Node {
 public:
  explicit Node(int stream_max_in_flight = SessionServiceImpl::kStreamMaxInFlight)
      : service_(&backend_, /*allow_client_ids=*/false, stream_max_in_flight) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~Node() {
    Kill();
    Reap();
  }

  // The node dies under its streams: Shutdown with no grace cancels every
  // call at once (the client sees its streams end), in a thread, because
  // Shutdown then waits for each stream's reactor, and a stream holding a
  // parked call ends only once that call is answered: Reap() lets them go.
  void Kill() {
    if (server_ == nullptr || stopper_.joinable()) return;
    stopper_ = std::thread([this] {
      server_->Shutdown(absl::ToChronoTime(absl::Now()));
      stopped_ = true;
    });
  }
  void Reap() {
    if (server_ == nullptr) return;
    Kill();
    while (true) {  // bounded by the backend's parked calls, answered here
      backend_.ReleaseAll();
      if (WaitUntil([&] { return stopped_.load(); }, absl::Milliseconds(50))) break;
    }
    stopper_.join();
    server_->Wait();
    server_.reset();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // By name: a client keeps one channel per named address and rotates
  // over them itself (literal IPs would share one round_robin channel).
  std::string hostname_address() const {
    return absl::StrCat("localhost:", port_);
  }
  ParkingBackend& backend() { return backend_; }
  SessionServiceImpl& service() { return service_; }

 private:
  ParkingBackend backend_;
  SessionServiceImpl service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::thread stopper_;
  std::atomic<bool> stopped_{false};
};

// Collects one call's answer; Wait() until it came. The callback shares
// the state, so an answer still pending when a test stops early is safe.
template <typename Response>
class Answer {
 public:
  SessionPipeline::Callback<Response> callback() {
    return [state = state_, counter = counter_](absl::StatusOr<Response> r) {
      absl::MutexLock lock(&state->mu);
      state->result = std::move(r);
      state->order = counter->fetch_add(1);
    };
  }
  // Answers sharing `counter` record the order they came in.
  void set_order_counter(std::shared_ptr<std::atomic<int>> counter) {
    counter_ = std::move(counter);
  }
  bool done() const {
    absl::MutexLock lock(&state_->mu);
    return state_->result.has_value();
  }
  absl::StatusOr<Response> Wait(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&state_->mu);
    auto came = [&] { return state_->result.has_value(); };
    if (!state_->mu.AwaitWithTimeout(absl::Condition(&came), timeout)) {
      return absl::DeadlineExceededError("test: no answer");
    }
    return *state_->result;
  }
  int order() const {
    absl::MutexLock lock(&state_->mu);
    return state_->order;
  }

 private:
  struct State {
    absl::Mutex mu;
    std::optional<absl::StatusOr<Response>> result;
    int order = -1;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::shared_ptr<std::atomic<int>> counter_ =
      std::make_shared<std::atomic<int>>(0);
};

std::unique_ptr<client::Client> ClientTo(const std::string& target,
                                         absl::Duration deadline = absl::Seconds(5)) {
  client::ClientOptions options;
  options.target = target;
  options.deadline = deadline;
  options.route_to_owners = false;
  auto c = client::Client::Create(options);
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

std::unique_ptr<SessionPipeline> PipelineOn(const client::Client* c,
                                            client::PipelineOptions options = {}) {
  auto p = SessionPipeline::Create(c, options);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

v1::GetRequest GetOf(const std::string& id) {
  v1::GetRequest req;
  req.set_id(id);
  return req;
}

TEST(SessionStreamTest, AnswersComeBackAsTheyCompleteNotAsTheyWereSent) {
  Node node;
  auto c = ClientTo(node.address());
  client::PipelineOptions one_stream;
  one_stream.streams = 1;
  auto pipeline = PipelineOn(c.get(), one_stream);
  auto order = std::make_shared<std::atomic<int>>(0);
  Answer<v1::GetResponse> first, second;
  first.set_order_counter(order);
  second.set_order_counter(order);
  pipeline->Get(GetOf(Id("first")), first.callback());
  pipeline->Get(GetOf(Id("second")), second.callback());
  ASSERT_TRUE(node.backend().WaitParked(2));

  // The later call completes first and is answered while the earlier one
  // is still held: no head-of-line blocking on the shared stream.
  ASSERT_TRUE(node.backend().Release(Id("second")));
  auto r2 = second.Wait();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->session().data(), "data of " + Id("second"));
  EXPECT_FALSE(first.done());

  ASSERT_TRUE(node.backend().Release(Id("first"), /*found=*/false));
  EXPECT_EQ(first.Wait().status().code(), absl::StatusCode::kNotFound);
  EXPECT_LT(second.order(), first.order());
  EXPECT_EQ(pipeline->stats().streams_opened, 1);
}

TEST(SessionStreamTest, EveryKindOfCallRoundTripsAndABadOneFailsAlone) {
  Node node;
  auto c = ClientTo(node.address());
  auto pipeline = PipelineOn(c.get());

  Answer<v1::CreateResponse> created;
  v1::CreateRequest create;
  create.set_data("hello");
  pipeline->Create(create, created.callback());
  auto cr = created.Wait();
  ASSERT_TRUE(cr.ok()) << cr.status();
  EXPECT_EQ(cr->session().data(), "hello");

  Answer<v1::UpdateResponse> updated;
  v1::UpdateRequest update;
  update.set_id(cr->session().id());
  update.set_data("changed");
  pipeline->Update(update, updated.callback());
  ASSERT_TRUE(updated.Wait().ok());
  EXPECT_EQ(updated.Wait()->session().data(), "changed");

  Answer<v1::TouchResponse> touched;
  v1::TouchRequest touch;
  touch.set_id(cr->session().id());
  pipeline->Touch(touch, touched.callback());
  ASSERT_TRUE(touched.Wait().ok());
  EXPECT_EQ(touched.Wait()->expire_time().seconds(), 2000000000);

  // A malformed call fails on its own; the stream goes on.
  Answer<v1::DeleteResponse> bad, deleted;
  v1::DeleteRequest del;
  del.set_id("not an id");
  pipeline->Delete(del, bad.callback());
  del.set_id(cr->session().id());
  pipeline->Delete(del, deleted.callback());
  EXPECT_EQ(bad.Wait().status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(deleted.Wait().ok());
  EXPECT_TRUE(deleted.Wait()->deleted());

  // Validation is the unary calls': a client-chosen id is refused here.
  Answer<v1::CreateResponse> chosen;
  create.set_id(Id("mine"));
  pipeline->Create(create, chosen.callback());
  EXPECT_EQ(chosen.Wait().status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(pipeline->stats().streams_opened, 2);  // one per stream slot
}

// The Creates of one stream message reach the backend as one CreateMany
// (one WriteBatch on a local store); a bad one fails alone, before it.
TEST(SessionStreamTest, AMessagesCreatesGoToTheBackendTogether) {
  Node node;
  auto channel = grpc::CreateChannel(node.address(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::SessionService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->Stream(&ctx);
  v1::StreamRequest request;
  constexpr int kCreates = 20;
  for (int i = 0; i < kCreates; ++i) {
    v1::StreamCall* call = request.add_calls();
    call->set_call_id(i);
    call->mutable_create()->set_data(absl::StrCat("d", i));
  }
  v1::StreamCall* bad = request.add_calls();
  bad->set_call_id(kCreates);
  bad->mutable_create()->set_principal("a\nb");  // header injection
  v1::StreamCall* touch = request.add_calls();
  touch->set_call_id(kCreates + 1);
  touch->mutable_touch()->set_id(Id("t"));
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::StreamReply> replies;
  v1::StreamResponse response;
  while (stream->Read(&response)) {
    for (const v1::StreamReply& r : response.replies()) replies[r.call_id()] = r;
  }
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(replies.size(), static_cast<size_t>(kCreates + 2));
  for (int i = 0; i < kCreates; ++i) {
    EXPECT_EQ(replies[i].status().code(), 0) << i << ": " << replies[i].status().message();
    EXPECT_EQ(replies[i].create().session().data(), absl::StrCat("d", i));
  }
  EXPECT_EQ(replies[kCreates].status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(replies[kCreates + 1].status().code(), 0);
  EXPECT_EQ(node.backend().create_many_sizes(), std::vector<int>{kCreates});
  EXPECT_EQ(node.backend().creates(), kCreates);
}

TEST(SessionStreamTest, AServerThatCannotKeepUpStopsReadingAtItsBound) {
  constexpr int kBound = 8;
  constexpr int kCalls = 100;
  Node node(kBound);
  auto c = ClientTo(node.address());
  client::PipelineOptions options;
  options.streams = 1;
  options.max_calls_per_message = 1;
  auto pipeline = PipelineOn(c.get(), options);
  std::vector<Answer<v1::GetResponse>> answers(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    pipeline->Get(GetOf(Id(absl::StrCat("g", i))), answers[i].callback());
  }
  ASSERT_TRUE(node.backend().WaitParked(kBound));
  // Let the calls go a few at a time: the backend never holds more than
  // the stream's bound, however many the client has sent.
  int answered = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (answered < kCalls && absl::Now() < give_up) {
    node.backend().ReleaseAll();
    answered = 0;
    for (auto& a : answers) answered += a.done() ? 1 : 0;
  }
  for (auto& a : answers) ASSERT_TRUE(a.Wait().ok());
  EXPECT_EQ(node.backend().max_parked(), kBound);
  EXPECT_EQ(pipeline->stats().pending, 0);
}

TEST(SessionStreamTest, APipelineHoldsAtMostMaxPendingCalls) {
  Node node;
  auto c = ClientTo(node.address());
  client::PipelineOptions options;
  options.max_pending = 5;
  auto pipeline = PipelineOn(c.get(), options);
  std::vector<Answer<v1::GetResponse>> held(5);
  for (int i = 0; i < 5; ++i) {
    pipeline->Get(GetOf(Id(absl::StrCat("h", i))), held[i].callback());
  }
  Answer<v1::GetResponse> refused;
  pipeline->Get(GetOf(Id("one-more")), refused.callback());
  EXPECT_EQ(refused.Wait().status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(node.backend().WaitParked(5));
  node.backend().ReleaseAll();
  for (auto& a : held) EXPECT_TRUE(a.Wait().ok());
  EXPECT_EQ(pipeline->stats().pending, 0);
}

TEST(SessionStreamTest, ACallPastItsDeadlineFailsAloneAndItsLateAnswerIsDropped) {
  Node node;
  auto c = ClientTo(node.address(), absl::Milliseconds(300));
  client::PipelineOptions one_stream;
  one_stream.streams = 1;
  auto pipeline = PipelineOn(c.get(), one_stream);
  Answer<v1::GetResponse> slow;
  pipeline->Get(GetOf(Id("slow")), slow.callback());
  ASSERT_TRUE(node.backend().WaitParked(1));
  EXPECT_EQ(slow.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);

  // The same stream still serves: the stuck call cost it nothing.
  Answer<v1::TouchResponse> touched;
  v1::TouchRequest touch;
  touch.set_id(Id("other"));
  pipeline->Touch(touch, touched.callback());
  ASSERT_TRUE(touched.Wait().ok()) << touched.Wait().status();
  node.backend().Release(Id("slow"));  // the late answer is ignored
  EXPECT_EQ(pipeline->stats().pending, 0);
  EXPECT_EQ(pipeline->stats().streams_opened, 1);
}

TEST(SessionStreamTest, ABrokenStreamFailsOnlyItsOwnCallsAndTheNextGoElsewhere) {
  Node a, b;
  auto c = ClientTo(a.hostname_address() + "," + b.hostname_address());
  ASSERT_EQ(c->channel_count(), 2u);  // streams alternate between a and b
  client::PipelineOptions options;
  options.streams = 4;
  auto pipeline = PipelineOn(c.get(), options);
  // Enough calls that both nodes hold some.
  constexpr int kCalls = 16;
  std::vector<Answer<v1::GetResponse>> answers(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    pipeline->Get(GetOf(Id(absl::StrCat("b", i))), answers[i].callback());
  }
  ASSERT_TRUE(WaitUntil([&] {
    return a.backend().parked() + b.backend().parked() == kCalls;
  }));
  const int on_a = a.backend().parked();
  ASSERT_GT(on_a, 0);
  ASSERT_GT(b.backend().parked(), 0);

  // Node a dies under its streams (no drain). Its Gets are idempotent and
  // go again, to b; b's own calls never notice.
  a.Kill();
  ASSERT_TRUE(b.backend().WaitParked(kCalls));
  b.backend().ReleaseAll();
  for (auto& answer : answers) {
    auto r = answer.Wait();
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_GE(pipeline->stats().resent, on_a);
  a.Reap();
}

TEST(SessionStreamTest, ACreateCutOffWithItsStreamFailsAndIsNotSentAgain) {
  Node a, b;
  auto c = ClientTo(a.hostname_address() + "," + b.hostname_address());
  client::PipelineOptions options;
  options.streams = 2;
  auto pipeline = PipelineOn(c.get(), options);
  a.backend().ParkCreates();
  b.backend().ParkCreates();
  std::vector<Answer<v1::CreateResponse>> answers(8);
  for (auto& answer : answers) pipeline->Create({}, answer.callback());
  ASSERT_TRUE(WaitUntil([&] {
    return a.backend().creates() + b.backend().creates() == 8;
  }));
  const int on_a = a.backend().creates(), on_b = b.backend().creates();
  ASSERT_GT(on_a, 0);
  ASSERT_GT(on_b, 0);

  // Each Create a held may have run: it fails UNAVAILABLE, and b never
  // sees it (a second one would mint a second session).
  a.Kill();
  int unavailable = 0;
  ASSERT_TRUE(WaitUntil([&] {
    unavailable = 0;
    for (auto& answer : answers) {
      unavailable += answer.done() && answer.Wait().status().code() ==
                                          absl::StatusCode::kUnavailable;
    }
    return unavailable == on_a;
  }));
  b.backend().ReleaseAll();
  int ok = 0;
  for (auto& answer : answers) ok += answer.Wait().ok() ? 1 : 0;
  EXPECT_EQ(ok, on_b);
  EXPECT_EQ(b.backend().creates(), on_b);
  a.Reap();
}

TEST(SessionStreamTest, ADrainingNodeAnswersWhatItReadAndTheRestMovesOn) {
  Node a, b;
  auto c = ClientTo(a.hostname_address() + "," + b.hostname_address());
  client::PipelineOptions options;
  options.streams = 2;
  auto pipeline = PipelineOn(c.get(), options);
  std::vector<Answer<v1::GetResponse>> held(8);
  for (int i = 0; i < 8; ++i) {
    pipeline->Get(GetOf(Id(absl::StrCat("d", i))), held[i].callback());
  }
  ASSERT_TRUE(WaitUntil([&] {
    return a.backend().parked() + b.backend().parked() == 8;
  }));
  const int on_a = a.backend().parked();
  ASSERT_GT(on_a, 0);

  // a drains: its streams say `closing` and read no more. Calls made now
  // (Creates: never sent twice) still run exactly once: on b, or on a if
  // a's last read took them before it closed; the Gets a read are answered
  // by a.
  a.service().CloseStreams();
  std::vector<Answer<v1::CreateResponse>> created(20);
  for (auto& answer : created) pipeline->Create({}, answer.callback());
  for (auto& answer : created) {
    auto r = answer.Wait();
    ASSERT_TRUE(r.ok()) << r.status();
  }
  a.backend().ReleaseAll();
  b.backend().ReleaseAll();
  for (auto& answer : held) ASSERT_TRUE(answer.Wait().ok());
  EXPECT_EQ(a.backend().creates() + b.backend().creates(), 20);
  EXPECT_GT(b.backend().creates(), 0);
  EXPECT_TRUE(WaitUntil([&] { return a.service().open_streams() == 0; }));
}

}  // namespace
}  // namespace sg::service
