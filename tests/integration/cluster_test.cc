// Three (and four) real sessiongrid-server processes on loopback, broken on
// purpose: kill -9, SIGSTOP past the failure detector, wiped data dirs,
// stale and delayed writes, concurrent compare-and-set, scaling — and the
// checks that nothing acknowledged is lost and nothing deleted comes back.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"
#include "absl/strings/str_join.h"
#include "server/replication/ring.h"
#include "sessiongrid/client.h"
#include "tests/testutil/cluster.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
namespace rpb = ::sessiongrid::replica::v1;
using testutil::PollUntil;
using testutil::TestCluster;

uint32_t TestSeed() {
  const char* env = std::getenv("SG_TEST_SEED");
  const uint32_t seed = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : 20261202u;
  std::printf("seed=%u (set SG_TEST_SEED to reproduce)\n", seed);
  return seed;
}

grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& fn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  return fn(&ctx);
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-cluster"); }
  void TearDown() override {
    cluster_.reset();
    testutil::RemoveTree(dir_);
  }

  void StartCluster(int size, std::vector<std::string> extra = {}) {
    cluster_ = std::make_unique<TestCluster>(SG_SERVER_BIN, dir_, size, extra);
    cluster_->Start();
    for (int i = 0; i < size; ++i) {
      ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)))
          << cluster_->process(i)->Output();
    }
  }

  // A client as an edge is one: tries the running nodes in turn and
  // retries on UNAVAILABLE (a Create may then leave an orphan session,
  // never a lost one).
  grpc::Status CreateAny(int first, const std::string& data,
                         const std::string& principal, std::string* id) {
    grpc::Status last;
    for (int attempt = 0; attempt < 2 * cluster_->size(); ++attempt) {
      const int i = (first + attempt) % cluster_->size();
      if (!cluster_->running(i)) continue;
      v1::CreateRequest req;
      req.set_data(data);
      req.set_principal(principal);
      v1::CreateResponse resp;
      last = Call([&](grpc::ClientContext* ctx) {
        return cluster_->sessions(i).Create(ctx, req, &resp);
      });
      if (last.ok()) {
        *id = resp.session().id();
        return last;
      }
      if (last.error_code() != grpc::StatusCode::UNAVAILABLE &&
          last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        return last;
      }
    }
    return last;
  }

  grpc::Status GetVia(int i, const std::string& id, v1::Session* out) {
    v1::GetRequest req;
    req.set_id(id);
    v1::GetResponse resp;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return cluster_->sessions(i).Get(ctx, req, &resp);
    });
    if (s.ok() && out != nullptr) *out = resp.session();
    return s;
  }

  grpc::Status DeleteVia(int i, const std::string& id) {
    v1::DeleteRequest req;
    req.set_id(id);
    v1::DeleteResponse resp;
    return Call([&](grpc::ClientContext* ctx) {
      return cluster_->sessions(i).Delete(ctx, req, &resp);
    });
  }

  // Whether node i holds `id` live (true), a tombstone or nothing (false).
  bool HoldsLive(int i, const std::string& id) {
    auto r = cluster_->ReadLocal(i, id);
    return r.ok() && r->has_session();
  }
  bool HoldsTombstone(int i, const std::string& id) {
    auto r = cluster_->ReadLocal(i, id);
    return r.ok() && r->has_tombstone() && !r->has_session();
  }

  // Sends a raw replica write to node i's peer port, as a late hint or a
  // delayed update from another coordinator would arrive.
  grpc::Status ApplyRaw(int i, const v1::Session& s, int64_t version_bump_ms,
                        const std::string& data) {
    auto channel = grpc::CreateChannel(cluster_->node(i).peer_address(),
                                       grpc::InsecureChannelCredentials());
    auto stub = rpb::ReplicaService::NewStub(channel);
    rpb::ApplyRequest req;
    req.set_from_node("test");
    rpb::Record* r = req.add_mutations()->mutable_record();
    r->set_id(s.id());
    r->set_data(data);
    r->set_principal(s.principal());
    r->set_create_micros(s.create_time().seconds() * 1000000);
    r->set_last_access_micros(absl::ToUnixMicros(absl::Now()));
    r->set_expire_micros(absl::ToUnixMicros(absl::Now() + absl::Hours(1)));
    r->set_ttl_micros(absl::ToInt64Microseconds(absl::Hours(1)));
    r->mutable_version()->set_wall_millis(s.version().wall_millis() + version_bump_ms);
    r->mutable_version()->set_logical(s.version().logical());
    r->mutable_version()->set_node_id("late-writer");
    rpb::ApplyResponse resp;
    return Call([&](grpc::ClientContext* ctx) { return stub->Apply(ctx, req, &resp); });
  }

  std::string dir_;
  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(ClusterTest, StatusListsThreeAliveMembersWithQuorumSettings) {
  StartCluster(3);
  auto st = cluster_->Status(0);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status(), "HEALTHY");
  EXPECT_EQ(st->nodes_size(), 3);
  EXPECT_EQ(st->replication_factor(), 3);
  EXPECT_EQ(st->write_quorum(), 2);
  EXPECT_EQ(st->read_quorum(), 1);
  for (const auto& n : st->nodes()) {
    EXPECT_EQ(n.liveness(), "ALIVE") << n.node_id();
    EXPECT_DOUBLE_EQ(n.ring_share(), 1.0);  // N = 3 of 3: everyone owns all
    EXPECT_FALSE(n.peer_address().empty());
    EXPECT_FALSE(n.address().empty());
  }
  cluster_->Kill(2);
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(10)));
  st = cluster_->Status(0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->status(), "DEGRADED");  // every range still has W live owners
  cluster_->Kill(1);
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(10)));
  st = cluster_->Status(0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->status(), "UNAVAILABLE");
  EXPECT_GT(st->ranges_below_write_quorum(), 0);
}

