// SessionStore::ScanSessions: the key-ordered scan behind ListSessions.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/store/session_backend.h"
#include "server/store/session_store.h"
#include "tests/unit/store/store_test_util.h"

namespace sg::store {
namespace {

using ::sg::store::testing::ScopedTempDir;

class SessionScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    options_.data_dir = tmp_.path() + "/db";
    options_.node_id = "n1";
    options_.default_ttl = absl::Minutes(30);
    options_.max_ttl = absl::Hours(24);
    options_.block_cache_bytes = 8 << 20;
    options_.write_buffer_bytes = 4 << 20;
    auto store = SessionStore::Open(options_, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string MustCreate(std::string data,
                         std::optional<absl::Duration> ttl = std::nullopt) {
    auto r = store_->Create(CreateParams{std::move(data), "", ttl});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->id : "";
  }

  ScanPage MustScan(ScanOptions options) {
    auto page = store_->ScanSessions(options);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *std::move(page) : ScanPage{};
  }

  // Every id, paging `limit` at a time through the backend as the service
  // would; each page's ids in order, pages counted.
  std::vector<std::string> ListAll(size_t limit, int* pages) {
    LocalBackend backend(store_.get());
    std::vector<std::string> ids;
    std::string token;
    *pages = 0;
    for (int guard = 0; guard < 10000; ++guard) {
      absl::StatusOr<SessionPage> page;
      backend.ListSessions(token, limit, false,
                           [&](absl::StatusOr<SessionPage> p) { page = std::move(p); });
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      ++*pages;
      EXPECT_LE(page->sessions.size(), limit);
      for (const SessionRecord& r : page->sessions) ids.push_back(r.id);
      if (page->next_page_token.empty()) break;
      token = page->next_page_token;
    }
    return ids;
  }

  ScopedTempDir tmp_;
  FakeClock clock_;
  StoreOptions options_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(SessionScanTest, ReturnsLiveSessionsInIdOrderWithTheirData) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(MustCreate("d" + std::to_string(i)));
  std::sort(ids.begin(), ids.end());
  ScanPage page = MustScan({"", 100, true, false});
  ASSERT_EQ(page.entries.size(), ids.size());
  EXPECT_FALSE(page.more);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(page.entries[i].id, ids[i]);
    ASSERT_TRUE(page.entries[i].entry.session.has_value());
    EXPECT_EQ(page.entries[i].entry.session->data.substr(0, 1), "d");
  }
}

TEST_F(SessionScanTest, WithoutDataReturnsMetadataOnly) {
  std::string id = MustCreate("secret");
  ScanPage page = MustScan({"", 10, false, false});
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].id, id);
  EXPECT_TRUE(page.entries[0].entry.session->data.empty());
  EXPECT_GT(page.entries[0].entry.session->expire_time, clock_.Now());
}

TEST_F(SessionScanTest, SkipsExpiredAndDeletedSessions) {
  std::string short_lived = MustCreate("a", absl::Minutes(1));
  std::string deleted = MustCreate("b");
  std::string kept = MustCreate("c");
  ASSERT_TRUE(store_->Delete(deleted, std::nullopt).ok());
  clock_.Advance(absl::Minutes(2));  // short_lived expired, not yet swept
  ScanPage page = MustScan({"", 10, true, false});
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].id, kept);
  EXPECT_FALSE(page.more);
  (void)short_lived;
}

