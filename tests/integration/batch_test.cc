// The batched fast path end to end: BatchGet/BatchCreate on a real node, and
// the client's SessionBatcher coalescing concurrent calls into them.
#include <grpcpp/grpcpp.h>

#include <atomic>

#include "absl/synchronization/blocking_counter.h"
#include "gtest/gtest.h"
#include "server/service/node_server.h"
#include "sessiongrid/batcher.h"
#include "sessiongrid/client.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-batch");
    service::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.store.data_dir = dir_;
    options.store.max_session_bytes = 1024;
    auto server = service::NodeServer::Start(options, Clock::Real());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client::ClientOptions client_options;
    client_options.target = server_->address();
    client_options.deadline = absl::Seconds(10);
    auto c = client::Client::Create(client_options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    testutil::RemoveTree(dir_);
  }

  std::string dir_;
  std::unique_ptr<service::NodeServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(BatchTest, BatchGetAnswersEachEntryWithItsOwnStatus) {
  v1::CreateRequest create;
  create.set_data("present");
  auto created = client_->Create(create);
  ASSERT_TRUE(created.ok());

  v1::BatchGetRequest req;
  req.add_requests()->set_id(created->session().id());
  req.add_requests()->set_id(std::string(43, 'Z'));  // well-formed, absent
  req.add_requests()->set_id("bad id");
  v1::BatchGetResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(client_->NextSessionStub()->BatchGet(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(0).session().data(), "present");
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BatchTest, BatchCreateRejectsOversizedEntriesOnly) {
  v1::BatchCreateRequest req;
  req.add_requests()->set_data("ok");
  req.add_requests()->set_data(std::string(2000, 'x'));
  req.add_requests()->set_principal("alice");
  v1::BatchCreateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(client_->NextSessionStub()->BatchCreate(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).session().session_class(),
            v1::SESSION_CLASS_AUTHENTICATED);
  auto stats = client_->NodeStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stats().sessions(), 2);
}

TEST_F(BatchTest, OverlongBatchIsInvalidArgument) {
  v1::BatchGetRequest req;
  for (int i = 0; i < 1001; ++i) req.add_requests()->set_id(std::string(43, 'A'));
  v1::BatchGetResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(client_->NextSessionStub()->BatchGet(&ctx, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BatchTest, BatcherCoalescesConcurrentCallsAndRoutesEachResult) {
  client::BatcherOptions options;
  options.max_in_flight = 1;  // one batch out at a time: the rest must wait
  options.max_batch = 64;
  options.deadline = absl::Seconds(10);
  auto batcher = client::SessionBatcher::Create(client_.get(), options);
  ASSERT_TRUE(batcher.ok()) << batcher.status();

  constexpr int kCalls = 400;
  std::vector<std::string> ids(kCalls);
  {
    absl::BlockingCounter done(kCalls);
    std::atomic<int> failures{0};
    for (int i = 0; i < kCalls; ++i) {
      v1::CreateRequest req;
      req.set_data("data-" + std::to_string(i));
      (*batcher)->Create(req, [&, i](absl::StatusOr<v1::Session> s) {
        if (s.ok()) {
          ids[i] = s->id();
        } else {
          failures.fetch_add(1);
        }
        done.DecrementCount();
      });
    }
    done.Wait();
    ASSERT_EQ(failures.load(), 0);
  }
  int64_t create_rpcs = (*batcher)->rpcs_sent();
  EXPECT_LT(create_rpcs, kCalls / 2) << "calls were not coalesced";

  absl::BlockingCounter done(kCalls + 1);
  std::atomic<int> mismatches{0};
  for (int i = 0; i < kCalls; ++i) {
    v1::GetRequest req;
    req.set_id(ids[i]);
    (*batcher)->Get(req, [&, i](absl::StatusOr<v1::Session> s) {
      if (!s.ok() || s->data() != "data-" + std::to_string(i)) {
        mismatches.fetch_add(1);
      }
      done.DecrementCount();
    });
  }
  v1::GetRequest missing;
  missing.set_id(std::string(43, 'Q'));
  std::atomic<int> missing_code{-1};
  (*batcher)->Get(missing, [&](absl::StatusOr<v1::Session> s) {
    missing_code = static_cast<int>(s.status().code());
    done.DecrementCount();
  });
  done.Wait();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(missing_code.load(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_LT((*batcher)->rpcs_sent() - create_rpcs, kCalls / 2);
}

TEST_F(BatchTest, BatcherReportsRpcFailureToEveryCaller) {
  std::string address = server_->address();
  ASSERT_TRUE(server_->Drain().ok());
  client::BatcherOptions options;
  options.deadline = absl::Seconds(2);
  auto batcher = client::SessionBatcher::Create(client_.get(), options);
  ASSERT_TRUE(batcher.ok());
  absl::BlockingCounter done(10);
  std::atomic<int> ok{0};
  for (int i = 0; i < 10; ++i) {
    v1::GetRequest req;
    req.set_id(std::string(43, 'A'));
    (*batcher)->Get(req, [&](absl::StatusOr<v1::Session> s) {
      if (s.ok()) ok.fetch_add(1);
      done.DecrementCount();
    });
  }
  done.Wait();
  EXPECT_EQ(ok.load(), 0);
}

TEST(BatcherOptionsTest, ValidateRejectsNonsense) {
  client::BatcherOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.max_batch = 0;
  EXPECT_FALSE(o.Validate().ok());
  o.max_batch = 1001;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.max_in_flight = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.deadline = absl::ZeroDuration();
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace sg