TEST_F(ClusterTest, WritesAreReplicatedToEveryOwner) {
  StartCluster(3);
  std::string id;
  ASSERT_TRUE(CreateAny(0, "hello", "alice", &id).ok());
  // W = 2 answered; the third replica follows within the replica timeout.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(PollUntil([&] { return HoldsLive(i, id); }, absl::Seconds(5)))
        << "node " << i;
  }
  v1::Session s;
  ASSERT_TRUE(GetVia(2, id, &s).ok());
  EXPECT_EQ(s.data(), "hello");
  ASSERT_TRUE(DeleteVia(1, id).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(PollUntil([&] { return HoldsTombstone(i, id); }, absl::Seconds(5)));
  }
  EXPECT_EQ(GetVia(0, id, nullptr).error_code(), grpc::StatusCode::NOT_FOUND);

  // More sessions, some deleted; then NodeStats' identity on every replica:
  // creates (records this node began storing) == sessions + evictions +
  // expirations + deletes.
  std::vector<std::string> more;
  for (int n = 0; n < 30; ++n) {
    std::string m;
    ASSERT_TRUE(CreateAny(n % 3, "m", n % 2 ? "erin" : "", &m).ok());
    more.push_back(m);
  }
  for (int n = 0; n < 10; ++n) ASSERT_TRUE(DeleteVia(n % 3, more[n]).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(PollUntil(
        [&] {
          v1::NodeStatsResponse st;
          grpc::Status s = Call([&](grpc::ClientContext* ctx) {
            return cluster_->admin(i).NodeStats(ctx, v1::NodeStatsRequest(), &st);
          });
          if (!s.ok()) return false;
          const auto& x = st.stats();
          return x.creates() == 31 && x.sessions() == 20 && x.deletes() == 11 &&
                 x.creates() == x.sessions() + x.evictions() + x.expirations() +
                                    x.deletes();
        },
        absl::Seconds(5)))
        << "node " << i;
  }
}

TEST_F(ClusterTest, KillNineDuringWritesLosesNoAcknowledgedWrite) {
  const uint32_t seed = TestSeed();
  StartCluster(3);
  absl::Mutex mu;
  std::vector<std::string> acked;
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  auto writer = [&](int w) {
    std::mt19937 rng(seed + w);
    for (int n = 0; n < 400 && !stop.load(); ++n) {
      std::string id;
      grpc::Status s = CreateAny(static_cast<int>(rng() % 2), absl::StrCat("w", w, "-", n),
                                 n % 4 == 0 ? "user" : "", &id);
      if (s.ok()) {
        absl::MutexLock lock(&mu);
        acked.push_back(id);
      } else {
        failures.fetch_add(1);
      }
    }
  };
  std::thread a(writer, 1), b(writer, 2);
  ASSERT_TRUE(PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return acked.size() >= 200;
      },
      absl::Seconds(60)));
  cluster_->Kill(2);  // kill -9 in the middle of the load
  a.join();
  b.join();
  std::printf("acked=%zu failed=%d\n", acked.size(), failures.load());
  ASSERT_GE(acked.size(), 600u);

  // Every acknowledged write is readable from the survivors.
  int lost = 0;
  for (const std::string& id : acked) {
    if (!GetVia(0, id, nullptr).ok() && !GetVia(1, id, nullptr).ok()) ++lost;
  }
  EXPECT_EQ(lost, 0);

  // And, once hints replay, from the returned node's own store.
  cluster_->Start(2);
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(20)));
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(30)));
  EXPECT_TRUE(PollUntil(
      [&] {
        for (const std::string& id : acked) {
          if (!HoldsLive(2, id)) return false;
        }
        return true;
      },
      absl::Seconds(30)));
  int missing = 0;
  for (const std::string& id : acked) missing += HoldsLive(2, id) ? 0 : 1;
  EXPECT_EQ(missing, 0);
}

