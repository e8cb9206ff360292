#include "sessiongrid/client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fake_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sessiongrid/batcher.h"

namespace sg::client {
namespace {

using ::sg::client::testing::FakeServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace v1 = ::sessiongrid::v1;

// ---------------------------------------------------------------- targets

TEST(ResolveTargetsTest, LiteralIPv4ListBecomesOneMultiAddressTarget) {
  absl::StatusOr<std::vector<std::string>> t =
      ResolveTargets("127.0.0.1:1, 10.0.0.2:7400");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, ElementsAre("ipv4:127.0.0.1:1,10.0.0.2:7400"));
}

TEST(ResolveTargetsTest, LiteralIPv6ListBecomesOneMultiAddressTarget) {
  absl::StatusOr<std::vector<std::string>> t =
      ResolveTargets("[::1]:1,[fe80::2]:2");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, ElementsAre("ipv6:[::1]:1,[fe80::2]:2"));
}

TEST(ResolveTargetsTest, NamesAndMixedFamiliesGetOneChannelEach) {
  absl::StatusOr<std::vector<std::string>> t =
      ResolveTargets("localhost:1,127.0.0.1:2,[::1]:3");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, ElementsAre("dns:///localhost:1", "ipv4:127.0.0.1:2",
                              "ipv6:[::1]:3"));
}

TEST(ResolveTargetsTest, SchemeTargetsPassThrough) {
  for (const char* target :
       {"dns:///sessiongrid.default.svc:7400", "dns://8.8.8.8/example.com:1",
        "ipv4:127.0.0.1:1,127.0.0.1:2", "ipv6:[::1]:5", "unix:/tmp/sg.sock"}) {
    absl::StatusOr<std::vector<std::string>> t = ResolveTargets(target);
    ASSERT_TRUE(t.ok()) << target << ": " << t.status();
    EXPECT_THAT(*t, ElementsAre(target));
  }
}

TEST(ClientOptionsTest, ValidateAcceptsDefaultsWithATarget) {
  ClientOptions options;
  options.target = "127.0.0.1:7400";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
}

TEST(ClientOptionsTest, ValidateRejectsBadTargets) {
  for (const char* target : {"",
                             "   ",
                             "localhost",
                             "localhost:",
                             "host:0",
                             "host:65536",
                             "host:12ab",
                             "a:1,,b:2",
                             "a:1,",
                             "::1:5",
                             "[::1]5",
                             "[nope]:5",
                             "ipv4:localhost:1",
                             "ipv4:[::1]:1",
                             "ipv6:127.0.0.1:1",
                             "dns:///",
                             "dns:///name",
                             "dns://authority",
                             "unix:",
                             "bad host:1",
                             "999.1.1.1:5"}) {
    ClientOptions options;
    options.target = target;
    absl::Status s = options.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
        << "target \"" << target << "\" gave " << s;
  }
}

TEST(ClientOptionsTest, ValidateRejectsBadNumbers) {
  auto valid = [] {
    ClientOptions o;
    o.target = "127.0.0.1:1";
    return o;
  };
  std::vector<ClientOptions> bad(8, valid());
  bad[0].deadline = absl::ZeroDuration();
  bad[1].max_attempts = 0;
  bad[2].initial_backoff = absl::ZeroDuration();
  bad[3].max_backoff = absl::Milliseconds(1);  // below initial_backoff
  bad[4].backoff_multiplier = 0.5;
  bad[5].jitter = 1.5;
  bad[6].max_message_bytes = 0;
  bad[7].connections = 0;
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(bad[i].Validate().code(), absl::StatusCode::kInvalidArgument)
        << "case " << i;
  }
}

