// A real network partition: the test moves itself into a network namespace
// it creates, runs three nodes there, and cuts one node off from the other
// two with nftables (its peer port unreachable, and its own connections to
// theirs dropped, matched by the unprivileged user it runs as). Writes land
// on both sides; after the heal every replica converges and a delete made
// during the partition is not undone. A binary of its own: the namespace
// must be entered before gRPC starts any thread.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testutil/cluster.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
using testutil::PollUntil;
using testutil::TestCluster;

// Node i runs as uid kUidBase + i: nftables tells its packets by that.
constexpr int kUidBase = 60000;

int Shell(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc != 0) std::fprintf(stderr, "command failed (%d): %s\n", rc, command.c_str());
  return rc;
}

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root for network namespaces and nftables";
    ns_ = absl::StrCat("sg-partition-", getpid());
    ASSERT_EQ(Shell("ip netns add " + ns_), 0);
    int fd = open(("/var/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0) << "setns failed";
    close(fd);
    // Children (the nodes, ip, nft) are forked from this thread: they live
    // in the namespace too. Its loopback starts down.
    ASSERT_EQ(Shell("ip link set lo up"), 0);
    dir_ = testutil::MakeTempDir("sg-partition");
    chmod(dir_.c_str(), 0777);  // the isolated node runs unprivileged
  }
  void TearDown() override {
    cluster_.reset();
    Shell("ip netns del " + ns_);
    testutil::RemoveTree(dir_);
  }

  void Cut(int isolated) {
    std::string others;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (i == isolated) continue;
      if (!others.empty()) others += ", ";
      others += std::to_string(cluster_->node(i).peer_port);
    }
    const std::string rules = absl::StrCat(
        "table inet sg_partition {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        "    tcp dport ", cluster_->node(isolated).peer_port, " drop\n"
        "    meta skuid ", kUidBase + isolated, " tcp dport { ", others, " } drop\n"
        "  }\n"
        "}\n");
    const std::string file = dir_ + "/partition.nft";
    std::ofstream(file) << rules;
    ASSERT_EQ(Shell("nft -f " + file), 0);
  }
  void Heal() { ASSERT_EQ(Shell("nft delete table inet sg_partition"), 0); }

  // Three nodes, each under its own uid so that any one can be cut off.
  void StartCluster() {
    cluster_ = std::make_unique<TestCluster>(SG_SERVER_BIN, dir_, 3);
    for (int i = 0; i < 3; ++i) {
      cluster_->SetNodeWrapper(
          i, {"/usr/bin/setpriv", absl::StrCat("--reuid=", kUidBase + i),
              absl::StrCat("--regid=", kUidBase + i), "--clear-groups"});
    }
    cluster_->Start();
  }

  bool SeesDead(int observer, const std::string& node) {
    auto st = cluster_->Status(observer);
    if (!st.ok()) return false;
    for (const auto& n : st->nodes()) {
      if (n.node_id() == node) return n.liveness() == "DEAD";
    }
    return false;
  }

  grpc::Status Create(int i, const std::string& data, std::string* id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::CreateRequest req;
    req.set_data(data);
    v1::CreateResponse resp;
    grpc::Status s = cluster_->sessions(i).Create(&ctx, req, &resp);
    if (s.ok()) *id = resp.session().id();
    return s;
  }
  grpc::Status Update(int i, const std::string& id, const std::string& data) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::UpdateRequest req;
    req.set_id(id);
    req.set_data(data);
    v1::UpdateResponse resp;
    return cluster_->sessions(i).Update(&ctx, req, &resp);
  }
  grpc::Status Delete(int i, const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::DeleteRequest req;
    req.set_id(id);
    v1::DeleteResponse resp;
    return cluster_->sessions(i).Delete(&ctx, req, &resp);
  }

  // Every node's own record of `id`, as "data@version" or "tombstone".
  std::vector<std::string> Replicas(const std::string& id) {
    std::vector<std::string> out;
    for (int i = 0; i < cluster_->size(); ++i) {
      auto r = cluster_->ReadLocal(i, id);
      if (!r.ok()) {
        out.push_back("error");
      } else if (r->has_tombstone()) {
        out.push_back("tombstone");
      } else if (r->has_session()) {
        out.push_back(absl::StrCat(r->session().data(), "@",
                                   r->session().version().wall_millis(), ".",
                                   r->session().version().logical(), ".",
                                   r->session().version().node_id()));
      } else {
        out.push_back("absent");
      }
    }
    return out;
  }
  bool Converged(const std::string& id) {
    std::vector<std::string> r = Replicas(id);
    for (const std::string& v : r) {
      if (v != r[0] || v == "absent" || v == "error") return false;
    }
    return true;
  }

  std::string ns_;
  std::string dir_;
  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(PartitionTest, BothSidesWriteThenEveryReplicaConvergesAndDeletesStay) {
  StartCluster();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)))
        << cluster_->process(i)->Output();
  }
  std::vector<std::string> before;
  for (int n = 0; n < 20; ++n) {
    std::string id;
    ASSERT_TRUE(Create(0, absl::StrCat("before-", n), &id).ok());
    before.push_back(id);
  }
  for (const std::string& id : before) {
    ASSERT_TRUE(PollUntil([&] { return Converged(id); }, absl::Seconds(5)));
  }

  Cut(2);
  ASSERT_TRUE(PollUntil([&] { return SeesDead(0, "n2") && SeesDead(2, "n0"); },
                        absl::Seconds(15)));

  // The majority side keeps writing; it deletes before[0].
  std::vector<std::string> majority;
  for (int n = 0; n < 20; ++n) {
    std::string id;
    ASSERT_TRUE(Create(n % 2, absl::StrCat("majority-", n), &id).ok());
    majority.push_back(id);
  }
  ASSERT_TRUE(Delete(0, before[0]).ok());
  ASSERT_TRUE(Update(1, before[1], "majority-update").ok());

  // The isolated node cannot reach W: its writes fail, but land locally
  // (UNAVAILABLE means unknown, not undone) — including an update of the
  // session the majority deleted.
  EXPECT_EQ(Update(2, before[0], "zombie").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Update(2, before[2], "minority-update").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  std::string minority_id;
  EXPECT_EQ(Create(2, "minority", &minority_id).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  Heal();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)));
  }
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(30)));
  ASSERT_TRUE(cluster_->WaitForAntiEntropyAfter(absl::Now(), absl::Seconds(30)));

  // Every replica holds the same thing for every id.
  std::vector<std::string> all = before;
  all.insert(all.end(), majority.begin(), majority.end());
  for (const std::string& id : all) {
    EXPECT_TRUE(PollUntil([&] { return Converged(id); }, absl::Seconds(10)))
        << id << ": " << Replicas(id)[0] << " / " << Replicas(id)[1] << " / "
        << Replicas(id)[2];
  }
  // The delete made during the partition stands everywhere.
  EXPECT_EQ(Replicas(before[0]),
            std::vector<std::string>({"tombstone", "tombstone", "tombstone"}));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(before[0]);
    v1::GetResponse resp;
    EXPECT_EQ(cluster_->sessions(i).Get(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // The majority's update survives (the minority never touched before[1]).
  EXPECT_EQ(Replicas(before[1])[0].rfind("majority-update@", 0), 0u);
}

// --peer-dns as a headless Service gives it: one name, one A record per
// node. `ip netns exec` shows the nodes this namespace's own hosts file.
TEST_F(PartitionTest, PeerDnsFindsEveryRecordOfTheName) {
  const std::string hosts_dir = "/etc/netns/" + ns_;
  ASSERT_EQ(Shell("mkdir -p " + hosts_dir), 0);
  {
    std::ofstream hosts(hosts_dir + "/hosts");
    hosts << "127.0.0.1 localhost\n";
    for (int i = 1; i <= 3; ++i) hosts << "127.0.0." << i << " sg-peers\n";
  }
  cluster_ = std::make_unique<TestCluster>(SG_SERVER_BIN, dir_, 3);
  cluster_->UsePeerDns("sg-peers");
  for (int i = 0; i < 3; ++i) {
    cluster_->SetNodeWrapper(i, {"/usr/sbin/ip", "netns", "exec", ns_});
  }
  cluster_->Start();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)))
        << cluster_->process(i)->Output();
  }
  auto st = cluster_->Status(1);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->nodes_size(), 3) << st->DebugString();
  EXPECT_EQ(st->status(), "HEALTHY");
  std::string id;
  ASSERT_TRUE(Create(2, "via-dns", &id).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(PollUntil(
        [&] {
          auto r = cluster_->ReadLocal(i, id);
          return r.ok() && r->has_session();
        },
        absl::Seconds(5)));
  }
  Shell("rm -rf " + hosts_dir);
}

