#include "server/store/session_store.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/unit/store/fsync_counter.h"
#include "tests/unit/store/store_test_util.h"

namespace sg::store {
namespace {

using ::sg::store::testing::ScopedTempDir;

class SessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    options_.data_dir = tmp_.path() + "/db";
    options_.node_id = "n1";
    options_.default_ttl = absl::Minutes(30);
    options_.max_ttl = absl::Hours(24);
    options_.touch_after = 0.25;
    options_.tombstone_ttl = absl::Minutes(10);
    options_.max_session_bytes = 1024;
    options_.block_cache_bytes = 8 << 20;
    options_.write_buffer_bytes = 4 << 20;
    OpenStore();
  }

  void OpenStore() {
    auto store = SessionStore::Open(options_, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    OpenStore();
  }

  SessionRecord MustCreate(std::string data, std::string principal = "",
                           std::optional<absl::Duration> ttl = std::nullopt) {
    auto r = store_->Create(
        CreateParams{std::move(data), std::move(principal), ttl});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SessionRecord{};
  }

  RawCounts Raw() {
    auto c = store_->RawCountsForTesting();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : RawCounts{-1, -1, -1};
  }

  ScopedTempDir tmp_;
  FakeClock clock_;
  StoreOptions options_;
  std::unique_ptr<SessionStore> store_;
};

// --- Create / Get -----------------------------------------------------------

TEST_F(SessionStoreTest, CreateThenGetReturnsTheRecord) {
  const absl::Time t0 = clock_.Now();
  SessionRecord created = MustCreate("payload", "alice", absl::Minutes(5));
  EXPECT_TRUE(ValidateSessionId(created.id).ok());
  EXPECT_EQ(created.create_time, t0);
  EXPECT_EQ(created.expire_time, t0 + absl::Minutes(5));
  EXPECT_EQ(created.ttl, absl::Minutes(5));
  EXPECT_FALSE(created.version.is_zero());
  EXPECT_EQ(created.version.node_id, "n1");
  EXPECT_TRUE(created.authenticated());

  auto got = store_->Get(created.id, /*touch=*/false);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, created.id);
  EXPECT_EQ(got->data, "payload");
  EXPECT_EQ(got->principal, "alice");
  EXPECT_EQ(got->create_time, t0);
  EXPECT_EQ(got->last_access_time, t0);
  EXPECT_EQ(got->expire_time, created.expire_time);
  EXPECT_EQ(got->ttl, absl::Minutes(5));
  EXPECT_EQ(got->version, created.version);
}

TEST_F(SessionStoreTest, CreateUsesDefaultTtlWhenUnset) {
  SessionRecord r = MustCreate("x");
  EXPECT_EQ(r.ttl, options_.default_ttl);
  EXPECT_EQ(r.expire_time, clock_.Now() + options_.default_ttl);
  EXPECT_FALSE(r.authenticated());
}

TEST_F(SessionStoreTest, CreateRejectsNonPositiveOrTooLongTtl) {
  for (absl::Duration ttl : {absl::ZeroDuration(), absl::Seconds(-1),
                             options_.max_ttl + absl::Seconds(1)}) {
    auto r = store_->Create(CreateParams{"x", "", ttl});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << absl::FormatDuration(ttl);
  }
  EXPECT_TRUE(store_->Create(CreateParams{"x", "", options_.max_ttl}).ok());
}

