// The streaming session path against real sessiongrid-server processes: a
// three-node cluster, users pipelining read-then-write rounds through one
// SessionPipeline, while a node drains (SIGTERM, restarted at once) and
// while a node is killed (SIGKILL). A drain may fail nothing, not even a
// write that is never retried; a kill fails at most the non-idempotent
// calls that were on the dead node's streams, each with UNAVAILABLE; and
// no acknowledged write is lost either way.
#include <atomic>
#include <functional>
#include <memory>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sessiongrid/client.h"
#include "sessiongrid/pipeline.h"
#include "tests/testutil/cluster.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
using testutil::TestCluster;

constexpr int kUsers = 24;

// One user's session: a counter only ever written by its user, so a read
// below the last acknowledged write is a lost write.
struct User {
  std::string id;
  int64_t acked = 0;  // last counter the service acknowledged
};

// Users issuing Get then Update (no expected version: never retried)
// rounds through the pipeline, each round started from the last one's
// callback, until stopped. Counts outcomes by code.
class Load {
 public:
  Load(client::SessionPipeline* pipeline, std::vector<User>* users)
      : pipeline_(pipeline), users_(users) {}

  void Start() {
    for (size_t u = 0; u < users_->size(); ++u) Round(u);
  }
  // Stops issuing and waits for the rounds in flight (bounded: every call
  // has the client's deadline).
  void Stop() {
    on_ = false;
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* active) { return *active == 0; }, &active_));
  }
  int64_t rounds() const { return rounds_.load(); }
  std::map<std::string, int> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  std::vector<std::string> regressions() const {
    absl::MutexLock lock(&mu_);
    return regressions_;
  }

 private:
  void Round(size_t u) {
    {
      absl::MutexLock lock(&mu_);
      if (!on_) return;
      ++active_;
    }
    v1::GetRequest get;
    get.set_id((*users_)[u].id);
    pipeline_->Get(get, [this, u](absl::StatusOr<v1::GetResponse> got) {
      if (!got.ok()) return End(u, got.status(), "get");
      User& user = (*users_)[u];
      int64_t seen = 0;
      if (!absl::SimpleAtoi(got->session().data(), &seen) || seen < user.acked) {
        absl::MutexLock lock(&mu_);
        regressions_.push_back(absl::StrCat(user.id, ": read ",
                                            got->session().data(), " after ",
                                            user.acked, " was acknowledged"));
      }
      v1::UpdateRequest update;
      update.set_id(user.id);
      const int64_t next = user.acked + 1;
      update.set_data(absl::StrCat(next));
      pipeline_->Update(update, [this, u, next](
                                    absl::StatusOr<v1::UpdateResponse> r) {
        if (r.ok()) (*users_)[u].acked = next;
        End(u, r.status(), "update");
      });
    });
  }

  void End(size_t u, const absl::Status& status, const char* what) {
    rounds_.fetch_add(1);
    {
      absl::MutexLock lock(&mu_);
      if (!status.ok()) {
        ++failures_[absl::StrCat(what, " ",
                                 absl::StatusCodeToString(status.code()), ": ",
                                 status.message())];
      }
      --active_;
    }
    Round(u);
  }

  client::SessionPipeline* const pipeline_;
  std::vector<User>* const users_;
  std::atomic<bool> on_{true};
  std::atomic<int64_t> rounds_{0};
  mutable absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> regressions_ ABSL_GUARDED_BY(mu_);
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-stream");
    // R + W > N: every read sees the last acknowledged write, so a read
    // below it is a lost write, not a stale replica.
    cluster_ = std::make_unique<TestCluster>(
        SG_SERVER_BIN, dir_, 3, std::vector<std::string>{"--read-quorum=2"});
    cluster_->Start();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)))
          << cluster_->process(i)->Output();
    }
    // By name, so the client keeps a channel per node and streams spread
    // over all three.
    std::string target;
    for (int i = 0; i < 3; ++i) {
      const std::string a = cluster_->node(i).client_address();
      absl::StrAppend(&target, i ? "," : "", "localhost",
                      a.substr(a.rfind(':')));
    }
    client::ClientOptions options;
    options.target = target;
    options.deadline = absl::Seconds(2);
    options.route_to_owners = false;
    auto made = client::Client::Create(options);
    ASSERT_TRUE(made.ok()) << made.status();
    client_ = *std::move(made);
    client::PipelineOptions popts;
    popts.streams = 3;
    auto pipeline = client::SessionPipeline::Create(client_.get(), popts);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);

    users_.resize(kUsers);
    for (User& user : users_) {
      absl::Notification made_one;
      absl::StatusOr<v1::CreateResponse> created;
      v1::CreateRequest create;
      create.set_data("0");
      pipeline_->Create(create, [&](absl::StatusOr<v1::CreateResponse> r) {
        created = std::move(r);
        made_one.Notify();
      });
      made_one.WaitForNotification();
      ASSERT_TRUE(created.ok()) << created.status();
      user.id = created->session().id();
    }
  }
  void TearDown() override {
    pipeline_.reset();
    client_.reset();
    cluster_.reset();
    testutil::RemoveTree(dir_);
  }

  // Runs the load while `disrupt` runs, then a little after it.
  std::unique_ptr<Load> RunWhile(
      const std::function<void(const Load&)>& disrupt) {
    auto load = std::make_unique<Load>(pipeline_.get(), &users_);
    load->Start();
    WaitRounds(*load, 200);
    disrupt(*load);
    WaitRounds(*load, load->rounds() + 200);
    load->Stop();
    return load;
  }
  // Bounded: at most 20 s.
  static void WaitRounds(const Load& load, int64_t n) {
    testutil::PollUntil([&] { return load.rounds() >= n; }, absl::Seconds(20));
  }

  // Every session holds its user's last acknowledged counter, or one more
  // (a write whose answer was lost may have landed).
  void ExpectNothingLost() {
    for (const User& user : users_) {
      absl::Notification got_one;
      absl::StatusOr<v1::GetResponse> got;
      v1::GetRequest get;
      get.set_id(user.id);
      pipeline_->Get(get, [&](absl::StatusOr<v1::GetResponse> r) {
        got = std::move(r);
        got_one.Notify();
      });
      got_one.WaitForNotification();
      ASSERT_TRUE(got.ok()) << user.id << ": " << got.status();
      int64_t value = -1;
      ASSERT_TRUE(absl::SimpleAtoi(got->session().data(), &value));
      EXPECT_GE(value, user.acked) << user.id;
      EXPECT_LE(value, user.acked + 1) << user.id;
    }
  }

  std::string dir_;
  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::SessionPipeline> pipeline_;
  std::vector<User> users_;
};