TEST(ClientOptionsTest, CreateRefusesInvalidOptions) {
  ClientOptions options;
  options.target = "nohostport";
  EXPECT_EQ(Client::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------ calls

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  std::unique_ptr<Client> MakeClient(
      int max_attempts = 3, absl::Duration deadline = absl::Seconds(5)) {
    ClientOptions options;
    options.target = server_.address();
    options.max_attempts = max_attempts;
    options.deadline = deadline;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    options.seed = 42;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  static v1::GetRequest GetReq(std::string id) {
    v1::GetRequest req;
    req.set_id(std::move(id));
    return req;
  }

  FakeServer server_{"a"};
};

TEST_F(ClientTest, GetIsRetriedOnUnavailableAndSucceeds) {
  auto client = MakeClient(3);
  server_.state().FailNext(2, grpc::StatusCode::UNAVAILABLE, "draining");
  absl::StatusOr<v1::GetResponse> resp = client->Get(GetReq("s1"));
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->session().id(), "s1");
  EXPECT_EQ(server_.state().calls("Get"), 3);
}

TEST_F(ClientTest, RetriesStopAtMaxAttempts) {
  auto client = MakeClient(3);
  server_.state().FailNext(10, grpc::StatusCode::UNAVAILABLE, "draining");
  absl::StatusOr<v1::GetResponse> resp = client->Get(GetReq("s1"));
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(resp.status().message(), "draining");
  EXPECT_EQ(server_.state().calls("Get"), 3);
}

TEST_F(ClientTest, EveryIdempotentCallIsRetried) {
  auto client = MakeClient(2);
  auto& state = server_.state();
  auto fail_once = [&] {
    state.FailNext(1, grpc::StatusCode::UNAVAILABLE, "try again");
  };
  fail_once();
  v1::TouchRequest touch;
  touch.set_id("s1");
  EXPECT_TRUE(client->Touch(touch).ok());
  fail_once();
  v1::DeleteRequest del;
  del.set_id("s1");
  EXPECT_TRUE(client->Delete(del).ok());
  fail_once();
  v1::ListByPrincipalRequest list;
  list.set_principal("alice");
  EXPECT_TRUE(client->ListByPrincipal(list).ok());
  fail_once();
  v1::DeleteByPrincipalRequest del_all;
  del_all.set_principal("alice");
  EXPECT_TRUE(client->DeleteByPrincipal(del_all).ok());
  fail_once();
  EXPECT_TRUE(client->NodeStats().ok());
  fail_once();
  EXPECT_TRUE(client->ClusterStatus().ok());
  fail_once();
  v1::UpdateRequest cas;
  cas.set_id("s1");
  cas.mutable_expected_version()->set_wall_millis(1);
  EXPECT_TRUE(client->Update(cas).ok());
  for (const char* method :
       {"Touch", "Delete", "ListByPrincipal", "DeleteByPrincipal", "NodeStats",
        "ClusterStatus", "Update"}) {
    EXPECT_EQ(state.calls(method), 2) << method;
  }
}

TEST_F(ClientTest, CreateIsNotRetried) {
  auto client = MakeClient(3);
  server_.state().FailNext(1, grpc::StatusCode::UNAVAILABLE, "draining");
  v1::CreateRequest req;
  req.set_data("x");
  EXPECT_EQ(client->Create(req).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.state().calls("Create"), 1);
  // The failure was the server's only scripted one: the next call works.
  EXPECT_TRUE(client->Create(req).ok());
  EXPECT_EQ(server_.state().calls("Create"), 2);
}

TEST_F(ClientTest, RegenerateAndPlainUpdateAreNotRetried) {
  auto client = MakeClient(3);
  server_.state().FailNext(1, grpc::StatusCode::UNAVAILABLE);
  v1::RegenerateRequest regen;
  regen.set_id("s1");
  EXPECT_EQ(client->Regenerate(regen).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.state().calls("Regenerate"), 1);

  server_.state().FailNext(1, grpc::StatusCode::UNAVAILABLE);
  v1::UpdateRequest update;
  update.set_id("s1");
  update.set_data("new");
  EXPECT_FALSE(IsIdempotent(update));
  EXPECT_EQ(client->Update(update).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.state().calls("Update"), 1);
}

TEST_F(ClientTest, OnlyUnavailableIsRetried) {
  auto client = MakeClient(3);
  server_.state().FailNext(1, grpc::StatusCode::ABORTED, "conflict");
  EXPECT_EQ(client->Get(GetReq("s1")).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(server_.state().calls("Get"), 1);
}

TEST_F(ClientTest, DeadlineExceededSurfaces) {
  auto client = MakeClient(3, absl::Milliseconds(200));
  server_.state().Block();
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::GetResponse> resp = client->Get(GetReq("s1"));
  const absl::Duration took = absl::Now() - start;
  server_.state().Release();
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded)
      << resp.status();
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_EQ(server_.state().calls("Get"), 1);
}

TEST_F(ClientTest, StatusCodesMapOneToOne) {
  auto client = MakeClient(1);
  for (int code = 1; code <= 16; ++code) {
    const std::string message = "scripted " + std::to_string(code);
    server_.state().FailNext(1, static_cast<grpc::StatusCode>(code), message);
    v1::CreateRequest req;
    absl::Status s = client->Create(req).status();
    EXPECT_EQ(static_cast<int>(s.code()), code) << s;
    EXPECT_EQ(s.message(), message);
  }
  EXPECT_EQ(FromGrpcStatus(grpc::Status::OK), absl::OkStatus());
}

TEST_F(ClientTest, HealthReportsServingStatus) {
  auto client = MakeClient(1);
  absl::StatusOr<ServingStatus> all = client->Health();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, ServingStatus::kServing);

  server_.health()->SetServingStatus("sessiongrid.v1.SessionService", false);
  absl::StatusOr<ServingStatus> svc =
      client->Health("sessiongrid.v1.SessionService");
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ(*svc, ServingStatus::kNotServing);
  EXPECT_EQ(ServingStatusName(*svc), "NOT_SERVING");

  EXPECT_EQ(client->Health("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, AsyncCallsDeliverResultsOnce) {
  auto client = MakeClient(1);
  absl::Notification got;
  absl::StatusOr<v1::GetResponse> result = absl::UnknownError("unset");
  client->GetAsync(GetReq("s7"), [&](absl::StatusOr<v1::GetResponse> r) {
    result = std::move(r);
    got.Notify();
  });
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->session().id(), "s7");

  server_.state().FailNext(1, grpc::StatusCode::NOT_FOUND, "gone");
  absl::Notification failed;
  absl::Status error;
  v1::CreateRequest create;
  client->CreateAsync(create, [&](absl::StatusOr<v1::CreateResponse> r) {
    error = r.status();
    failed.Notify();
  });
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(error.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(error.message(), "gone");
}

// A Get that meets a node going away twice (with one balanced channel the
// next pick can be the same draining node) still succeeds within
// max_attempts, on the async path the edge uses and through the batcher.
TEST_F(ClientTest, AsyncAndBatchedGetsAreRetriedUpToMaxAttempts) {
  auto client = MakeClient(3);
  server_.state().FailNext(2, grpc::StatusCode::UNAVAILABLE, "draining");
  absl::Notification got;
  absl::StatusOr<v1::GetResponse> result = absl::UnknownError("unset");
  client->GetAsync(GetReq("s1"), [&](absl::StatusOr<v1::GetResponse> r) {
    result = std::move(r);
    got.Notify();
  });
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(server_.state().calls("Get"), 3);

  auto batcher = SessionBatcher::Create(client.get());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  server_.state().FailNext(2, grpc::StatusCode::UNAVAILABLE, "draining");
  absl::Notification batched;
  absl::StatusOr<v1::Session> session = absl::UnknownError("unset");
  (*batcher)->Get(GetReq("s2"), [&](absl::StatusOr<v1::Session> r) {
    session = std::move(r);
    batched.Notify();
  });
  ASSERT_TRUE(batched.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->id(), "s2");
  EXPECT_EQ(server_.state().calls("BatchGet"), 3);

  // A third failure is one too many: the caller sees it.
  server_.state().FailNext(3, grpc::StatusCode::UNAVAILABLE, "draining");
  absl::Notification failed;
  (*batcher)->Get(GetReq("s3"), [&](absl::StatusOr<v1::Session> r) {
    session = std::move(r);
    failed.Notify();
  });
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(session.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.state().calls("BatchGet"), 6);
}

TEST_F(ClientTest, ConnectionsOptionOpensSeparateChannels) {
  ClientOptions options;
  options.target = server_.address();
  options.connections = 3;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->channel_count(), 3u);
  EXPECT_TRUE((*client)->WaitForConnected(absl::Seconds(10)).ok());
  for (int i = 0; i < 6; ++i) {
    v1::GetRequest req;
    req.set_id("s");
    EXPECT_TRUE((*client)->Get(req).ok());
  }
  EXPECT_EQ(server_.state().calls("Get"), 6);
}

// ------------------------------------------------------- several servers

class MultiAddressTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(a_.ok() && b_.ok()); }

  // Makes Get calls until both servers have answered some, at most 200.
  void CallUntilBothSeen(const Client& client) {
    v1::GetRequest req;
    req.set_id("s");
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(client.Get(req).ok());
      if (a_.state().calls("Get") > 0 && b_.state().calls("Get") > 0) return;
    }
  }

  FakeServer a_{"a"};
  FakeServer b_{"b"};
};