// Jepsen-style: random kills, pauses and partitions (one at a time, each
// undone before the next) under a recorded client history, then a checker.
TEST_F(PartitionTest, NemesisKeepsAcknowledgedWritesAndDeletes) {
  const char* seed_env = std::getenv("SG_TEST_SEED");
  const uint32_t seed = seed_env ? static_cast<uint32_t>(std::strtoul(seed_env, nullptr, 10))
                                 : 20261202u;
  const char* secs_env = std::getenv("SG_NEMESIS_SECONDS");
  const absl::Duration run_for = absl::Seconds(secs_env ? std::atoi(secs_env) : 60);
  std::printf("seed=%u duration=%s (SG_TEST_SEED, SG_NEMESIS_SECONDS reproduce)\n",
              seed, absl::FormatDuration(run_for).c_str());
  StartCluster();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)));

  // The history: what the clients were told.
  absl::Mutex mu;
  std::vector<std::string> created;        // Create answered OK
  std::set<std::string> deleted;           // Delete answered OK
  std::set<std::string> maybe_deleted;     // Delete answered an error
  std::atomic<int> ops{0}, unavailable{0};
  std::atomic<bool> stop{false};
  const absl::Time end = absl::Now() + run_for;

  auto client = [&](int worker) {
    std::mt19937 rng(seed * 31 + worker);
    for (int n = 0; n < 100000 && !stop.load() && absl::Now() < end; ++n) {
      // Paced (about 250 calls/s per client) so the checker's work after
      // the run stays bounded; the faults, not the load, are the point.
      absl::SleepFor(absl::Milliseconds(4));
      const int node = static_cast<int>(rng() % 3);
      ops.fetch_add(1);
      std::string victim;
      {
        absl::MutexLock lock(&mu);
        if (created.size() > 10 && rng() % 4 == 0) {
          victim = created[rng() % created.size()];
          if (deleted.contains(victim) || maybe_deleted.contains(victim)) victim.clear();
        }
      }
      if (!victim.empty()) {
        grpc::Status s = Delete(node, victim);
        absl::MutexLock lock(&mu);
        (s.ok() ? deleted : maybe_deleted).insert(victim);
        if (!s.ok()) unavailable.fetch_add(1);
        continue;
      }
      std::string id;
      grpc::Status s = Create(node, absl::StrCat("w", worker, "-", n), &id);
      if (s.ok()) {
        absl::MutexLock lock(&mu);
        created.push_back(id);
      } else {
        unavailable.fetch_add(1);
      }
    }
  };

  std::mt19937 nemesis_rng(seed);
  std::vector<std::string> faults;
  std::thread c1(client, 1), c2(client, 2);
  while (absl::Now() < end) {
    const int victim = static_cast<int>(nemesis_rng() % 3);
    const int kind = static_cast<int>(nemesis_rng() % 3);
    const absl::Duration hold = absl::Milliseconds(1500 + nemesis_rng() % 2000);
    if (kind == 0) {
      faults.push_back(absl::StrCat("kill n", victim));
      cluster_->Kill(victim);
      absl::SleepFor(hold);  // the fault's duration, not a synchronisation
      cluster_->Start(victim);
    } else if (kind == 1) {
      faults.push_back(absl::StrCat("pause n", victim));
      cluster_->Pause(victim);
      absl::SleepFor(hold);
      cluster_->Resume(victim);
    } else {
      faults.push_back(absl::StrCat("partition n", victim));
      Cut(victim);
      absl::SleepFor(hold);
      Heal();
    }
    absl::SleepFor(absl::Milliseconds(500 + nemesis_rng() % 1500));
  }
  stop.store(true);
  c1.join();
  c2.join();
  std::printf("faults:");
  for (const std::string& f : faults) std::printf(" [%s]", f.c_str());
  std::printf("\nops=%d errors=%d created=%zu deleted=%zu maybe_deleted=%zu\n",
              ops.load(), unavailable.load(), created.size(), deleted.size(),
              maybe_deleted.size());
  ASSERT_GE(faults.size(), 3u);
  ASSERT_GT(created.size(), 100u);

  // Heal everything and let repair finish.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(30)));
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(60)));
  ASSERT_TRUE(cluster_->WaitForAntiEntropyAfter(absl::Now(), absl::Seconds(60)));

  // Checker.
  int lost = 0, resurrected = 0, diverged = 0;
  for (const std::string& id : created) {
    const bool gone = deleted.contains(id) || maybe_deleted.contains(id);
    if (!PollUntil([&] { return Converged(id); }, absl::Seconds(5))) {
      ++diverged;
      std::printf("diverged %s: %s / %s / %s\n", id.c_str(), Replicas(id)[0].c_str(),
                  Replicas(id)[1].c_str(), Replicas(id)[2].c_str());
    }
    std::vector<std::string> r = Replicas(id);
    if (deleted.contains(id) && r[0] != "tombstone") ++resurrected;
    if (!gone && r[0] == "tombstone") ++lost;
    if (!gone && r[0] == "absent") ++lost;
  }
  std::printf("lost=%d resurrected=%d diverged=%d\n", lost, resurrected, diverged);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(resurrected, 0);
  EXPECT_EQ(diverged, 0);
}

}  // namespace
}  // namespace sg
