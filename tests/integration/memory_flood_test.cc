// The real sessiongrid-server under a create flood with a 256 MiB budget:
// RSS, sampled every 100 ms, never exceeds 1.1x the limit; the process never
// dies; every authenticated session created before the flood is still
// readable after it; and NodeStats accounts for every create.
//
// The flood also runs into --max-sessions, so eviction works at full load
// and must take anonymous sessions only.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
using testutil::Subprocess;

constexpr int64_t kLimitBytes = int64_t{256} << 20;
constexpr int64_t kMaxSessions = 60'000;
constexpr int kAuthenticated = 2000;
constexpr int kFloodThreads = 12;
constexpr int kChannels = 3;
constexpr absl::Duration kFloodTime = absl::Seconds(40);
constexpr absl::Duration kSampleEvery = absl::Milliseconds(100);

// VmRSS of `pid` in bytes; -1 when the process is gone.
int64_t RssOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoll(line.substr(6)) * 1024;  // "VmRSS:   1234 kB"
    }
  }
  return -1;
}

// Samples a process's RSS on its own thread every kSampleEvery until
// Stop(). The condvar wait is the sampling period, not a synchronisation.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~RssSampler() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      wake_.Signal();
    }
    if (thread_.joinable()) thread_.join();
  }

  int64_t peak() const {
    absl::MutexLock lock(&mu_);
    return peak_;
  }
  int samples() const {
    absl::MutexLock lock(&mu_);
    return samples_;
  }
  int missing() const {
    absl::MutexLock lock(&mu_);
    return missing_;
  }

 private:
  void Run() {
    absl::MutexLock lock(&mu_);
    while (!stop_) {
      const int64_t rss = RssOf(pid_);
      ++samples_;
      if (rss < 0) {
        ++missing_;
      } else {
        peak_ = std::max(peak_, rss);
      }
      wake_.WaitWithTimeout(&mu_, kSampleEvery);
    }
  }

  const pid_t pid_;
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t peak_ ABSL_GUARDED_BY(mu_) = 0;
  int samples_ ABSL_GUARDED_BY(mu_) = 0;
  int missing_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class MemoryFloodTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-flood"); }
  void TearDown() override { testutil::RemoveTree(dir_); }

  v1::NodeStats Stats(const std::shared_ptr<grpc::Channel>& channel) {
    auto admin = v1::AdminService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::NodeStatsResponse resp;
    grpc::Status s = admin->NodeStats(&ctx, {}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.stats();
  }

  std::string dir_;
};

