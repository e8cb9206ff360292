// SessionService.ListSessions over loopback gRPC: against an in-process
// node (bounds, tokens, expiry, deletes) and against three real server
// processes (every session exactly once whatever the replication factor,
// pages merged across members, a member down, a stale member's copy of a
// deleted session).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/ctl.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/service/node_server.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
namespace rpb = ::sessiongrid::replica::v1;
using testutil::PollUntil;
using testutil::TestCluster;

grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& fn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  return fn(&ctx);
}

grpc::Status ListPage(v1::SessionService::Stub& stub, int page_size,
                      const std::string& token, bool include_data,
                      v1::ListSessionsResponse* out) {
  v1::ListSessionsRequest req;
  req.set_page_size(page_size);
  req.set_page_token(token);
  req.set_include_data(include_data);
  out->Clear();
  return Call([&](grpc::ClientContext* ctx) { return stub.ListSessions(ctx, req, out); });
}

// Every page until the token is empty (at most 1000 pages). Fails the
// test on an RPC error; `pages` counts the calls.
absl::StatusOr<std::vector<v1::Session>> ListAll(v1::SessionService::Stub& stub,
                                                 int page_size, bool include_data,
                                                 int* pages = nullptr) {
  std::vector<v1::Session> all;
  std::string token;
  int calls = 0;
  for (; calls < 1000; ++calls) {
    v1::ListSessionsResponse page;
    grpc::Status s = ListPage(stub, page_size, token, include_data, &page);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    EXPECT_LE(page.sessions_size(), page_size == 0 ? 100 : page_size);
    for (const v1::Session& session : page.sessions()) {
      if (!token.empty()) {
        EXPECT_GT(session.id(), token);
      }
      all.push_back(session);
    }
    if (page.next_page_token().empty()) break;
    token = page.next_page_token();
  }
  if (pages != nullptr) *pages = calls + 1;
  return all;
}

std::vector<std::string> Ids(const std::vector<v1::Session>& sessions) {
  std::vector<std::string> ids;
  for (const v1::Session& s : sessions) ids.push_back(s.id());
  return ids;
}

// --- One node, in process ---------------------------------------------------

class ListSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-listing");
    ASSERT_FALSE(dir_.empty());
    service::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.drain_timeout = absl::Seconds(5);
    options.store.data_dir = dir_;
    options.store.node_id = "test-node";
    auto server = service::NodeServer::Start(options, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    sessions_ = v1::SessionService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    sessions_.reset();
    if (server_) {
      EXPECT_TRUE(server_->Drain().ok());
    }
    server_.reset();
    testutil::RemoveTree(dir_);
  }

  std::string MustCreate(const std::string& data, int64_t ttl_seconds = 0) {
    v1::CreateRequest req;
    req.set_data(data);
    if (ttl_seconds > 0) req.mutable_ttl()->set_seconds(ttl_seconds);
    v1::CreateResponse resp;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return sessions_->Create(ctx, req, &resp);
    });
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.session().id();
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<service::NodeServer> server_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
};

TEST_F(ListSessionsTest, PagesThroughEverySessionOnceInIdOrder) {
  std::set<std::string> created;
  for (int i = 0; i < 250; ++i) created.insert(MustCreate(absl::StrCat("d", i)));
  int pages = 0;
  auto all = ListAll(*sessions_, 0, false, &pages);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(pages, 3);  // the default page is 100
  std::vector<std::string> ids = Ids(*all);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(ids.size(), created.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), created);
  for (const v1::Session& s : *all) {
    EXPECT_TRUE(s.data().empty()) << "data without include_data";
    EXPECT_TRUE(s.has_expire_time());
  }
}

TEST_F(ListSessionsTest, IncludeDataReturnsTheData) {
  const std::string id = MustCreate("cart=3");
  v1::ListSessionsResponse page;
  ASSERT_TRUE(ListPage(*sessions_, 10, "", true, &page).ok());
  ASSERT_EQ(page.sessions_size(), 1);
  EXPECT_EQ(page.sessions(0).id(), id);
  EXPECT_EQ(page.sessions(0).data(), "cart=3");
  EXPECT_TRUE(page.next_page_token().empty());
}

