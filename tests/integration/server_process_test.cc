// The real sessiongrid-server binary as an operator runs it: durability
// across kill -9, drain under load on SIGTERM, and bad flags.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
using testutil::Subprocess;

class ServerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-process"); }
  void TearDown() override { testutil::RemoveTree(dir_); }

  // Starts the server on a free port and waits until it listens.
  std::unique_ptr<Subprocess> StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {SG_SERVER_BIN, "--listen=127.0.0.1:0",
                                     "--data-dir=" + dir_ + "/data"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto server = Subprocess::Start(argv);
    EXPECT_TRUE(server.ok());
    auto line = (*server)->WaitForLine("msg=listening", absl::Seconds(30));
    EXPECT_TRUE(line.has_value()) << (*server)->Output();
    address_ = line ? testutil::FieldFromLogLine(*line, "address") : "";
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    return *std::move(server);
  }

  std::unique_ptr<Subprocess> RunToExit(std::vector<std::string> args,
                                        int* exit_code) {
    args.insert(args.begin(), SG_SERVER_BIN);
    auto p = Subprocess::Start(args);
    EXPECT_TRUE(p.ok());
    auto code = (*p)->Wait(absl::Seconds(30));
    EXPECT_TRUE(code.has_value());
    *exit_code = code.value_or(-1);
    return *std::move(p);
  }

  std::string dir_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ServerProcessTest, AcknowledgedWritesSurviveKill9) {
  constexpr int kSessions = 300;
  std::vector<std::string> ids;
  {
    auto server = StartServer();
    auto stub = v1::SessionService::NewStub(channel_);
    for (int i = 0; i < kSessions; ++i) {
      grpc::ClientContext ctx;
      v1::CreateRequest req;
      req.set_data("payload-" + std::to_string(i));
      if (i % 3 == 0) req.set_principal("user-" + std::to_string(i % 7));
      v1::CreateResponse resp;
      ASSERT_TRUE(stub->Create(&ctx, req, &resp).ok());
      ids.push_back(resp.session().id());
    }
    server->Signal(SIGKILL);
    EXPECT_EQ(server->Wait(absl::Seconds(30)), 128 + SIGKILL);
  }
  auto server = StartServer();
  auto stub = v1::SessionService::NewStub(channel_);
  for (int i = 0; i < kSessions; ++i) {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(ids[i]);
    v1::GetResponse resp;
    grpc::Status s = stub->Get(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
    EXPECT_EQ(resp.session().data(), "payload-" + std::to_string(i));
  }
  auto admin = v1::AdminService::NewStub(channel_);
  grpc::ClientContext ctx;
  v1::NodeStatsResponse stats;
  ASSERT_TRUE(admin->NodeStats(&ctx, {}, &stats).ok());
  EXPECT_EQ(stats.stats().sessions(), kSessions);
  EXPECT_EQ(stats.stats().authenticated_sessions(), kSessions / 3);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
}

TEST_F(ServerProcessTest, SigtermUnderLoadCompletesAcceptedCallsAndExitsZero) {
  auto server = StartServer({"--drain-timeout=10s"});
  constexpr int kThreads = 4;
  constexpr int kMaxCallsPerThread = 20000;
  std::atomic<bool> signalled{false};
  std::atomic<int> ok_after_signal{0};
  absl::Mutex mu;
  std::vector<std::string> created;
  std::vector<std::string> unexpected;
  std::atomic<int> calls{0};
  std::atomic<int> refused{0};
  std::atomic<int> running{kThreads};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      struct Done {
        std::atomic<int>* running;
        ~Done() { running->fetch_sub(1); }
      } done{&running};
      auto stub = v1::SessionService::NewStub(channel_);
      absl::Time stop_by = absl::Now() + absl::Seconds(60);
      for (int i = 0; i < kMaxCallsPerThread && absl::Now() < stop_by; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
        v1::CreateRequest req;
        req.set_data("t" + std::to_string(t) + "-" + std::to_string(i));
        v1::CreateResponse resp;
        // Calls racing the signal may be refused before the server hands
        // them to the service (gRPC answers UNAVAILABLE, or CANCELLED for a
        // call that arrived but was never started); nothing else may fail.
        grpc::Status s = stub->Create(&ctx, req, &resp);
        calls.fetch_add(1);
        absl::MutexLock lock(&mu);
        if (s.ok()) {
          created.push_back(resp.session().id());
          if (signalled.load()) ok_after_signal.fetch_add(1);
        } else if (signalled.load() &&
                   (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                    s.error_code() == grpc::StatusCode::CANCELLED)) {
          refused.fetch_add(1);
          return;  // the drain began: this client is done
        } else {
          unexpected.push_back(std::to_string(s.error_code()) + " " +
                               s.error_message());
          return;
        }
      }
    });
  }
  // Signal once the load is well under way: 2,000 calls, polled within a
  // deadline, and not after every client has stopped.
  constexpr int kCallsBeforeSignal = 2000;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (calls.load() < kCallsBeforeSignal && running.load() > 0 &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(calls.load(), kCallsBeforeSignal)
      << "the load did not reach " << kCallsBeforeSignal
      << " calls within 60 s (" << running.load()
      << " clients still running); signalling anyway";
  signalled.store(true);
  server->Signal(SIGTERM);
  auto code = server->Wait(absl::Seconds(60));
  for (auto& th : threads) th.join();
  EXPECT_EQ(code, 0) << server->Output();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front() << " of " << unexpected.size();
  // At most the calls in flight at the signal, one per client, are refused.
  EXPECT_LE(refused.load(), kThreads);
  EXPECT_NE(server->Output().find("drain: done"), std::string::npos);

  // Every acknowledged create is there after a restart.
  auto again = StartServer();
  auto stub = v1::SessionService::NewStub(channel_);
  for (const std::string& id : created) {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(id);
    v1::GetResponse resp;
    ASSERT_TRUE(stub->Get(&ctx, req, &resp).ok()) << id;
  }
  again->Signal(SIGTERM);
  EXPECT_EQ(again->Wait(absl::Seconds(30)), 0);
}