TEST_F(MemoryFloodTest, RssStaysWithinTheBudgetAndLoginsSurviveTheFlood) {
  auto started = Subprocess::Start(
      {SG_SERVER_BIN, "--listen=127.0.0.1:0", "--data-dir=" + dir_ + "/data",
       "--memory-limit=256MiB", absl::StrCat("--max-sessions=", kMaxSessions),
       "--sweep-interval=1s"});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Subprocess> server = *std::move(started);
  auto line = server->WaitForLine("msg=listening", absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << server->Output();
  const std::string address = testutil::FieldFromLogLine(*line, "address");
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("sg.channel", i);  // distinct channels, distinct connections
    channels.push_back(grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args));
  }

  RssSampler sampler(server->pid());

  // Logged-in users first: they must all outlive the flood.
  std::mt19937_64 rng(1);
  std::vector<std::pair<std::string, std::string>> logins;  // id, data
  {
    auto stub = v1::SessionService::NewStub(channels[0]);
    for (int i = 0; i < kAuthenticated; ++i) {
      grpc::ClientContext ctx;
      v1::CreateRequest req;
      req.set_data(RandomBytes(rng, 1024));
      req.set_principal("user-" + std::to_string(i % 500));
      v1::CreateResponse resp;
      grpc::Status s = stub->Create(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      logins.emplace_back(resp.session().id(), req.data());
    }
  }

  // The flood: anonymous creates with 1 KiB of data at full speed.
  std::atomic<int64_t> created{0};
  std::atomic<int64_t> refused{0};
  absl::Mutex mu;
  std::vector<std::string> failures;
  const absl::Time stop_at = absl::Now() + kFloodTime;
  std::vector<std::thread> threads;
  for (int t = 0; t < kFloodThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = v1::SessionService::NewStub(channels[t % kChannels]);
      std::mt19937_64 thread_rng(100 + t);
      v1::CreateRequest req;
      req.set_data(RandomBytes(thread_rng, 1024));
      while (absl::Now() < stop_at) {
        // A fresh prefix per call keeps the payload incompressible.
        uint64_t salt = thread_rng();
        req.mutable_data()->replace(0, sizeof(salt),
                                    reinterpret_cast<const char*>(&salt),
                                    sizeof(salt));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
        v1::CreateResponse resp;
        grpc::Status s = stub->Create(&ctx, req, &resp);
        if (s.ok()) {
          created.fetch_add(1);
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          refused.fetch_add(1);  // the node protecting itself: allowed
        } else {
          absl::MutexLock lock(&mu);
          failures.push_back(absl::StrCat(s.error_code(), " ", s.error_message()));
          if (failures.size() > 20) return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  // The process never died.
  EXPECT_FALSE(server->Wait(absl::ZeroDuration()).has_value())
      << server->Output();
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(failures.empty())
        << failures.size() << " failed calls, first: " << failures.front();
  }

  // Every login is still there, data intact.
  {
    auto stub = v1::SessionService::NewStub(channels[0]);
    int missing = 0;
    for (const auto& [id, data] : logins) {
      grpc::ClientContext ctx;
      v1::GetRequest req;
      req.set_id(id);
      v1::GetResponse resp;
      grpc::Status s = stub->Get(&ctx, req, &resp);
      if (!s.ok() || resp.session().data() != data) ++missing;
    }
    EXPECT_EQ(missing, 0) << "of " << logins.size() << " logins";
  }

  sampler.Stop();
  const int64_t peak = sampler.peak();
  const v1::NodeStats stats = Stats(channels[0]);
  std::cout << "flood: created=" << created.load()
            << " refused=" << refused.load() << " sessions=" << stats.sessions()
            << " evictions=" << stats.evictions()
            << " expirations=" << stats.expirations()
            << " level=" << stats.memory_level()
            << " peak_rss_mib=" << peak / (1 << 20)
            << " limit_mib=" << kLimitBytes / (1 << 20)
            << " samples=" << sampler.samples() << std::endl;

  EXPECT_GT(sampler.samples(), absl::ToInt64Seconds(kFloodTime) * 5);
  EXPECT_EQ(sampler.missing(), 0);
  EXPECT_GT(peak, 0);
  EXPECT_LE(peak, kLimitBytes * 11 / 10)
      << "peak RSS " << peak << " over 1.1 x " << kLimitBytes;

  // The flood was real: it pushed the node past its session cap.
  EXPECT_GT(created.load(), kMaxSessions);

  // Accounting: every create is a stored session, an eviction or an
  // expiration (nothing was deleted).
  EXPECT_EQ(stats.creates(), kAuthenticated + created.load());
  EXPECT_EQ(stats.creates(), stats.sessions() + stats.evictions() +
                                 stats.expirations() + stats.deletes());
  const auto& by = stats.evictions_by_reason();
  // The map holds every reason, zero or not, so only counts prove the cap
  // evicted: the flood's creates beyond it, all anonymous.
  ASSERT_TRUE(by.contains("max_sessions"));
  EXPECT_GT(stats.evictions(), 0);
  EXPECT_GE(stats.evictions(), stats.creates() - stats.expirations() -
                                   kMaxSessions - kFloodThreads);
  EXPECT_EQ(by.at("max_sessions"), stats.evictions());
  EXPECT_EQ(by.at("max_sessions/anonymous"), stats.evictions());
  EXPECT_EQ(by.at("max_sessions/authenticated"), 0);
  EXPECT_EQ(stats.authenticated_sessions(), kAuthenticated);
  EXPECT_LE(stats.sessions(), kMaxSessions + kFloodThreads);

  // NodeStats reports the budget and where memory goes.
  EXPECT_EQ(stats.memory().limit_bytes(), kLimitBytes);
  EXPECT_GT(stats.memory().process_rss_bytes(), 0);
  EXPECT_GT(stats.memory().block_cache_bytes(), 0);
  EXPECT_GT(stats.memory().node_structures_bytes(), 0);
  EXPECT_FALSE(stats.memory_level().empty());

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(60)), 0) << server->Output();
}