TEST_F(ListSessionsTest, PageSizeOutOfBoundsIsInvalidArgument) {
  v1::ListSessionsResponse page;
  for (int size : {-1, 1001, 1 << 30}) {
    grpc::Status s = ListPage(*sessions_, size, "", false, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << size;
    EXPECT_NE(s.error_message().find("page_size"), std::string::npos)
        << s.error_message();
  }
  EXPECT_TRUE(ListPage(*sessions_, 1000, "", false, &page).ok());
  EXPECT_TRUE(ListPage(*sessions_, 1, "", false, &page).ok());
}

TEST_F(ListSessionsTest, AForeignPageTokenIsInvalidArgument) {
  v1::ListSessionsResponse page;
  for (const char* token : {"short", "not a token at all, with spaces!!", "../../x"}) {
    grpc::Status s = ListPage(*sessions_, 10, token, false, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << token;
    EXPECT_NE(s.error_message().find("page_token"), std::string::npos);
  }
}

TEST_F(ListSessionsTest, ExpiredAndDeletedSessionsAreNeverListed) {
  const std::string expiring = MustCreate("a", 60);
  const std::string deleted = MustCreate("b");
  const std::string kept = MustCreate("c");
  v1::DeleteRequest del;
  del.set_id(deleted);
  v1::DeleteResponse del_resp;
  ASSERT_TRUE(Call([&](grpc::ClientContext* ctx) {
                return sessions_->Delete(ctx, del, &del_resp);
              }).ok());
  auto before = ListAll(*sessions_, 10, false);
  ASSERT_TRUE(before.ok());
  const std::vector<std::string> before_ids = Ids(*before);
  EXPECT_EQ(std::set<std::string>(before_ids.begin(), before_ids.end()),
            (std::set<std::string>{expiring, kept}));
  clock_.Advance(absl::Seconds(61));  // expired, not yet swept
  auto after = ListAll(*sessions_, 10, false);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Ids(*after), std::vector<std::string>{kept});
}

TEST_F(ListSessionsTest, EmptyStoreAnswersOneEmptyPage) {
  v1::ListSessionsResponse page;
  ASSERT_TRUE(ListPage(*sessions_, 10, "", true, &page).ok());
  EXPECT_EQ(page.sessions_size(), 0);
  EXPECT_TRUE(page.next_page_token().empty());
}

TEST_F(ListSessionsTest, CtlListPagesThroughEverySession) {
  // More than one page of 1000.
  std::set<std::string> created;
  for (int i = 0; i < 1205; ++i) created.insert(MustCreate("x"));
  std::ostringstream out, err;
  ASSERT_EQ(client::RunCtl({"--server", server_->address(), "list"}, "", out, err),
            client::kCtlOk)
      << err.str();
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1 + created.size() + 1);  // header, rows, count
  EXPECT_EQ(lines.front().substr(0, 2), "ID");
  EXPECT_EQ(lines.back(), "1205 sessions");
  std::set<std::string> listed;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    listed.insert(lines[i].substr(0, lines[i].find(' ')));
  }
  EXPECT_EQ(listed, created);

  std::ostringstream json, json_err;
  ASSERT_EQ(client::RunCtl({"--server", server_->address(), "list", "--json",
                            "--limit", "3"},
                           "", json, json_err),
            client::kCtlOk)
      << json_err.str();
  std::vector<std::string> objects = absl::StrSplit(json.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(objects.size(), 3u);
  for (const std::string& o : objects) {
    EXPECT_NE(o.find("\"data\":\"eA==\""), std::string::npos) << o;  // "x"
  }

  std::ostringstream bad_out, bad_err;
  EXPECT_EQ(client::RunCtl({"--server", server_->address(), "list", "--limit", "-1"},
                           "", bad_out, bad_err),
            client::kCtlUsageError);
  EXPECT_NE(bad_err.str().find("--limit"), std::string::npos);
}