TEST_F(ServerProcessTest, BadFlagsExitTwoNamingTheFlag) {
  struct Case {
    std::string arg;
    std::string named;
  };
  for (const Case& c : std::vector<Case>{
           {"--default-ttl=banana", "--default-ttl"},
           {"--max-session-bytes=12XB", "--max-session-bytes"},
           {"--touch-after=2", "touch-after"},
           {"--listen=nowhere", "--listen"},
           {"--no-such-flag=1", "--no-such-flag"},
           {"--sync-writes=maybe", "--sync-writes"}}) {
    int code = 0;
    auto p = RunToExit({c.arg, "--data-dir=" + dir_ + "/bad"}, &code);
    EXPECT_EQ(code, 2) << c.arg << "\n" << p->Output();
    EXPECT_NE(p->Output().find(c.named), std::string::npos)
        << c.arg << "\n" << p->Output();
  }
}

TEST_F(ServerProcessTest, HelpDocumentsEveryFlag) {
  int code = 0;
  auto p = RunToExit({"--help"}, &code);
  EXPECT_EQ(code, 0);
  for (const char* flag :
       {"--listen", "--data-dir", "--node-id", "--default-ttl", "--max-ttl",
        "--max-session-bytes", "--touch-after", "--tombstone-ttl",
        "--sync-writes", "--drain-timeout"}) {
    EXPECT_NE(p->Output().find(flag), std::string::npos) << flag;
  }
}

TEST_F(ServerProcessTest, EnvironmentSetsFlagsAndFlagsWin) {
  auto p = Subprocess::Start({SG_SERVER_BIN, "--listen=127.0.0.1:0",
                              "--data-dir=" + dir_ + "/env"},
                             {"SESSIONGRID_NODE_ID=from-env",
                              "SESSIONGRID_LISTEN=127.0.0.1:1"});
  ASSERT_TRUE(p.ok());
  auto line = (*p)->WaitForLine("msg=listening", absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << (*p)->Output();
  EXPECT_EQ(testutil::FieldFromLogLine(*line, "node_id"), "from-env");
  EXPECT_NE(testutil::FieldFromLogLine(*line, "address"), "127.0.0.1:1");
  (*p)->Signal(SIGTERM);
  EXPECT_EQ((*p)->Wait(absl::Seconds(30)), 0);
}

TEST_F(ServerProcessTest, LockedDataDirIsAClearErrorNotACrash) {
  auto first = StartServer();
  int code = 0;
  auto second = RunToExit({"--listen=127.0.0.1:0", "--data-dir=" + dir_ + "/data"},
                          &code);
  EXPECT_EQ(code, 1) << second->Output();
  EXPECT_NE(second->Output().find("level=error"), std::string::npos)
      << second->Output();
  EXPECT_NE(second->Output().find(dir_ + "/data"), std::string::npos)
      << second->Output();
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(absl::Seconds(30)), 0);
}

// gRPC would share a port between two servers (SO_REUSEPORT) and split
// the connections between them; a second node on a taken port must refuse
// to start instead, whether the port is its client or its peer port, and
// a cluster node that fails half-way through starting must not crash.
TEST_F(ServerProcessTest, TakenPortIsAClearErrorNotASharedPort) {
  auto first = StartServer();
  const std::string free_port =
      absl::StrCat("127.0.0.1:", testutil::FreePort());
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{"--listen=" + address_}, "cannot listen on " + address_},
           {{"--listen=" + address_, "--peer-listen=" + free_port,
             "--peers=" + free_port},
            "cannot listen on " + address_},
           {{"--listen=" + free_port, "--peer-listen=" + address_,
             "--peers=" + address_},
            "cannot listen on --peer-listen " + address_}}) {
    std::vector<std::string> args = c.args;
    args.push_back("--data-dir=" + dir_ + "/second");
    args.push_back("--metrics-listen=");
    int code = 0;
    auto second = RunToExit(args, &code);
    const std::string what =
        absl::StrJoin(c.args, " ") + "\n" + second->Output();
    EXPECT_EQ(code, 1) << what;
    EXPECT_NE(second->Output().find(c.error), std::string::npos) << what;
  }
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(absl::Seconds(30)), 0);
}

TEST_F(ServerProcessTest, CorruptDataDirIsAClearErrorNotACrash) {
  std::string data = dir_ + "/corrupt";
  ASSERT_EQ(system(("mkdir -p " + data + " && echo garbage > " + data +
                    "/CURRENT && echo x > " + data + "/IDENTITY")
                       .c_str()),
            0);
  int code = 0;
  auto p = RunToExit({"--listen=127.0.0.1:0", "--data-dir=" + data}, &code);
  EXPECT_EQ(code, 1) << p->Output();
  EXPECT_NE(p->Output().find("level=error"), std::string::npos) << p->Output();
}

}  // namespace
}  // namespace sg