// The smallest budget a node accepts, overrun by a flood of anonymous
// creates: the node goes to emergency, says so, refuses new anonymous
// sessions and keeps serving everything else.
TEST_F(MemoryFloodTest, OverBudgetNodeRefusesAnonymousCreatesAndStaysUp) {
  auto started = Subprocess::Start(
      {SG_SERVER_BIN, "--listen=127.0.0.1:0", "--data-dir=" + dir_ + "/data",
       "--memory-limit=8MiB"});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Subprocess> server = *std::move(started);
  auto line = server->WaitForLine("msg=listening", absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << server->Output();
  auto channel = grpc::CreateChannel(testutil::FieldFromLogLine(*line, "address"),
                                     grpc::InsecureChannelCredentials());
  // Until the first refusal, at most 60 s or 8 x 50,000 creates of 16 KiB.
  std::atomic<bool> refused{false};
  std::vector<std::thread> flood;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  for (int t = 0; t < 8; ++t) {
    flood.emplace_back([&, t] {
      auto stub = v1::SessionService::NewStub(channel);
      std::mt19937_64 rng(200 + t);
      v1::CreateRequest req;
      req.set_data(RandomBytes(rng, 16 << 10));
      for (int i = 0; i < 50'000 && !refused.load() && absl::Now() < give_up;
           ++i) {
        req.mutable_data()->replace(0, 8, RandomBytes(rng, 8));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
        v1::CreateResponse resp;
        grpc::Status s = stub->Create(&ctx, req, &resp);
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          refused.store(true);
        }
      }
    });
  }
  for (auto& th : flood) th.join();
  ASSERT_TRUE(refused.load()) << "the flood never met the budget";
  auto level = server->WaitForLine("to=emergency", absl::Seconds(30));
  ASSERT_TRUE(level.has_value()) << server->Output();
  EXPECT_NE(level->find("msg=\"memory level changed\""), std::string::npos)
      << *level;

  auto stub = v1::SessionService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data("visitor");
    v1::CreateResponse resp;
    grpc::Status s = stub->Create(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
  }
  {
    // Logins are still accepted (at emergency with no anonymous session
    // left, the governor may evict them again soon: that is the last resort
    // before the OOM killer, so this test does not read it back).
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data("member");
    req.set_principal("alice");
    v1::CreateResponse resp;
    grpc::Status s = stub->Create(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  v1::NodeStats stats = Stats(channel);
  EXPECT_EQ(stats.memory_level(), "emergency");
  EXPECT_EQ(stats.memory().limit_bytes(), 8 << 20);
  // The whole RSS, mapped code included, is what NodeStats reports.
  EXPECT_GT(stats.memory().process_rss_bytes(), 8 * 95 / 100 << 20);
  {
    auto admin = v1::AdminService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::ClusterStatusResponse resp;
    ASSERT_TRUE(admin->ClusterStatus(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.nodes_size(), 1);
    EXPECT_EQ(resp.nodes(0).stats().memory_level(), "emergency");
    EXPECT_TRUE(resp.nodes(0).stats().evictions_by_reason().contains("memory"));
  }
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(60)), 0) << server->Output();
}

TEST_F(MemoryFloodTest, AutoLimitLogsWhereTheBudgetCameFrom) {
  auto started = Subprocess::Start(
      {SG_SERVER_BIN, "--listen=127.0.0.1:0", "--data-dir=" + dir_ + "/data",
       "--memory-limit=auto"});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Subprocess> server = *std::move(started);
  auto budget = server->WaitForLine("msg=\"memory budget\"", absl::Seconds(30));
  ASSERT_TRUE(budget.has_value()) << server->Output();
  EXPECT_GT(std::stoll(testutil::FieldFromLogLine(*budget, "limit_bytes")), 0);
  // Either a container's cgroup v2 limit, or a logged fallback.
  const bool from_cgroup =
      budget->find("source=\"cgroup v2 memory.max") != std::string::npos;
  if (!from_cgroup) {
    EXPECT_NE(server->Output().find("no cgroup v2 memory.max; falling back"),
              std::string::npos)
        << server->Output();
  }
  ASSERT_TRUE(server->WaitForLine("msg=listening", absl::Seconds(30)));
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(60)), 0) << server->Output();
}

TEST_F(MemoryFloodTest, BadBudgetFlagsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  for (const Case& c : std::vector<Case>{
           {{"--memory-limit=lots"}, "--memory-limit"},
           {{"--memory-limit=256"}, "--memory-limit"},
           {{"--memory-warn=0.9"}, "--memory-critical"},
           {{"--memory-emergency=1.5"}, "--memory-emergency"},
           {{"--max-sessions=-1"}, "--max-sessions"},
           {{"--max-sessions-per-principal=-3"}, "--max-sessions-per-principal"}}) {
    std::vector<std::string> argv = {SG_SERVER_BIN, "--data-dir=" + dir_ + "/bad"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto p = Subprocess::Start(argv);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->Wait(absl::Seconds(30)), 2) << c.args[0] << "\n" << (*p)->Output();
    EXPECT_NE((*p)->Output().find(c.named), std::string::npos)
        << c.args[0] << "\n" << (*p)->Output();
  }
}

}  // namespace
}  // namespace sg
