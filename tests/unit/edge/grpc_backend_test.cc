// GrpcSessionBackend against an in-process fake session service.
//
// A gRPC server that is shutting down (a node draining) answers CANCELLED,
// not UNAVAILABLE, to calls that reached it after its Shutdown began and
// before the client saw its GOAWAY: gRPC drops them before any handler runs
// (grpc/grpc#41785). The client retries only UNAVAILABLE, so before the
// backend retried these, one such call was a lost session write (the
// rehearsal's "counter regression" during a server replacement) or a read
// without its session (its "known gap"). The fake answers CANCELLED as the
// draining server does.
#include "edge/grpc_backend.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fake_server.h"
#include "gtest/gtest.h"
#include "sessiongrid/batcher.h"
#include "sessiongrid/client.h"

namespace sg::edge {
namespace {

using ::sg::client::testing::FakeServer;
namespace v1 = ::sessiongrid::v1;

class GrpcBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client::ClientOptions options;
    options.target = server_.address();
    options.deadline = absl::Seconds(5);
    auto c = client::Client::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  // Runs one backend call and waits for its answer.
  template <typename Resp, typename Req, typename Method>
  absl::StatusOr<Resp> Run(GrpcSessionBackend& backend, Method method,
                           Req request) {
    absl::Notification done;
    absl::StatusOr<Resp> result = absl::UnknownError("no answer");
    (backend.*method)(std::move(request), [&](absl::StatusOr<Resp> r) {
      result = std::move(r);
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
      return absl::DeadlineExceededError("the backend never answered");
    }
    return result;
  }

  FakeServer server_;
  std::unique_ptr<client::Client> client_;
};

v1::UpdateRequest CasUpdate() {
  v1::UpdateRequest req;
  req.set_id("s1");
  req.set_data("{\"counter\":84}");
  req.mutable_expected_version()->set_wall_millis(1);
  return req;
}

TEST_F(GrpcBackendTest, UpdateDroppedByAServerShuttingDownIsSentAgain) {
  GrpcSessionBackend backend(client_.get());
  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  absl::StatusOr<v1::UpdateResponse> r = Run<v1::UpdateResponse>(
      backend, &GrpcSessionBackend::Update, CasUpdate());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server_.state().calls("Update"), 2);
  EXPECT_EQ(server_.state().last_update().data(), "{\"counter\":84}");
}

TEST_F(GrpcBackendTest, EveryMethodIsSentAgainAfterADroppedCall) {
  GrpcSessionBackend backend(client_.get());

  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  v1::GetRequest get;
  get.set_id("s1");
  EXPECT_TRUE(
      (Run<v1::GetResponse>(backend, &GrpcSessionBackend::Get, get).ok()));
  EXPECT_EQ(server_.state().calls("Get"), 2);

  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  v1::CreateRequest create;
  create.set_principal("alice");
  EXPECT_TRUE(
      (Run<v1::CreateResponse>(backend, &GrpcSessionBackend::Create, create)
           .ok()));
  EXPECT_EQ(server_.state().calls("Create"), 2);

  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  v1::RegenerateRequest regen;
  regen.set_id("s1");
  regen.set_principal("alice");
  EXPECT_TRUE((Run<v1::RegenerateResponse>(
                   backend, &GrpcSessionBackend::Regenerate, regen)
                   .ok()));
  EXPECT_EQ(server_.state().calls("Regenerate"), 2);

  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  v1::DeleteRequest del;
  del.set_id("s1");
  EXPECT_TRUE((
      Run<v1::DeleteResponse>(backend, &GrpcSessionBackend::Delete, del).ok()));
  EXPECT_EQ(server_.state().calls("Delete"), 2);
}

TEST_F(GrpcBackendTest, BatchedReadIsSentAgainAfterADroppedBatch) {
  auto batcher = client::SessionBatcher::Create(client_.get());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  GrpcSessionBackend backend(client_.get(), batcher->get());

  server_.state().FailNext(1, grpc::StatusCode::CANCELLED);
  v1::GetRequest get;
  get.set_id("s2");
  absl::StatusOr<v1::GetResponse> got =
      Run<v1::GetResponse>(backend, &GrpcSessionBackend::Get, get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->session().id(), "s2");
  EXPECT_EQ(server_.state().calls("BatchGet"), 2);
}

// The shared fake has no BatchCreate: this one answers it, dropping the
// first batch as a server shutting down does.
class DroppingBatchCreateService final : public v1::SessionService::Service {
 public:
  grpc::Status BatchCreate(grpc::ServerContext*,
                           const v1::BatchCreateRequest* req,
                           v1::BatchCreateResponse* resp) override {
    if (calls_.fetch_add(1) == 0)
      return grpc::Status(grpc::StatusCode::CANCELLED, "");
    for (int i = 0; i < req->requests_size(); ++i) {
      resp->add_results()->mutable_session()->set_id("created");
    }
    return grpc::Status::OK;
  }
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

TEST(GrpcBackendBatchCreateTest, BatchedCreateIsSentAgainAfterADroppedBatch) {
  DroppingBatchCreateService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr && port > 0);
  client::ClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(port);
  options.deadline = absl::Seconds(5);
  auto c = client::Client::Create(options);
  ASSERT_TRUE(c.ok()) << c.status();
  auto batcher = client::SessionBatcher::Create(c->get());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  GrpcSessionBackend backend(c->get(), batcher->get());

  absl::Notification done;
  absl::StatusOr<v1::CreateResponse> r = absl::UnknownError("no answer");
  v1::CreateRequest create;
  create.set_data("{}");
  backend.Create(create, [&](absl::StatusOr<v1::CreateResponse> got) {
    r = std::move(got);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->session().id(), "created");
  EXPECT_EQ(service.calls(), 2);
  batcher->reset();
  server->Shutdown(absl::ToChronoTime(absl::Now()));
}

TEST_F(GrpcBackendTest, DroppedCallsAreSentAtMostMaxAttemptsTimes) {
  GrpcSessionBackend backend(client_.get());
  const int attempts = client_->options().max_attempts;
  server_.state().FailNext(attempts, grpc::StatusCode::CANCELLED);
  absl::StatusOr<v1::UpdateResponse> r = Run<v1::UpdateResponse>(
      backend, &GrpcSessionBackend::Update, CasUpdate());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server_.state().calls("Update"), attempts);
}

TEST_F(GrpcBackendTest, OtherErrorsAreNotSentAgain) {
  GrpcSessionBackend backend(client_.get());
  for (grpc::StatusCode code :
       {grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::NOT_FOUND,
        grpc::StatusCode::DEADLINE_EXCEEDED,
        grpc::StatusCode::RESOURCE_EXHAUSTED}) {
    const int before = server_.state().calls("Update");
    server_.state().FailNext(1, code);
    absl::StatusOr<v1::UpdateResponse> r = Run<v1::UpdateResponse>(
        backend, &GrpcSessionBackend::Update, CasUpdate());
    EXPECT_EQ(static_cast<int>(r.status().code()), static_cast<int>(code));
    EXPECT_EQ(server_.state().calls("Update") - before, 1) << code;
  }
}

}  // namespace
}  // namespace sg::edge