TEST_F(SessionStoreTest, GetWithMalformedIdIsInvalidArgument) {
  EXPECT_EQ(store_->Get("", false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("short", false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(std::string(43, '+'), false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionStoreTest, GetOfUnknownIdIsNotFound) {
  EXPECT_EQ(store_->Get(NewSessionId(), false).status().code(),
            absl::StatusCode::kNotFound);
}

// --- Expiry -----------------------------------------------------------------

TEST_F(SessionStoreTest, GetReturnsNotFoundAfterExpiry) {
  SessionRecord r = MustCreate("x", "alice", absl::Seconds(60));
  clock_.Advance(absl::Seconds(59));
  EXPECT_TRUE(store_->Get(r.id, false).ok());
  clock_.Advance(absl::Seconds(1));  // expire_time == now: expired
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(r.id, true).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Touch(r.id, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Update(r.id, UpdateParams{.data = "y"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Regenerate(r.id, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  auto listed = store_->ListByPrincipal("alice", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto deleted = store_->Delete(r.id, std::nullopt);
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(*deleted);
  // Delete reports no live session but still removes the leftover.
  EXPECT_EQ(Raw().sessions, 0);
  EXPECT_EQ(Raw().principal_entries, 0);
}

TEST_F(SessionStoreTest, ExpiredSessionIsNotReturnedAfterReopen) {
  SessionRecord r = MustCreate("x", "", absl::Seconds(10));
  Reopen();
  ASSERT_TRUE(store_->Get(r.id, false).ok());
  clock_.Advance(absl::Seconds(10));
  Reopen();
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionStoreTest, CompactionDropsExpiredRecordsAndIndexEntries) {
  for (int i = 0; i < 3; ++i) MustCreate("short", "alice", absl::Minutes(1));
  MustCreate("short-anon", "", absl::Minutes(1));
  SessionRecord keep1 = MustCreate("long", "alice", absl::Hours(1));
  SessionRecord keep2 = MustCreate("long-anon", "", absl::Hours(1));

  // Nothing has expired yet: compaction keeps everything.
  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_EQ(Raw().sessions, 6);
  EXPECT_EQ(Raw().principal_entries, 4);

  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(store_->CompactAll().ok());
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, 2);
  EXPECT_EQ(raw.principal_entries, 1);
  EXPECT_TRUE(store_->Get(keep1.id, false).ok());
  EXPECT_TRUE(store_->Get(keep2.id, false).ok());

  // The records vanished without a sweep; the next sweep recounts exactly.
  auto removed = store_->SweepExpired();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.sessions, 2);
  EXPECT_EQ(stats.authenticated_sessions, 1);
  EXPECT_EQ(stats.anonymous_sessions, 1);
}

TEST_F(SessionStoreTest, SweepRemovesExpiredSessionsAndCountsExactly) {
  std::vector<SessionRecord> doomed;
  for (int i = 0; i < 4; ++i) {
    doomed.push_back(MustCreate("a", "alice", absl::Minutes(1)));
  }
  for (int i = 0; i < 3; ++i) {
    doomed.push_back(MustCreate("b", "", absl::Minutes(1)));
  }
  MustCreate("c", "alice", absl::Hours(1));
  MustCreate("d", "bob", absl::Hours(1));
  MustCreate("e", "", absl::Hours(1));
  EXPECT_EQ(store_->Stats().sessions, 10);

  clock_.Advance(absl::Minutes(1));
  auto removed = store_->SweepExpired();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 7);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.expirations, 7);
  EXPECT_EQ(stats.sweeps, 1);
  EXPECT_EQ(stats.sessions, 3);
  EXPECT_EQ(stats.authenticated_sessions, 2);
  EXPECT_EQ(stats.anonymous_sessions, 1);
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, 3);
  EXPECT_EQ(raw.principal_entries, 2);  // no leaked alice entries
  for (const auto& r : doomed) {
    EXPECT_EQ(store_->Get(r.id, false).status().code(),
              absl::StatusCode::kNotFound);
  }

  auto again = store_->SweepExpired();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(store_->Stats().expirations, 7);
  EXPECT_EQ(store_->Stats().sweeps, 2);
}

TEST_F(SessionStoreTest, SweepGarbageCollectsOldTombstones) {
  SessionRecord r = MustCreate("x");
  ASSERT_TRUE(store_->Delete(r.id, std::nullopt).ok());
  EXPECT_EQ(Raw().tombstones, 1);
  clock_.Advance(options_.tombstone_ttl - absl::Seconds(1));
  ASSERT_TRUE(store_->SweepExpired().ok());
  EXPECT_EQ(Raw().tombstones, 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(store_->SweepExpired().ok());
  EXPECT_EQ(Raw().tombstones, 0);
}

TEST_F(SessionStoreTest, SessionCountSurvivesReopen) {
  MustCreate("a", "alice");
  MustCreate("b");
  MustCreate("c");
  Reopen();
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.sessions, 3);
  EXPECT_EQ(stats.authenticated_sessions, 1);
  EXPECT_EQ(stats.anonymous_sessions, 2);
}

// --- Touch ------------------------------------------------------------------

TEST_F(SessionStoreTest, TouchPersistsOnlyAfterThreshold) {
  const absl::Time t0 = clock_.Now();
  SessionRecord r = MustCreate("x", "alice", absl::Seconds(100));

  // 20 s < 0.25 * 100 s: the new expiry is returned but not persisted.
  clock_.Advance(absl::Seconds(20));
  auto touched = store_->Touch(r.id, std::nullopt);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_EQ(touched->expire_time, t0 + absl::Seconds(120));
  EXPECT_EQ(touched->last_access_time, t0 + absl::Seconds(20));
  EXPECT_EQ(touched->version, r.version);
  auto stored = store_->Get(r.id, false);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->expire_time, t0 + absl::Seconds(100));
  EXPECT_EQ(stored->last_access_time, t0);
  EXPECT_EQ(stored->version, r.version);
  EXPECT_EQ(store_->Stats().writes, 0);

  // 25 s: exactly the threshold, so this one persists with a new version.
  clock_.Advance(absl::Seconds(5));
  touched = store_->Touch(r.id, std::nullopt);
  ASSERT_TRUE(touched.ok());
  EXPECT_EQ(touched->expire_time, t0 + absl::Seconds(125));
  EXPECT_GT(touched->version, r.version);
  stored = store_->Get(r.id, false);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->expire_time, t0 + absl::Seconds(125));
  EXPECT_EQ(stored->last_access_time, t0 + absl::Seconds(25));
  EXPECT_EQ(stored->version, touched->version);
  EXPECT_EQ(store_->Stats().writes, 1);

  // The principal index follows the persisted expiry: after the original
  // expiry a sweep must keep the entry.
  clock_.Advance(absl::Seconds(90));  // t0 + 115 > t0 + 100
  ASSERT_TRUE(store_->SweepExpired().ok());
  EXPECT_EQ(Raw().principal_entries, 1);
  auto listed = store_->ListByPrincipal("alice", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(SessionStoreTest, GetWithTouchSlidesLikeTouch) {
  const absl::Time t0 = clock_.Now();
  SessionRecord r = MustCreate("x", "", absl::Seconds(100));
  clock_.Advance(absl::Seconds(10));
  auto got = store_->Get(r.id, /*touch=*/true);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->expire_time, t0 + absl::Seconds(110));
  EXPECT_EQ(got->version, r.version);
  clock_.Advance(absl::Seconds(30));
  got = store_->Get(r.id, /*touch=*/true);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->expire_time, t0 + absl::Seconds(140));
  EXPECT_GT(got->version, r.version);
  // The slid expiry keeps it alive past the original one.
  clock_.Advance(absl::Seconds(80));  // t0 + 120
  EXPECT_TRUE(store_->Get(r.id, false).ok());
}

TEST_F(SessionStoreTest, TouchWithNewTtlPersistsAndValidates) {
  SessionRecord r = MustCreate("x", "", absl::Seconds(100));
  auto touched = store_->Touch(r.id, absl::Seconds(500));
  ASSERT_TRUE(touched.ok());
  EXPECT_EQ(touched->ttl, absl::Seconds(500));
  EXPECT_GT(touched->version, r.version);
  auto stored = store_->Get(r.id, false);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->ttl, absl::Seconds(500));
  EXPECT_EQ(stored->expire_time, clock_.Now() + absl::Seconds(500));

  EXPECT_EQ(store_->Touch(r.id, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->Touch(r.id, options_.max_ttl + absl::Seconds(1)).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// --- Update / CAS -----------------------------------------------------------

TEST_F(SessionStoreTest, UpdateWithStaleVersionFailsPrecondition) {
  SessionRecord r = MustCreate("v1");
  auto u1 = store_->Update(
      r.id, UpdateParams{.data = "v2", .expected_version = r.version});
  ASSERT_TRUE(u1.ok()) << u1.status();
  EXPECT_EQ(u1->data, "v2");
  EXPECT_GT(u1->version, r.version);

  auto stale = store_->Update(
      r.id, UpdateParams{.data = "v3", .expected_version = r.version});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  auto got = store_->Get(r.id, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, "v2");
  EXPECT_EQ(got->version, u1->version);

  // Without expected_version the update is unconditional.
  EXPECT_TRUE(store_->Update(r.id, UpdateParams{.data = "v4"}).ok());
}

TEST_F(SessionStoreTest, UpdateSlidesExpiryAndKeepsUnsetFields) {
  SessionRecord r = MustCreate("data", "alice", absl::Minutes(10));
  clock_.Advance(absl::Minutes(5));
  auto u = store_->Update(r.id, UpdateParams{.ttl = absl::Minutes(20)});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->data, "data");
  EXPECT_EQ(u->principal, "alice");
  EXPECT_EQ(u->ttl, absl::Minutes(20));
  EXPECT_EQ(u->expire_time, clock_.Now() + absl::Minutes(20));
  EXPECT_EQ(u->create_time, r.create_time);
}

TEST_F(SessionStoreTest, UpdatePrincipalMovesIndexEntry) {
  SessionRecord r = MustCreate("x", "alice");
  ASSERT_TRUE(
      store_->Update(r.id, UpdateParams{.principal = std::string("bob")}).ok());
  auto alice = store_->ListByPrincipal("alice", 10);
  auto bob = store_->ListByPrincipal("bob", 10);
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_TRUE(alice->empty());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].id, r.id);
  EXPECT_EQ(Raw().principal_entries, 1);

  // Back to anonymous: no index entry at all, counters follow.
  ASSERT_TRUE(
      store_->Update(r.id, UpdateParams{.principal = std::string()}).ok());
  EXPECT_EQ(Raw().principal_entries, 0);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.authenticated_sessions, 0);
  EXPECT_EQ(stats.anonymous_sessions, 1);
}