TEST_F(MultiAddressTest, LiteralListSpreadsCallsOverBothServers) {
  ClientOptions options;
  options.target = a_.address() + "," + b_.address();
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->channel_count(), 1u);  // one ipv4: channel
  CallUntilBothSeen(**client);
  EXPECT_GT(a_.state().calls("Get"), 0);
  EXPECT_GT(b_.state().calls("Get"), 0);
}

TEST_F(MultiAddressTest, NameListRotatesOverChannels) {
  ClientOptions options;
  options.target = "localhost:" + std::to_string(a_.port()) +
                   ",localhost:" + std::to_string(b_.port());
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->channel_count(), 2u);
  v1::GetRequest req;
  req.set_id("s");
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<v1::GetResponse> r = (*client)->Get(req);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Manual rotation alternates strictly.
  EXPECT_EQ(a_.state().calls("Get"), 5);
  EXPECT_EQ(b_.state().calls("Get"), 5);
}

TEST_F(MultiAddressTest, RetryMovesToAnotherServer) {
  ClientOptions options;
  options.target = "localhost:" + std::to_string(a_.port()) +
                   ",localhost:" + std::to_string(b_.port());
  options.initial_backoff = absl::Milliseconds(1);
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  a_.state().FailNext(100, grpc::StatusCode::UNAVAILABLE, "a is down");
  v1::GetRequest req;
  req.set_id("s");
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<v1::GetResponse> r = (*client)->Get(req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->session().data(), "served-by-b");
  }
}

}  // namespace
}  // namespace sg::client