std::string Describe(const std::map<std::string, int>& failures) {
  std::string out;
  for (const auto& [what, n] : failures) absl::StrAppend(&out, n, "x ", what, "\n");
  return out;
}

TEST_F(StreamTest, ADrainingNodeFailsNoCallAndLosesNoWrite) {
  std::unique_ptr<Load> load = RunWhile([&](const Load&) {
    cluster_->Terminate(2);  // SIGTERM: closes its streams, then exits 0
    cluster_->Start(2);      // a rolling restart
    ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(20)));
  });
  EXPECT_TRUE(load->failures().empty()) << Describe(load->failures());
  EXPECT_TRUE(load->regressions().empty()) << load->regressions().front();
  EXPECT_GT(pipeline_->stats().streams_opened, 3);  // the drained ones replaced
  ExpectNothingLost();
}

TEST_F(StreamTest, AKilledNodeFailsOnlyWritesItHeldAndLosesNoAcknowledgedOne) {
  std::unique_ptr<Load> load = RunWhile([&](const Load& running) {
    // Stopped first, so that calls are surely on n1's stream when it dies
    // (a kill at a moment when none is would test nothing): each message
    // goes to the next stream, so within a few rounds one reaches n1 and
    // waits there. Killed well before the client's 2 s deadline.
    cluster_->Pause(1);
    const int64_t before = running.rounds();
    testutil::PollUntil([&] { return running.rounds() >= before + kUsers; },
                        absl::Milliseconds(500));
    cluster_->Kill(1);  // SIGKILL: its streams break mid-flight
  });
  // Reads are sent again; an Update that was on n1's streams may have run
  // and is not: it fails UNAVAILABLE. At most one per user in flight.
  int failed = 0;
  for (const auto& [what, n] : load->failures()) {
    EXPECT_EQ(what.rfind("update UNAVAILABLE", 0), 0u) << what;
    failed += n;
  }
  EXPECT_LE(failed, kUsers) << Describe(load->failures());
  EXPECT_TRUE(load->regressions().empty()) << load->regressions().front();
  EXPECT_GT(pipeline_->stats().resent, 0);
  ExpectNothingLost();
}

}  // namespace
}  // namespace sg