// --- Delete / Regenerate / principal ----------------------------------------

TEST_F(SessionStoreTest, DeleteRemovesRecordAndIndexAndLeavesTombstone) {
  SessionRecord r = MustCreate("x", "alice");
  auto deleted = store_->Delete(r.id, std::nullopt);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, 0);
  EXPECT_EQ(raw.principal_entries, 0);
  EXPECT_EQ(raw.tombstones, 1);
  EXPECT_EQ(store_->Stats().sessions, 0);
  EXPECT_EQ(store_->Stats().deletes, 1);

  auto again = store_->Delete(r.id, std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(SessionStoreTest, DeleteWithStaleVersionFailsPrecondition) {
  SessionRecord r = MustCreate("x");
  auto u = store_->Update(r.id, UpdateParams{.data = "y"});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(store_->Delete(r.id, r.version).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Get(r.id, false).ok());
  auto deleted = store_->Delete(r.id, u->version);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
}

TEST_F(SessionStoreTest, RegenerateMovesSessionAndIndexToNewId) {
  SessionRecord r = MustCreate("cart", "alice");
  auto fresh = store_->Regenerate(r.id, std::nullopt);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->id, r.id);
  EXPECT_TRUE(ValidateSessionId(fresh->id).ok());
  EXPECT_EQ(fresh->data, "cart");
  EXPECT_EQ(fresh->principal, "alice");
  EXPECT_GT(fresh->version, r.version);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  auto got = store_->Get(fresh->id, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, "cart");

  auto listed = store_->ListByPrincipal("alice", 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, fresh->id);
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, 1);
  EXPECT_EQ(raw.principal_entries, 1);
  EXPECT_EQ(raw.tombstones, 1);
  EXPECT_EQ(store_->Stats().sessions, 1);
}