TEST_F(ClusterTest, OneNodeDownKeepsServingWithFewErrors) {
  const uint32_t seed = TestSeed();
  StartCluster(3);
  cluster_->Kill(2);
  std::mt19937 rng(seed);
  std::vector<std::string> ids;
  int ops = 0, errors = 0;
  for (int n = 0; n < 1500; ++n) {
    ++ops;
    if (ids.empty() || rng() % 3 == 0) {
      std::string id;
      grpc::Status s = CreateAny(static_cast<int>(rng() % 3), "d", "", &id);
      if (s.ok()) ids.push_back(id); else ++errors;
      continue;
    }
    const std::string& id = ids[rng() % ids.size()];
    grpc::Status s;
    for (int attempt = 0; attempt < 3; ++attempt) {
      int i = static_cast<int>(rng() % 2);  // a client that knows node 2 is down
      s = GetVia(i, id, nullptr);
      if (s.ok() || s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    }
    if (!s.ok()) ++errors;
  }
  std::printf("ops=%d errors=%d\n", ops, errors);
  EXPECT_LE(errors * 1000, ops);  // <= 0.1 %
}

TEST_F(ClusterTest, PausedNodeCatchesUpAfterSigcont) {
  StartCluster(3);
  std::vector<std::string> acked;
  cluster_->Pause(2);
  ASSERT_TRUE(PollUntil(
      [&] {
        auto st = cluster_->Status(0);
        if (!st.ok()) return false;
        for (const auto& n : st->nodes()) {
          if (n.node_id() == "n2") return n.liveness() == "DEAD";
        }
        return false;
      },
      absl::Seconds(10)));
  for (int n = 0; n < 200; ++n) {
    std::string id;
    ASSERT_TRUE(CreateAny(n % 2, "p", "", &id).ok());
    acked.push_back(id);
  }
  cluster_->Resume(2);
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(30)));
  EXPECT_TRUE(PollUntil(
      [&] {
        for (const std::string& id : acked) {
          if (!HoldsLive(2, id)) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  for (const std::string& id : acked) EXPECT_TRUE(GetVia(2, id, nullptr).ok());
}

TEST_F(ClusterTest, WipedDataDirIsRestoredByAntiEntropy) {
  StartCluster(3);
  std::vector<std::string> acked;
  for (int n = 0; n < 300; ++n) {
    std::string id;
    ASSERT_TRUE(CreateAny(n % 3, absl::StrCat("v", n), n % 5 ? "" : "bob", &id).ok());
    acked.push_back(id);
  }
  std::string deleted = acked.back();
  acked.pop_back();
  ASSERT_TRUE(DeleteVia(0, deleted).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(PollUntil([&] { return HoldsTombstone(i, deleted); }, absl::Seconds(5)));
  }
  cluster_->Terminate(2);
  cluster_->Wipe(2);
  cluster_->Start(2);
  EXPECT_TRUE(PollUntil(
      [&] {
        for (const std::string& id : acked) {
          if (!HoldsLive(2, id)) return false;
        }
        return HoldsTombstone(2, deleted);
      },
      absl::Seconds(60)))
      << cluster_->process(2)->Output();
  int missing = 0;
  for (const std::string& id : acked) missing += HoldsLive(2, id) ? 0 : 1;
  EXPECT_EQ(missing, 0);
}

TEST_F(ClusterTest, DeletesWinOverStaleAndDelayedWrites) {
  StartCluster(3);
  std::string id;
  ASSERT_TRUE(CreateAny(0, "before", "carol", &id).ok());
  v1::Session original;
  ASSERT_TRUE(GetVia(0, id, &original).ok());
  ASSERT_TRUE(PollUntil([&] { return HoldsLive(2, id); }, absl::Seconds(5)));

  // Delete while an owner is down: it gets the tombstone as a hint.
  cluster_->Kill(2);
  ASSERT_TRUE(DeleteVia(0, id).ok());
  cluster_->Start(2);
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(30)));
  ASSERT_TRUE(PollUntil([&] { return HoldsTombstone(2, id); }, absl::Seconds(10)));

  // An older write arriving late, and an update stamped after the delete by
  // a coordinator whose clock runs ahead: both dropped everywhere.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ApplyRaw(i, original, 0, "stale").ok());
    ASSERT_TRUE(ApplyRaw(i, original, 3600 * 1000, "from-the-future").ok());
  }
  // After anti-entropy rounds on every node, nothing came back either.
  ASSERT_TRUE(cluster_->WaitForAntiEntropyAfter(absl::Now(), absl::Seconds(20)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(HoldsTombstone(i, id)) << "node " << i;
    EXPECT_EQ(GetVia(i, id, nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // A logout (delete) through one node is not undone by an Update through
  // another that read the session before the delete.
  std::string id2;
  ASSERT_TRUE(CreateAny(1, "x", "carol", &id2).ok());
  v1::Session before;
  ASSERT_TRUE(GetVia(1, id2, &before).ok());
  ASSERT_TRUE(DeleteVia(0, id2).ok());
  v1::UpdateRequest up;
  up.set_id(id2);
  up.set_data("in-flight");
  v1::UpdateResponse up_resp;
  grpc::Status u = Call([&](grpc::ClientContext* ctx) {
    return cluster_->sessions(2).Update(ctx, up, &up_resp);
  });
  EXPECT_EQ(u.error_code(), grpc::StatusCode::NOT_FOUND);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(GetVia(i, id2, nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(ClusterTest, AnEvictionOnOneOwnerIsNotUndoneByRepair) {
  cluster_ = std::make_unique<TestCluster>(SG_SERVER_BIN, dir_, 3);
  cluster_->SetNodeFlags(0, {"--max-sessions=20"});
  cluster_->Start();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster_->WaitForView(i, absl::Seconds(20)));
  std::vector<std::string> ids;
  for (int n = 0; n < 30; ++n) {
    std::string id;
    ASSERT_TRUE(CreateAny(1, "e", "", &id).ok());
    ids.push_back(id);
  }
  // Node 0 kept 20; the 10 it evicted are deleted on every replica.
  ASSERT_TRUE(PollUntil(
      [&] {
        int gone = 0;
        for (const std::string& id : ids) {
          if (HoldsTombstone(1, id) && HoldsTombstone(2, id)) ++gone;
        }
        return gone == 10;
      },
      absl::Seconds(10)));
  ASSERT_TRUE(cluster_->WaitForAntiEntropyAfter(absl::Now(), absl::Seconds(20)));
  int live_anywhere = 0, tombstoned = 0;
  for (const std::string& id : ids) {
    if (HoldsTombstone(0, id) && HoldsTombstone(1, id) && HoldsTombstone(2, id)) {
      ++tombstoned;
      for (int i = 0; i < 3; ++i) {
        if (GetVia(i, id, nullptr).ok()) ++live_anywhere;
      }
    }
  }
  EXPECT_EQ(tombstoned, 10);
  EXPECT_EQ(live_anywhere, 0);
}

TEST_F(ClusterTest, ConcurrentCompareAndSetThroughTwoCoordinators) {
  StartCluster(3);
  std::string id;
  ASSERT_TRUE(CreateAny(0, "v0", "", &id).ok());
  int both = 0, one = 0;
  for (int round = 0; round < 40; ++round) {
    v1::Session current;
    ASSERT_TRUE(GetVia(0, id, &current).ok());
    std::atomic<int> won{0};
    std::string winner;
    absl::Mutex mu;
    auto attempt = [&](int node, std::string data) {
      v1::UpdateRequest req;
      req.set_id(id);
      req.set_data(data);
      *req.mutable_expected_version() = current.version();
      v1::UpdateResponse resp;
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return cluster_->sessions(node).Update(ctx, req, &resp);
      });
      if (s.ok()) {
        won.fetch_add(1);
        absl::MutexLock lock(&mu);
        winner = data;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
            << s.error_message();
      }
    };
    std::thread a(attempt, 0, absl::StrCat("a", round));
    std::thread b(attempt, 1, absl::StrCat("b", round));
    a.join();
    b.join();
    if (won.load() == 2) ++both;
    if (won.load() == 1) ++one;
    // Every replica converges to the winner.
    EXPECT_TRUE(PollUntil(
        [&] {
          for (int i = 0; i < 3; ++i) {
            auto r = cluster_->ReadLocal(i, id);
            if (!r.ok() || !r->has_session() || r->session().data() != winner) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(5)))
        << "round " << round;
  }
  EXPECT_EQ(both, 0);
  EXPECT_EQ(one, 40);
}

TEST_F(ClusterTest, RegenerateAndLogoutEverywhereAcrossOwners) {
  StartCluster(3, {"--max-sessions-per-principal=3"});
  std::vector<std::string> ids;
  for (int n = 0; n < 5; ++n) {
    std::string id;
    ASSERT_TRUE(CreateAny(n % 3, "s", "dave", &id).ok());
    ids.push_back(id);
  }
  // The cluster-wide cap: at most 3 of dave's sessions survive.
  v1::ListByPrincipalRequest list;
  list.set_principal("dave");
  v1::ListByPrincipalResponse listed;
  ASSERT_TRUE(PollUntil(
      [&] {
        listed.Clear();
        return Call([&](grpc::ClientContext* ctx) {
                 return cluster_->sessions(2).ListByPrincipal(ctx, list, &listed);
               }).ok() &&
               listed.sessions_size() == 3;
      },
      absl::Seconds(5)));

  // Regenerate through node 1: the new id lives, the old is tombstoned.
  const std::string old_id = listed.sessions(0).id();
  v1::RegenerateRequest regen;
  regen.set_id(old_id);
  v1::RegenerateResponse regen_resp;
  ASSERT_TRUE(Call([&](grpc::ClientContext* ctx) {
                return cluster_->sessions(1).Regenerate(ctx, regen, &regen_resp);
              }).ok());
  const std::string new_id = regen_resp.session().id();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(PollUntil([&] { return HoldsLive(i, new_id); }, absl::Seconds(5)));
    EXPECT_TRUE(PollUntil([&] { return HoldsTombstone(i, old_id); }, absl::Seconds(5)));
  }

  // Log out everywhere, with one owner down: it gets the deletes as hints.
  cluster_->Kill(2);
  v1::DeleteByPrincipalRequest del;
  del.set_principal("dave");
  v1::DeleteByPrincipalResponse del_resp;
  ASSERT_TRUE(Call([&](grpc::ClientContext* ctx) {
                return cluster_->sessions(0).DeleteByPrincipal(ctx, del, &del_resp);
              }).ok());
  EXPECT_EQ(del_resp.deleted_count(), 3);
  cluster_->Start(2);
  ASSERT_TRUE(cluster_->WaitForNoHints(absl::Seconds(30)));
  listed.Clear();
  ASSERT_TRUE(PollUntil(
      [&] {
        listed.Clear();
        return Call([&](grpc::ClientContext* ctx) {
                 return cluster_->sessions(2).ListByPrincipal(ctx, list, &listed);
               }).ok() &&
               listed.sessions_size() == 0;
      },
      absl::Seconds(10)));
}

TEST_F(ClusterTest, ScaleThreeToFourToThreeLosesNoSession) {
  StartCluster(3);
  std::vector<std::string> acked;
  auto load = [&](int count) {
    for (int n = 0; n < count; ++n) {
      std::string id;
      if (CreateAny(n % 3, "scale", "", &id).ok()) acked.push_back(id);
    }
  };
  load(200);
  const int added = cluster_->AddNode();
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(20)));
  ASSERT_TRUE(cluster_->WaitForView(added, absl::Seconds(20)));
  auto st = cluster_->Status(0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->nodes_size(), 4);
  EXPECT_LT(st->nodes(0).ring_share(), 1.0);  // N = 3 of 4 now
  // The joiner is streamed the ranges it gained: every session written
  // before it joined and now owned by it is in its own store.
  const replication::Ring four({"n0", "n1", "n2", "n3"});
  std::vector<std::string> gained;
  for (const std::string& id : acked) {
    auto owners = four.OwnersOfId(id, 3);
    if (std::find(owners.begin(), owners.end(), "n3") != owners.end()) {
      gained.push_back(id);
    }
  }
  EXPECT_GT(gained.size(), 50u);
  EXPECT_TRUE(PollUntil(
      [&] {
        for (const std::string& id : gained) {
          if (!HoldsLive(added, id)) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  load(300);
  // The fourth node leaves for good (drained, then gone).
  cluster_->Terminate(added);
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(20)));
  load(100);
  std::printf("acked=%zu\n", acked.size());
  ASSERT_GE(acked.size(), 590u);
  int lost = 0;
  for (const std::string& id : acked) {
    bool found = false;
    for (int i = 0; i < 3 && !found; ++i) found = GetVia(i, id, nullptr).ok();
    if (!found) ++lost;
  }
  EXPECT_EQ(lost, 0);
}

// With four nodes and N = 3 a node is not an owner of every id: the
// ring-aware client sends each call about an id to one of its owners.
TEST_F(ClusterTest, RingAwareClientSendsCallsToAnOwner) {
  StartCluster(4);
  std::vector<std::string> targets;
  for (int i = 0; i < 4; ++i) targets.push_back(cluster_->node(i).client_address());
  auto make_client = [&](bool route) {
    client::ClientOptions options;
    options.target = absl::StrJoin(targets, ",");
    options.route_to_owners = route;
    options.ring_refresh = absl::Milliseconds(100);
    auto c = client::Client::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  };
  auto not_owner_calls = [&] {
    int64_t total = 0;
    for (int i = 0; i < 4; ++i) {
      v1::NodeStatsResponse st;
      EXPECT_TRUE(Call([&](grpc::ClientContext* ctx) {
                    return cluster_->admin(i).NodeStats(ctx, v1::NodeStatsRequest(), &st);
                  }).ok());
      total += st.stats().coordinated_calls_not_owner();
    }
    return total;
  };
  std::unique_ptr<client::Client> routed = make_client(true);
  std::vector<std::string> ids;
  for (int n = 0; n < 200; ++n) {
    v1::CreateRequest req;
    req.set_data("r");
    auto created = routed->Create(req);
    ASSERT_TRUE(created.ok()) << created.status();
    ids.push_back(created->session().id());
  }
  // Once the client has the ring, no keyed call lands on a non-owner.
  ASSERT_TRUE(PollUntil(
      [&] {
        v1::GetRequest probe;
        probe.set_id(ids[0]);
        (void)routed->Get(probe);
        absl::SleepFor(absl::Milliseconds(20));
        const int64_t before = not_owner_calls();
        for (int k = 0; k < 20; ++k) {
          v1::GetRequest req;
          req.set_id(ids[k]);
          (void)routed->Get(req);
        }
        return not_owner_calls() == before;
      },
      absl::Seconds(10)));
  const int64_t before = not_owner_calls();
  for (const std::string& id : ids) {
    v1::GetRequest req;
    req.set_id(id);
    ASSERT_TRUE(routed->Get(req).ok());
  }
  EXPECT_EQ(not_owner_calls(), before);
  // Without routing a quarter of them would hop: the counter can move.
  std::unique_ptr<client::Client> rotating = make_client(false);
  for (const std::string& id : ids) {
    v1::GetRequest req;
    req.set_id(id);
    ASSERT_TRUE(rotating->Get(req).ok());
  }
  EXPECT_GT(not_owner_calls(), before + 10);
  // An owner down (before the ring says so): calls fall back to another
  // node and keep succeeding, the asynchronous ones (what the edge uses)
  // included.
  cluster_->Kill(3);
  int failed = 0, async_failed = 0;
  for (const std::string& id : ids) {
    v1::GetRequest req;
    req.set_id(id);
    if (!routed->Get(req).ok()) ++failed;
    absl::Notification done;
    bool ok = false;
    routed->GetAsync(req, [&](absl::StatusOr<v1::GetResponse> r) {
      ok = r.ok();
      done.Notify();
    });
    done.WaitForNotification();
    if (!ok) ++async_failed;
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(async_failed, 0);
}

TEST_F(ClusterTest, DuplicateNodeIdsRefuseToFormACluster) {
  cluster_ = std::make_unique<TestCluster>(SG_SERVER_BIN, dir_, 2);
  cluster_->SetNodeFlags(1, {"--node-id=n0"});
  cluster_->Start();
  EXPECT_TRUE(cluster_->process(0)
                  ->WaitForLine("duplicate node id", absl::Seconds(10))
                  .has_value() ||
              cluster_->process(1)
                  ->WaitForLine("duplicate node id", absl::Seconds(10))
                  .has_value());
  auto st = cluster_->Status(0);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->nodes_size(), 1) << st->DebugString();
}

}  // namespace
}  // namespace sg
