// SessionService and AdminService over loopback gRPC against an in-process
// node: every RPC, every error code the API documents.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/service/node_server.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/subprocess.h"

namespace sg::service {
namespace {
namespace v1 = ::sessiongrid::v1;

class SessionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-service");
    ASSERT_FALSE(dir_.empty());
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.drain_timeout = absl::Seconds(5);
    options.store.data_dir = dir_;
    options.store.node_id = "test-node";
    options.store.max_session_bytes = 1024;
    options.store.max_ttl = absl::Hours(48);
    auto server = NodeServer::Start(options, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel(server_->address(),
                                       grpc::InsecureChannelCredentials());
    sessions_ = v1::SessionService::NewStub(channel);
    admin_ = v1::AdminService::NewStub(channel);
  }
  void TearDown() override {
    sessions_.reset();
    admin_.reset();
    if (server_) {
      EXPECT_TRUE(server_->Drain().ok());
    }
    server_.reset();
    testutil::RemoveTree(dir_);
  }

  // Creates a session and returns it.
  v1::Session MustCreate(const std::string& data,
                         const std::string& principal = "") {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data(data);
    req.set_principal(principal);
    v1::CreateResponse resp;
    grpc::Status s = sessions_->Create(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.session();
  }

  grpc::Status Get(const std::string& id, v1::GetResponse* resp,
                   bool touch = false) {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(id);
    req.set_touch(touch);
    return sessions_->Get(&ctx, req, resp);
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<NodeServer> server_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(SessionServiceTest, CreateThenGetReturnsTheSession) {
  v1::Session created = MustCreate("hello");
  EXPECT_EQ(created.id().size(), 43u);
  EXPECT_EQ(created.session_class(), v1::SESSION_CLASS_ANONYMOUS);
  EXPECT_EQ(created.version().node_id(), "test-node");
  v1::GetResponse got;
  ASSERT_TRUE(Get(created.id(), &got).ok());
  EXPECT_EQ(got.session().data(), "hello");
  EXPECT_EQ(got.session().expire_time().seconds(),
            created.create_time().seconds() + 24 * 3600);
}

TEST_F(SessionServiceTest, CreateWithPrincipalIsAuthenticated) {
  v1::Session created = MustCreate("x", "alice");
  EXPECT_EQ(created.session_class(), v1::SESSION_CLASS_AUTHENTICATED);
  EXPECT_EQ(created.principal(), "alice");
}

TEST_F(SessionServiceTest, IdsAreUniqueAndNeverFromTheClient) {
  std::string a = MustCreate("").id();
  std::string b = MustCreate("").id();
  EXPECT_NE(a, b);
}

TEST_F(SessionServiceTest, GetOfUnknownIdIsNotFound) {
  v1::GetResponse resp;
  EXPECT_EQ(Get(std::string(43, 'A'), &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, MalformedIdsAreInvalidArgument) {
  v1::GetResponse resp;
  EXPECT_EQ(Get("short", &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get(std::string(42, 'A') + "*", &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get("", &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext ctx;
  v1::DeleteRequest del;
  del.set_id("../../etc/passwd");
  v1::DeleteResponse del_resp;
  EXPECT_EQ(sessions_->Delete(&ctx, del, &del_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SessionServiceTest, ExpiredSessionIsNotFound) {
  grpc::ClientContext ctx;
  v1::CreateRequest req;
  req.mutable_ttl()->set_seconds(60);
  v1::CreateResponse created;
  ASSERT_TRUE(sessions_->Create(&ctx, req, &created).ok());
  clock_.Advance(absl::Seconds(61));
  v1::GetResponse resp;
  EXPECT_EQ(Get(created.session().id(), &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, TtlOutOfRangeIsInvalidArgument) {
  for (int64_t seconds : {int64_t{-5}, int64_t{0}, int64_t{49 * 3600}}) {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.mutable_ttl()->set_seconds(seconds);
    v1::CreateResponse resp;
    EXPECT_EQ(sessions_->Create(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << seconds;
  }
}

TEST_F(SessionServiceTest, OversizedDataAndPrincipalAreInvalidArgument) {
  {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data(std::string(1025, 'x'));
    v1::CreateResponse resp;
    EXPECT_EQ(sessions_->Create(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    // Far past the limit, but below the transport cap: our own check answers.
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data(std::string(60 * 1024, 'x'));
    v1::CreateResponse resp;
    grpc::Status s = sessions_->Create(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_principal(std::string(257, 'p'));
    v1::CreateResponse resp;
    EXPECT_EQ(sessions_->Create(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::Session exact = MustCreate(std::string(1024, 'x'), std::string(256, 'p'));
  EXPECT_EQ(exact.data().size(), 1024u);
}

TEST_F(SessionServiceTest, UpdateWithStaleVersionFailsPrecondition) {
  v1::Session s = MustCreate("v1");
  v1::UpdateResponse first;
  {
    grpc::ClientContext ctx;
    v1::UpdateRequest req;
    req.set_id(s.id());
    req.set_data("v2");
    *req.mutable_expected_version() = s.version();
    ASSERT_TRUE(sessions_->Update(&ctx, req, &first).ok());
    EXPECT_EQ(first.session().data(), "v2");
  }
  {
    grpc::ClientContext ctx;
    v1::UpdateRequest req;
    req.set_id(s.id());
    req.set_data("v3");
    *req.mutable_expected_version() = s.version();  // stale now
    v1::UpdateResponse resp;
    EXPECT_EQ(sessions_->Update(&ctx, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  v1::GetResponse got;
  ASSERT_TRUE(Get(s.id(), &got).ok());
  EXPECT_EQ(got.session().data(), "v2");
}

TEST_F(SessionServiceTest, UpdatePrincipalOnlyKeepsData) {
  v1::Session s = MustCreate("cart=3");
  grpc::ClientContext ctx;
  v1::UpdateRequest req;
  req.set_id(s.id());
  req.set_principal("bob");
  v1::UpdateResponse resp;
  ASSERT_TRUE(sessions_->Update(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.session().data(), "cart=3");
  EXPECT_EQ(resp.session().session_class(), v1::SESSION_CLASS_AUTHENTICATED);
}

TEST_F(SessionServiceTest, UpdateOfUnknownIdIsNotFound) {
  grpc::ClientContext ctx;
  v1::UpdateRequest req;
  req.set_id(std::string(43, 'B'));
  req.set_data("x");
  v1::UpdateResponse resp;
  EXPECT_EQ(sessions_->Update(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, TouchSlidesExpiry) {
  v1::Session s = MustCreate("x");
  clock_.Advance(absl::Hours(12));
  grpc::ClientContext ctx;
  v1::TouchRequest req;
  req.set_id(s.id());
  v1::TouchResponse resp;
  ASSERT_TRUE(sessions_->Touch(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.expire_time().seconds(),
            s.create_time().seconds() + 36 * 3600);
  clock_.Advance(absl::Hours(20));  // past the original expiry
  v1::GetResponse got;
  EXPECT_TRUE(Get(s.id(), &got).ok());
}

TEST_F(SessionServiceTest, GetWithTouchSlidesExpiry) {
  v1::Session s = MustCreate("x");
  clock_.Advance(absl::Hours(12));
  v1::GetResponse touched;
  ASSERT_TRUE(Get(s.id(), &touched, /*touch=*/true).ok());
  EXPECT_EQ(touched.session().expire_time().seconds(),
            s.create_time().seconds() + 36 * 3600);
}

TEST_F(SessionServiceTest, DeleteRemovesAndReportsWhetherItExisted) {
  v1::Session s = MustCreate("x");
  for (bool expected : {true, false}) {
    grpc::ClientContext ctx;
    v1::DeleteRequest req;
    req.set_id(s.id());
    v1::DeleteResponse resp;
    ASSERT_TRUE(sessions_->Delete(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.deleted(), expected);
  }
  v1::GetResponse got;
  EXPECT_EQ(Get(s.id(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, RegenerateMovesDataToANewIdAndKillsTheOld) {
  v1::Session s = MustCreate("secret");
  grpc::ClientContext ctx;
  v1::RegenerateRequest req;
  req.set_id(s.id());
  req.set_principal("carol");
  v1::RegenerateResponse resp;
  ASSERT_TRUE(sessions_->Regenerate(&ctx, req, &resp).ok());
  EXPECT_NE(resp.session().id(), s.id());
  EXPECT_EQ(resp.previous_id(), s.id());
  EXPECT_EQ(resp.session().data(), "secret");
  EXPECT_EQ(resp.session().principal(), "carol");
  v1::GetResponse got;
  EXPECT_EQ(Get(s.id(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Get(resp.session().id(), &got).ok());
}

TEST_F(SessionServiceTest, RegenerateOfUnknownIdIsNotFound) {
  grpc::ClientContext ctx;
  v1::RegenerateRequest req;
  req.set_id(std::string(43, 'C'));
  v1::RegenerateResponse resp;
  EXPECT_EQ(sessions_->Regenerate(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, ListAndDeleteByPrincipal) {
  MustCreate("a", "dave");
  MustCreate("b", "dave");
  MustCreate("c", "erin");
  MustCreate("d");
  {
    grpc::ClientContext ctx;
    v1::ListByPrincipalRequest req;
    req.set_principal("dave");
    v1::ListByPrincipalResponse resp;
    ASSERT_TRUE(sessions_->ListByPrincipal(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.sessions_size(), 2);
    for (const auto& s : resp.sessions()) EXPECT_EQ(s.principal(), "dave");
  }
  {
    grpc::ClientContext ctx;
    v1::ListByPrincipalRequest req;
    req.set_principal("dave");
    req.set_limit(1);
    v1::ListByPrincipalResponse resp;
    ASSERT_TRUE(sessions_->ListByPrincipal(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.sessions_size(), 1);
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteByPrincipalRequest req;
    req.set_principal("dave");
    v1::DeleteByPrincipalResponse resp;
    ASSERT_TRUE(sessions_->DeleteByPrincipal(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.deleted_count(), 2);
  }
  {
    grpc::ClientContext ctx;
    v1::NodeStatsRequest req;
    v1::NodeStatsResponse resp;
    ASSERT_TRUE(admin_->NodeStats(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.stats().sessions(), 2);
    EXPECT_EQ(resp.stats().authenticated_sessions(), 1);
  }
}

TEST_F(SessionServiceTest, EmptyPrincipalArgumentIsInvalid) {
  grpc::ClientContext ctx;
  v1::ListByPrincipalRequest req;
  v1::ListByPrincipalResponse resp;
  EXPECT_EQ(sessions_->ListByPrincipal(&ctx, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SessionServiceTest, NodeStatsAndClusterStatusDescribeTheNode) {
  MustCreate("x");
  MustCreate("y", "frank");
  grpc::ClientContext ctx;
  v1::ClusterStatusRequest req;
  v1::ClusterStatusResponse resp;
  ASSERT_TRUE(admin_->ClusterStatus(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), "HEALTHY");
  ASSERT_EQ(resp.nodes_size(), 1);
  const v1::NodeStatus& self = resp.nodes(0);
  EXPECT_TRUE(self.self());
  EXPECT_EQ(self.node_id(), "test-node");
  EXPECT_EQ(self.address(), server_->address());
  EXPECT_EQ(self.stats().sessions(), 2);
  EXPECT_EQ(self.stats().anonymous_sessions(), 1);
  EXPECT_EQ(self.stats().creates(), 2);
  EXPECT_GT(self.stats().memory().process_rss_bytes(), 0);
  EXPECT_FALSE(self.stats().build_version().empty());
}

TEST_F(SessionServiceTest, CallsAfterDrainAreUnavailable) {
  v1::Session s = MustCreate("x");
  ASSERT_TRUE(server_->Drain().ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetRequest req;
  req.set_id(s.id());
  v1::GetResponse resp;
  EXPECT_EQ(sessions_->Get(&ctx, req, &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(server_->Drain().ok());  // idempotent
}

}  // namespace
}  // namespace sg::service