TEST_F(SessionStoreTest, RegenerateWithPrincipalLogsIn) {
  SessionRecord r = MustCreate("cart");
  auto fresh = store_->Regenerate(r.id, std::string("alice"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->authenticated());
  EXPECT_EQ(Raw().principal_entries, 1);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.authenticated_sessions, 1);
  EXPECT_EQ(stats.anonymous_sessions, 0);
  EXPECT_EQ(store_->Regenerate(NewSessionId(), std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionStoreTest, DeleteByPrincipalDeletesOnlyThatPrincipal) {
  for (int i = 0; i < 3; ++i) MustCreate("a", "alice");
  SessionRecord bob = MustCreate("b", "bob");
  SessionRecord anon = MustCreate("c");
  // Shares the "alice\0" prefix of the index keys but is another principal.
  SessionRecord tricky = MustCreate("d", std::string("alice\0x", 7));

  auto n = store_->DeleteByPrincipal("alice");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3);
  auto alice = store_->ListByPrincipal("alice", 10);
  ASSERT_TRUE(alice.ok());
  EXPECT_TRUE(alice->empty());
  EXPECT_TRUE(store_->Get(bob.id, false).ok());
  EXPECT_TRUE(store_->Get(anon.id, false).ok());
  EXPECT_TRUE(store_->Get(tricky.id, false).ok());
  EXPECT_EQ(Raw().principal_entries, 2);
  EXPECT_EQ(Raw().tombstones, 3);
  EXPECT_EQ(store_->Stats().sessions, 3);
  EXPECT_EQ(store_->Stats().deletes, 3);

  auto none = store_->DeleteByPrincipal("alice");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

TEST_F(SessionStoreTest,
       DeleteByPrincipalDropsIndexEntriesOfReclaimedSessions) {
  MustCreate("a", "alice", absl::Minutes(1));
  MustCreate("b", "alice", absl::Hours(1));
  clock_.Advance(absl::Minutes(2));
  auto n = store_->DeleteByPrincipal("alice");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);  // only the live one counts
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, 0);
  EXPECT_EQ(raw.principal_entries, 0);
}