// --- Three real server processes --------------------------------------------

class ListSessionsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-listing-cluster"); }
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

  // Creates `n` sessions, spread over the nodes as coordinators.
  std::set<std::string> CreateMany(int n) {
    std::set<std::string> ids;
    for (int k = 0; k < n; ++k) {
      v1::CreateRequest req;
      req.set_data(absl::StrCat("data-", k));
      v1::CreateResponse resp;
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return cluster_->sessions(k % cluster_->size()).Create(ctx, req, &resp);
      });
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (s.ok()) ids.insert(resp.session().id());
    }
    return ids;
  }

  grpc::Status DeleteVia(int i, const std::string& id) {
    v1::DeleteRequest req;
    req.set_id(id);
    v1::DeleteResponse resp;
    return Call([&](grpc::ClientContext* ctx) {
      return cluster_->sessions(i).Delete(ctx, req, &resp);
    });
  }

  // Checks that a full listing through node `via` holds exactly `want`,
  // each once, in id order, data included.
  void ExpectListsExactly(int via, int page_size, const std::set<std::string>& want) {
    int pages = 0;
    auto all = ListAll(cluster_->sessions(via), page_size, true, &pages);
    ASSERT_TRUE(all.ok()) << "via node " << via << ": " << all.status();
    std::vector<std::string> ids = Ids(*all);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "via node " << via;
    std::map<std::string, int> seen;
    for (const std::string& id : ids) ++seen[id];
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id << " listed " << n << " times";
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), want) << "via node " << via;
    for (const v1::Session& s : *all) EXPECT_EQ(s.data().substr(0, 5), "data-");
    EXPECT_GE(pages, static_cast<int>(want.size()) / page_size);
  }

  std::string dir_;
  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(ListSessionsClusterTest, EverySessionListedOnceWithThreeReplicas) {
  StartCluster(3);
  const std::set<std::string> ids = CreateMany(150);
  ASSERT_EQ(ids.size(), 150u);
  // Every node holds every session (N=3): the merge must dedupe.
  for (int via = 0; via < 3; ++via) ExpectListsExactly(via, 40, ids);
}

TEST_F(ListSessionsClusterTest, PagesMergeAcrossMembersThatEachHoldAPart) {
  StartCluster(3, {"--replication-factor=2"});
  std::set<std::string> ids = CreateMany(150);
  ASSERT_EQ(ids.size(), 150u);
  // With N=2 of 3 no member holds everything: each page is the merge of
  // three partial scans.
  for (int via = 0; via < 3; ++via) ExpectListsExactly(via, 25, ids);
  // Deleted sessions drop out of every listing.
  std::vector<std::string> gone(ids.begin(), std::next(ids.begin(), 10));
  for (const std::string& id : gone) {
    ASSERT_TRUE(DeleteVia(1, id).ok());
    ids.erase(id);
  }
  for (int via = 0; via < 3; ++via) ExpectListsExactly(via, 25, ids);
}

TEST_F(ListSessionsClusterTest, AMemberDownStillListsEverything) {
  StartCluster(3, {"--replication-factor=2"});
  const std::set<std::string> ids = CreateMany(120);
  ASSERT_EQ(ids.size(), 120u);
  cluster_->Kill(2);
  // Right after the kill (node 2 not yet judged dead: its scan fails) and
  // once it is dead: every session has a live owner (N=2), W-1 = 1 member
  // may be missing.
  ExpectListsExactly(0, 30, ids);
  ASSERT_TRUE(cluster_->WaitForView(0, absl::Seconds(20)));
  ExpectListsExactly(0, 30, ids);
  ExpectListsExactly(1, 30, ids);
}