TEST_F(SessionScanTest, ReturnsTombstonesOnlyWhenAsked) {
  std::string a = MustCreate("a");
  std::string b = MustCreate("b");
  ASSERT_TRUE(store_->Delete(b, std::nullopt).ok());
  ScanPage page = MustScan({"", 10, true, true});
  ASSERT_EQ(page.entries.size(), 2u);
  std::set<std::string> live, dead;
  for (const ScanEntry& e : page.entries) {
    EXPECT_NE(e.entry.session.has_value(), e.entry.tombstone.has_value());
    (e.entry.session ? live : dead).insert(e.id);
  }
  EXPECT_EQ(live, std::set<std::string>{a});
  EXPECT_EQ(dead, std::set<std::string>{b});
  EXPECT_LT(page.entries[0].id, page.entries[1].id);  // one id order for both
  // A collectable tombstone is not returned.
  clock_.Advance(options_.tombstone_ttl + absl::Hours(1));
  page = MustScan({"", 10, true, true});
  EXPECT_TRUE(page.entries.empty());  // `a` expired too (30 min TTL)
}

TEST_F(SessionScanTest, PagesResumeAfterTheTokenAndListEachSessionOnce) {
  std::set<std::string> created;
  for (int i = 0; i < 57; ++i) created.insert(MustCreate("x"));
  int pages = 0;
  std::vector<std::string> ids = ListAll(10, &pages);
  EXPECT_EQ(pages, 6);  // 5 full pages, then 7
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), created);
  EXPECT_EQ(ids.size(), created.size());
}

TEST_F(SessionScanTest, TokenStaysValidAcrossWritesBetweenPages) {
  for (int i = 0; i < 30; ++i) MustCreate("x");
  LocalBackend backend(store_.get());
  absl::StatusOr<SessionPage> first;
  backend.ListSessions("", 10, false,
                       [&](absl::StatusOr<SessionPage> p) { first = std::move(p); });
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->sessions.size(), 10u);
  const std::string token = first->next_page_token;
  EXPECT_EQ(token, first->sessions.back().id);
  // The token's own session goes away, and others come and go.
  ASSERT_TRUE(store_->Delete(token, std::nullopt).ok());
  ASSERT_TRUE(store_->Delete(first->sessions[0].id, std::nullopt).ok());
  for (int i = 0; i < 5; ++i) MustCreate("y");
  absl::StatusOr<SessionPage> second;
  backend.ListSessions(token, 1000, false,
                       [&](absl::StatusOr<SessionPage> p) { second = std::move(p); });
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->next_page_token.empty());
  for (const SessionRecord& r : second->sessions) EXPECT_GT(r.id, token);
  // 20 old ones after the token, plus whichever new ones sort after it.
  EXPECT_GE(second->sessions.size(), 20u);
  EXPECT_LE(second->sessions.size(), 25u);
}

TEST_F(SessionScanTest, AnExactlyFullLastPageEndsTheListing) {
  for (int i = 0; i < 10; ++i) MustCreate("x");
  ScanPage page = MustScan({"", 10, false, false});
  EXPECT_EQ(page.entries.size(), 10u);
  EXPECT_FALSE(page.more);
  page = MustScan({"", 9, false, false});
  EXPECT_TRUE(page.more);
  EXPECT_EQ(page.resume_after, page.entries.back().id);
}

TEST_F(SessionScanTest, ZeroLimitIsInvalidArgument) {
  EXPECT_EQ(store_->ScanSessions({"", 0, false, false}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionScanTest, ExpiredRecordsBoundTheWorkOfOnePage) {
  // More expired records than one scan reads: the page comes back empty but
  // with a place to resume, and the next pages reach the live session.
  const size_t expired = kMaxScanExamined + 10;
  for (size_t i = 0; i < expired; ++i) MustCreate("", absl::Minutes(1));
  clock_.Advance(absl::Minutes(2));
  std::string live = MustCreate("live");
  ScanPage page = MustScan({"", 100, false, false});
  int calls = 1;
  std::vector<std::string> found;
  for (;;) {
    for (const ScanEntry& e : page.entries) found.push_back(e.id);
    if (!page.more) break;
    ASSERT_LT(calls, 10);
    page = MustScan({page.resume_after, 100, false, false});
    ++calls;
  }
  EXPECT_GE(calls, 2);
  EXPECT_EQ(found, std::vector<std::string>{live});
}

}  // namespace
}  // namespace sg::store