TEST_F(SessionStoreTest, ListByPrincipalHonoursLimitAndPrefixes) {
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(MustCreate("x", "alice").id);
  MustCreate("y", "alic");
  MustCreate("z", "alice2");
  auto all = store_->ListByPrincipal("alice", 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  for (const auto& r : *all) {
    EXPECT_EQ(r.principal, "alice");
    EXPECT_EQ(ids.count(r.id), 1u);
  }
  auto two = store_->ListByPrincipal("alice", 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  auto zero = store_->ListByPrincipal("alice", 0);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->empty());
  EXPECT_EQ(store_->ListByPrincipal("", 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Limits -----------------------------------------------------------------

TEST_F(SessionStoreTest, DataSizeLimitIsInclusive) {
  const std::string at_limit(options_.max_session_bytes, 'd');
  const std::string over(options_.max_session_bytes + 1, 'd');
  SessionRecord r = MustCreate(at_limit);
  EXPECT_EQ(
      store_->Create(CreateParams{over, "", std::nullopt}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->Update(r.id, UpdateParams{.data = at_limit}).ok());
  EXPECT_EQ(store_->Update(r.id, UpdateParams{.data = over}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto got = store_->Get(r.id, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, at_limit);
}

TEST_F(SessionStoreTest, PrincipalSizeLimitIsInclusive) {
  const std::string at_limit(kMaxPrincipalBytes, 'p');
  const std::string over(kMaxPrincipalBytes + 1, 'p');
  SessionRecord r = MustCreate("x", at_limit);
  EXPECT_TRUE(r.authenticated());
  EXPECT_EQ(
      store_->Create(CreateParams{"x", over, std::nullopt}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->Update(r.id, UpdateParams{.principal = over}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Regenerate(r.id, over).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListByPrincipal(over, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto listed = store_->ListByPrincipal(at_limit, 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

// --- Replication ------------------------------------------------------------

TEST_F(SessionStoreTest, TombstoneBeatsOlderReplicatedWrite) {
  SessionRecord r = MustCreate("x", "alice");
  // A write made elsewhere after our create but before our delete.
  SessionRecord in_flight = r;
  in_flight.data = "late";
  in_flight.version = Hlc{r.version.wall_millis, r.version.logical + 1, "n2"};
  clock_.Advance(absl::Milliseconds(5));
  ASSERT_TRUE(store_->Delete(r.id, std::nullopt).ok());

  auto applied = store_->ApplyReplicated(in_flight);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_FALSE(*applied);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Raw().principal_entries, 0);
  EXPECT_EQ(store_->Stats().sessions, 0);

  // Deletes win: ids are never reused, so even a write with a newer version
  // (another coordinator's clock ran ahead) cannot bring the session back.
  SessionRecord newer = r;
  newer.data = "reborn";
  newer.version = Hlc{absl::ToUnixMillis(clock_.Now()) + 1000, 0, "n2"};
  applied = store_->ApplyReplicated(newer);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Raw().tombstones, 1);
  EXPECT_EQ(Raw().principal_entries, 0);
}

TEST_F(SessionStoreTest, ApplyReplicatedIsLastWriterWins) {
  SessionRecord r = MustCreate("local", "alice");
  SessionRecord older = r;
  older.data = "older";
  older.version = Hlc{r.version.wall_millis - 1, 0, "n2"};
  auto applied = store_->ApplyReplicated(older);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);

  applied = store_->ApplyReplicated(r);  // same version: idempotent no-op
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);

  SessionRecord newer = r;
  newer.data = "newer";
  newer.principal = "bob";
  newer.version = Hlc{r.version.wall_millis + 1, 0, "n2"};
  applied = store_->ApplyReplicated(newer);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);
  auto got = store_->Get(r.id, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, "newer");
  EXPECT_EQ(got->version, newer.version);
  auto alice = store_->ListByPrincipal("alice", 10);
  auto bob = store_->ListByPrincipal("bob", 10);
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_TRUE(alice->empty());
  EXPECT_EQ(bob->size(), 1u);
  EXPECT_EQ(Raw().principal_entries, 1);

  SessionRecord no_ttl = newer;
  no_ttl.ttl = absl::ZeroDuration();
  no_ttl.version.wall_millis += 1;
  EXPECT_EQ(store_->ApplyReplicated(no_ttl).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Local writes after observing a remote version still move forward.
  auto u = store_->Update(r.id, UpdateParams{.data = "after"});
  ASSERT_TRUE(u.ok());
  EXPECT_GT(u->version, newer.version);
}

TEST_F(SessionStoreTest, ApplyReplicatedDeleteWinsWhateverItsVersion) {
  SessionRecord r = MustCreate("x", "alice");
  // A delete stamped before the stored write (a coordinator whose clock is
  // behind) still deletes: a logout is never undone.
  auto applied = store_->ApplyReplicatedDelete(
      r.id, Hlc{r.version.wall_millis - 1, 0, "n2"});
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);

  const Hlc delete_version{r.version.wall_millis + 10, 0, "n2"};
  applied = store_->ApplyReplicatedDelete(r.id, delete_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);  // already deleted; the tombstone only advances
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Raw().principal_entries, 0);
  EXPECT_EQ(Raw().tombstones, 1);

  // A write between the create and that delete cannot resurrect it.
  SessionRecord late = r;
  late.version = Hlc{r.version.wall_millis + 5, 0, "n3"};
  applied = store_->ApplyReplicated(late);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kNotFound);

  // A delete of an id never seen still leaves a tombstone.
  const std::string unseen = NewSessionId();
  applied = store_->ApplyReplicatedDelete(unseen, delete_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);  // no live session was removed
  EXPECT_EQ(Raw().tombstones, 2);
  SessionRecord ghost = r;
  ghost.id = unseen;
  applied = store_->ApplyReplicated(ghost);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);
}

// A compare-and-set's write carries the version its coordinator read from a
// quorum. A replica that is merely behind takes it (it is repaired); one that
// holds a newer write refuses, so two CAS writes from one version cannot both
// reach a quorum.
TEST_F(SessionStoreTest, ConditionalReplicaWriteRepairsAStaleCopyNotANewerOne) {
  SessionRecord stale = MustCreate("v1");
  const Hlc read_version{stale.version.wall_millis + 10, 0, "n2"};

  SessionRecord first = stale;
  first.data = "first";
  first.version = Hlc{stale.version.wall_millis + 20, 0, "n2"};
  auto applied = store_->ApplyReplicated(first, read_version);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(*applied);  // behind the quorum's version: repaired

  SessionRecord second = stale;
  second.data = "second";
  second.version = Hlc{stale.version.wall_millis + 30, 0, "n3"};
  applied = store_->ApplyReplicated(second, read_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);  // the first write from that version won here
  auto got = store_->Get(stale.id, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, "first");

  // A replica that never saw the session takes it too.
  SessionRecord unseen = first;
  unseen.id = NewSessionId();
  applied = store_->ApplyReplicated(unseen, read_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);

  // Deletes: a newer copy refuses, a stale or missing one is deleted, and a
  // tombstone (another delete) refuses.
  const Hlc tomb{stale.version.wall_millis + 40, 0, "n2"};
  applied = store_->ApplyReplicatedDelete(stale.id, tomb, absl::InfinitePast(),
                                          read_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);
  EXPECT_TRUE(store_->Get(stale.id, false).ok());
  applied = store_->ApplyReplicatedDelete(stale.id, tomb, absl::InfinitePast(),
                                          first.version);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);
  EXPECT_EQ(store_->Get(stale.id, false).status().code(),
            absl::StatusCode::kNotFound);
  applied = store_->ApplyReplicatedDelete(stale.id, tomb, absl::InfinitePast(),
                                          first.version);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);
  const std::string missing = NewSessionId();
  applied = store_->ApplyReplicatedDelete(missing, tomb, absl::InfinitePast(),
                                          read_version);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);
}

// A compare-and-set's new version is past the one it replaces even when that
// came from a peer whose clock runs ahead of this node's.
TEST_F(SessionStoreTest, PreparedUpdateIsNewerThanAVersionFromTheFuture) {
  SessionRecord r = MustCreate("x");
  r.version = Hlc{r.version.wall_millis + 3600 * 1000, 0, "n9"};
  auto updated = store_->PrepareUpdate(r, UpdateParams{.data = "y"});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_GT(updated->version, r.version);
}

// --- Durability and lifecycle -----------------------------------------------

TEST_F(SessionStoreTest, ReopenAfterCloseKeepsDataAndVersionsAdvance) {
  SessionRecord r = MustCreate("durable", "alice");
  Reopen();
  auto got = store_->Get(r.id, false);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->data, "durable");
  EXPECT_EQ(got->version, r.version);

  // Even if the wall clock stepped back across the restart, new versions
  // stay ahead of stored ones.
  clock_.Advance(-absl::Hours(1));
  Reopen();
  auto u = store_->Update(r.id, UpdateParams{.data = "later"});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_GT(u->version, r.version);
}

TEST_F(SessionStoreTest, CloseIsIdempotentAndLaterCallsFail) {
  SessionRecord r = MustCreate("x");
  ASSERT_TRUE(store_->Close().ok());
  EXPECT_TRUE(store_->Close().ok());
  EXPECT_EQ(store_->Get(r.id, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Create(CreateParams{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SweepExpired().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Each acknowledged write of a sync_writes store is on disk: one fsync or
// fdatasync per write at least; without it, writes sync nothing.
TEST_F(SessionStoreTest, SyncWritesSyncEveryWriteAndAsyncWritesDoNot) {
  constexpr int kWrites = 50;
  const auto syncs_for_writes = [&] {
    const int64_t before = testing::FsyncCalls();
    for (int i = 0; i < kWrites; ++i) MustCreate("w" + std::to_string(i));
    return testing::FsyncCalls() - before;
  };
  const int64_t async_syncs = syncs_for_writes();
  store_.reset();
  options_.sync_writes = true;
  OpenStore();
  const int64_t sync_syncs = syncs_for_writes();
  EXPECT_GE(sync_syncs, kWrites) << "sync_writes: " << sync_syncs
                                 << " syncs for " << kWrites << " writes";
  EXPECT_LT(async_syncs, kWrites / 10) << "async: " << async_syncs
                                       << " syncs for " << kWrites
                                       << " writes";
  // Still a working store.
  SessionRecord r = MustCreate("synced");
  EXPECT_TRUE(store_->Get(r.id, false).ok());
}

// A CreateMany answers each entry in order, fails a bad entry alone and
// stores the rest as Create would.
TEST_F(SessionStoreTest, CreateManyAnswersEachEntryAndFailsABadOneAlone) {
  SessionRecord taken = MustCreate("first");
  std::vector<CreateParams> batch;
  batch.push_back(CreateParams{"a", "", std::nullopt});
  batch.push_back(CreateParams{std::string(options_.max_session_bytes + 1, 'x'),
                               "", std::nullopt});
  batch.push_back(CreateParams{"b", "bob", absl::Minutes(3)});
  batch.push_back(CreateParams{"c", "", std::nullopt, taken.id});  // in use
  const std::string chosen(43, 'k');
  batch.push_back(CreateParams{"d", "", std::nullopt, chosen});
  std::vector<absl::StatusOr<SessionRecord>> r = store_->CreateMany(batch);
  ASSERT_EQ(r.size(), 5u);
  ASSERT_TRUE(r[0].ok()) << r[0].status();
  EXPECT_EQ(r[1].status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(r[2].ok()) << r[2].status();
  EXPECT_EQ(r[3].status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(r[4].ok()) << r[4].status();
  EXPECT_EQ(r[4]->id, chosen);
  EXPECT_EQ(r[2]->ttl, absl::Minutes(3));
  for (int i : {0, 2, 4}) {
    auto got = store_->Get(r[i]->id, false);
    ASSERT_TRUE(got.ok()) << i << ": " << got.status();
    EXPECT_EQ(got->data, r[i]->data);
    EXPECT_EQ(got->principal, r[i]->principal);
    EXPECT_EQ(got->version, r[i]->version);
  }
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.sessions, 4);
  EXPECT_EQ(stats.authenticated_sessions, 1);
  EXPECT_EQ(stats.creates, 4);
  EXPECT_EQ(Raw().sessions, 4);
  ASSERT_EQ(store_->ListByPrincipal("bob", 10)->size(), 1u);
  EXPECT_TRUE(store_->CreateMany({}).empty());
}

// The point of CreateMany: the store-picked entries are one write, so a
// sync_writes store syncs once for the batch, not once per entry.
TEST_F(SessionStoreTest, CreateManySyncsOnceForTheWholeBatch) {
  store_.reset();
  options_.sync_writes = true;
  OpenStore();
  constexpr int kEntries = 50;
  std::vector<CreateParams> batch(kEntries, CreateParams{"d", "", std::nullopt});
  const int64_t before = testing::FsyncCalls();
  std::vector<absl::StatusOr<SessionRecord>> r = store_->CreateMany(batch);
  const int64_t syncs = testing::FsyncCalls() - before;
  EXPECT_LE(syncs, 2) << syncs << " syncs for one batch of " << kEntries;
  ASSERT_EQ(r.size(), static_cast<size_t>(kEntries));
  for (const auto& e : r) ASSERT_TRUE(e.ok()) << e.status();
  Reopen();
  for (const auto& e : r) EXPECT_TRUE(store_->Get(e->id, false).ok());
  EXPECT_EQ(store_->Stats().sessions, kEntries);
}

TEST_F(SessionStoreTest, OpenOfDirOpenInThisProcessFailsClearly) {
  auto second = SessionStore::Open(options_, &clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(), options_.data_dir))
      << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(), "locked"))
      << second.status();
  // The first store is unaffected.
  EXPECT_TRUE(store_->Create(CreateParams{"x", "", std::nullopt}).ok());
}

TEST_F(SessionStoreTest, OpenOfDirLockedByAnotherProcessFailsClearly) {
  const std::string dir = options_.data_dir;
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();

  int go[2], ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  const std::string lock_path = dir + "/LOCK";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Child: take RocksDB's LOCK the way RocksDB does (fcntl write lock),
    // say so, and hold it until told to go. Async-signal-safe calls only.
    int fd = open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    char ok = (fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0) ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(2);
    char c;
    if (read(go[0], &c, 1) < 0) _exit(3);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');

  auto opened = SessionStore::Open(options_, &clock_);
  EXPECT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(opened.status().message(), dir))
      << opened.status();
  EXPECT_TRUE(absl::StrContains(opened.status().message(), "locked"))
      << opened.status();

  char c = 'g';
  ASSERT_EQ(write(go[1], &c, 1), 1);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  close(go[1]);
  close(ready[0]);

  // With the other process gone the store opens again.
  OpenStore();
  EXPECT_TRUE(store_ != nullptr);
}

TEST_F(SessionStoreTest, OpenOfCorruptDirFailsWithoutCrashing) {
  ScopedTempDir other;
  ASSERT_TRUE(other.ok());
  StoreOptions bad = options_;
  bad.data_dir = other.path();
  {
    std::ofstream current(other.path() + "/CURRENT");
    current << "garbage without a newline";
  }
  auto opened = SessionStore::Open(bad, &clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(opened.status().message(), bad.data_dir))
      << opened.status();
}

TEST_F(SessionStoreTest, OpenWithManifestGoneFailsWithoutCrashing) {
  MustCreate("x");
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  {
    std::ofstream current(options_.data_dir + "/CURRENT", std::ios::trunc);
    current << "MANIFEST-999999\n";
  }
  auto opened = SessionStore::Open(options_, &clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(opened.status().message(), options_.data_dir))
      << opened.status();
}

TEST_F(SessionStoreTest, OpenOfPathThatIsAFileFails) {
  const std::string file = tmp_.path() + "/plainfile";
  {
    std::ofstream f(file);
    f << "x";
  }
  StoreOptions bad = options_;
  bad.data_dir = file;
  auto opened = SessionStore::Open(bad, &clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(absl::StrContains(opened.status().message(), file))
      << opened.status();
}

// Root ignores directory permissions, so as root the test opens the store
// as an unprivileged user (keeping root as the saved id to switch back).
class ScopedUnprivileged {
 public:
  ScopedUnprivileged() {
    if (geteuid() != 0) return;
    active_ =
        setresgid(65534, 65534, 0) == 0 && setresuid(65534, 65534, 0) == 0;
  }
  ~ScopedUnprivileged() {
    if (!active_) return;
    if (setresuid(0, 0, 0) != 0 || setresgid(0, 0, 0) != 0) abort();
  }
  bool ok() const { return active_ || geteuid() != 0; }

 private:
  bool active_ = false;
};

TEST_F(SessionStoreTest, OpenOfUnreadableDirFailsClearly) {
  // No open store (and so no RocksDB work) while the credentials change.
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  ScopedTempDir other;
  ASSERT_TRUE(other.ok());
  // The parent is traversable by anyone; the data dir itself is closed.
  std::filesystem::permissions(other.path(),
                               std::filesystem::perms::owner_all |
                                   std::filesystem::perms::others_exec |
                                   std::filesystem::perms::group_exec);
  const std::string dir = other.path() + "/db";
  std::filesystem::create_directory(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::none);
  StoreOptions bad = options_;
  bad.data_dir = dir;
  absl::StatusOr<std::unique_ptr<SessionStore>> opened;
  {
    ScopedUnprivileged unprivileged;
    ASSERT_TRUE(unprivileged.ok());
    opened = SessionStore::Open(bad, &clock_);
  }
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kPermissionDenied)
      << opened.status();
  EXPECT_TRUE(absl::StrContains(opened.status().message(), dir))
      << opened.status();
}

TEST_F(SessionStoreTest, OpenRejectsInvalidOptions) {
  StoreOptions bad = options_;
  bad.data_dir = tmp_.path() + "/other";
  bad.default_ttl = bad.max_ttl + absl::Seconds(1);
  EXPECT_EQ(SessionStore::Open(bad, &clock_).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = options_;
  bad.data_dir = tmp_.path() + "/other";
  bad.touch_after = 1.5;
  EXPECT_EQ(SessionStore::Open(bad, &clock_).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.touch_after = 0.25;
  bad.data_dir.clear();
  EXPECT_EQ(SessionStore::Open(bad, &clock_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Stats ------------------------------------------------------------------

TEST_F(SessionStoreTest, StatsCountOperationsAndMemory) {
  SessionRecord a = MustCreate(std::string(500, 'a'), "alice");
  SessionRecord b = MustCreate("b");
  ASSERT_TRUE(store_->Get(a.id, false).ok());
  ASSERT_TRUE(store_->Get(b.id, false).ok());
  EXPECT_FALSE(store_->Get(NewSessionId(), false).ok());  // not a read
  ASSERT_TRUE(store_->Update(a.id, UpdateParams{.data = "a2"}).ok());
  ASSERT_TRUE(store_->Delete(b.id, std::nullopt).ok());

  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.creates, 2);
  EXPECT_EQ(stats.reads, 2);
  EXPECT_EQ(stats.writes, 1);
  EXPECT_EQ(stats.deletes, 1);
  EXPECT_EQ(stats.sessions, 1);
  EXPECT_EQ(stats.authenticated_sessions, 1);
  EXPECT_EQ(stats.anonymous_sessions, 0);
  EXPECT_GT(stats.memtable_bytes, 0);
  EXPECT_GT(stats.disk_bytes, 0);  // the live WAL
  // Memtables are charged to the block cache.
  EXPECT_GT(stats.block_cache_bytes, 0);

  ASSERT_TRUE(store_->CompactAll().ok());
  stats = store_->Stats();
  EXPECT_GT(stats.disk_bytes, 0);
  EXPECT_GT(stats.table_readers_bytes + stats.block_cache_bytes, 0);
}

// --- Concurrency ------------------------------------------------------------

TEST_F(SessionStoreTest, ConcurrentCasHasExactlyOneWinnerPerVersion) {
  SessionRecord r = MustCreate("0");
  constexpr int kThreads = 4;
  constexpr int kAttemptsPerThread = 200;
  absl::Mutex mu;
  std::map<Hlc, int> winners_by_base;  // guarded by mu
  std::atomic<int> wins{0}, conflicts{0}, errors{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        auto cur = store_->Get(r.id, false);
        if (!cur.ok()) {
          ++errors;
          continue;
        }
        const int n = std::stoi(cur->data);
        auto u = store_->Update(r.id,
                                UpdateParams{.data = std::to_string(n + 1),
                                             .expected_version = cur->version});
        if (u.ok()) {
          ++wins;
          absl::MutexLock lock(&mu);
          ++winners_by_base[cur->version];
        } else if (u.status().code() == absl::StatusCode::kFailedPrecondition) {
          ++conflicts;
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins + conflicts, kThreads * kAttemptsPerThread);
  for (const auto& [version, count] : winners_by_base) {
    EXPECT_EQ(count, 1) << "two updates won from one version";
  }
  // No lost update: the counter went up once per win.
  auto final = store_->Get(r.id, false);
  ASSERT_TRUE(final.ok());
  EXPECT_EQ(std::stoi(final->data), wins.load());
  EXPECT_GE(wins.load(), kAttemptsPerThread);  // at least one thread's worth
}

TEST_F(SessionStoreTest, ConcurrentWritesAndSweepsKeepCountsExact) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 150;
  std::atomic<bool> stop{false};
  std::thread sweeper([&] {
    while (!stop.load()) {
      auto swept = store_->SweepExpired();
      EXPECT_TRUE(swept.ok()) << swept.status();
    }
  });
  std::vector<std::thread> writers;
  std::atomic<int> kept{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool auth = (i % 2) == 0;
        auto r = store_->Create(CreateParams{
            "x", auth ? "user" + std::to_string(t) : "", absl::Minutes(1)});
        ASSERT_TRUE(r.ok());
        if (i % 3 == 0) {
          ASSERT_TRUE(store_->Delete(r->id, std::nullopt).ok());
        } else if (i % 3 == 1) {
          ASSERT_TRUE(
              store_->Update(r->id, UpdateParams{.principal = std::string()})
                  .ok());
          ++kept;
        } else {
          ++kept;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  sweeper.join();

  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.sessions, kept.load());
  RawCounts raw = Raw();
  EXPECT_EQ(raw.sessions, kept.load());
  // A final sweep recount agrees with the incremental counters.
  ASSERT_TRUE(store_->SweepExpired().ok());
  StoreStats after = store_->Stats();
  EXPECT_EQ(after.sessions, stats.sessions);
  EXPECT_EQ(after.authenticated_sessions, stats.authenticated_sessions);
  EXPECT_EQ(after.authenticated_sessions, raw.principal_entries);

  // Everything expires; sweeping removes exactly what was kept.
  clock_.Advance(absl::Minutes(1));
  auto removed = store_->SweepExpired();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, kept.load());
  EXPECT_EQ(store_->Stats().sessions, 0);
  RawCounts empty = Raw();
  EXPECT_EQ(empty.sessions, 0);
  EXPECT_EQ(empty.principal_entries, 0);
}

}  // namespace
}  // namespace sg::store