TEST_F(ListSessionsClusterTest, TooManyMembersDownIsUnavailable) {
  StartCluster(3);
  CreateMany(10);
  cluster_->Kill(1);
  cluster_->Kill(2);
  v1::ListSessionsResponse page;
  grpc::Status s = ListPage(cluster_->sessions(0), 10, "", false, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("did not"), std::string::npos) << s.error_message();
}

TEST_F(ListSessionsClusterTest, AStaleCopyOfADeletedSessionIsNotListed) {
  StartCluster(3, {"--replication-factor=2"});
  const std::set<std::string> ids = CreateMany(30);
  // A session whose two owners get its tombstone, and a third node that
  // is not an owner: it receives a live copy afterwards, as a member that
  // missed the delete (or kept a range it gave away) would hold one.
  const std::string victim = *ids.begin();
  ASSERT_TRUE(DeleteVia(0, victim).ok());
  int outsider = -1;
  ASSERT_TRUE(PollUntil(
      [&] {
        int tombstones = 0;
        outsider = -1;
        for (int i = 0; i < 3; ++i) {
          auto r = cluster_->ReadLocal(i, victim);
          if (!r.ok()) return false;
          if (r->has_tombstone()) ++tombstones;
          if (!r->has_tombstone() && !r->has_session()) outsider = i;
        }
        return tombstones == 2 && outsider >= 0;
      },
      absl::Seconds(10)));
  auto stub = rpb::ReplicaService::NewStub(grpc::CreateChannel(
      cluster_->node(outsider).peer_address(), grpc::InsecureChannelCredentials()));
  rpb::ApplyRequest apply;
  apply.set_from_node("test");
  rpb::Record* r = apply.add_mutations()->mutable_record();
  r->set_id(victim);
  r->set_data("data-stale");
  r->set_create_micros(absl::ToUnixMicros(absl::Now()));
  r->set_last_access_micros(absl::ToUnixMicros(absl::Now()));
  r->set_expire_micros(absl::ToUnixMicros(absl::Now() + absl::Hours(1)));
  r->set_ttl_micros(absl::ToInt64Microseconds(absl::Hours(1)));
  r->mutable_version()->set_wall_millis(absl::ToUnixMillis(absl::Now()) + 60000);
  r->mutable_version()->set_node_id("late-writer");
  rpb::ApplyResponse applied;
  ASSERT_TRUE(Call([&](grpc::ClientContext* ctx) {
                return stub->Apply(ctx, apply, &applied);
              }).ok());
  ASSERT_EQ(applied.applied_size(), 1);
  ASSERT_TRUE(applied.applied(0)) << "the outsider must hold the stale copy";
  std::set<std::string> want = ids;
  want.erase(victim);
  for (int via = 0; via < 3; ++via) ExpectListsExactly(via, 7, want);
  // Still there: the listing, not a cleanup, left it out.
  auto local = cluster_->ReadLocal(outsider, victim);
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(local->has_session());
}

TEST_F(ListSessionsClusterTest, ExpiredSessionsLeaveTheListing) {
  StartCluster(3);
  std::set<std::string> ids = CreateMany(5);
  v1::CreateRequest req;
  req.set_data("data-short");
  req.mutable_ttl()->set_seconds(1);
  v1::CreateResponse resp;
  ASSERT_TRUE(Call([&](grpc::ClientContext* ctx) {
                return cluster_->sessions(0).Create(ctx, req, &resp);
              }).ok());
  auto listed = [&](int via) {
    auto all = ListAll(cluster_->sessions(via), 100, false);
    std::set<std::string> got;
    if (all.ok()) {
      for (const std::string& id : Ids(*all)) got.insert(id);
    }
    return got;
  };
  std::set<std::string> with_short = ids;
  with_short.insert(resp.session().id());
  // Listed while it lives (unless this machine was slower than a second).
  const std::set<std::string> first = listed(1);
  EXPECT_TRUE(first == with_short || first == ids);
  ASSERT_TRUE(PollUntil([&] { return listed(1) == ids && listed(2) == ids; },
                        absl::Seconds(10)));
}

}  // namespace
}  // namespace sg
