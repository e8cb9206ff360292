// MergeListingPages: the members' scans of one ListSessions page, merged.
#include "server/replication/session_listing.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sg::replication {
namespace {

using store::ScanEntry;
using store::ScanPage;
using store::SessionRecord;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

ScanEntry Live(const std::string& id, int64_t version_ms = 1,
               absl::Duration left = absl::Hours(1), std::string data = "") {
  ScanEntry e;
  e.id = id;
  SessionRecord r;
  r.id = id;
  r.data = std::move(data);
  r.expire_time = kNow + left;
  r.version = store::Hlc{version_ms, 0, "n"};
  e.entry.session = r;
  return e;
}

ScanEntry Dead(const std::string& id) {
  ScanEntry e;
  e.id = id;
  e.entry.tombstone = store::TombstoneInfo{store::Hlc{99, 0, "n"}, kNow + absl::Hours(1)};
  return e;
}

MemberAnswer<ScanPage> Member(std::string node, std::vector<ScanEntry> entries,
                              std::string resume_after = "") {
  ScanPage page;
  page.entries = std::move(entries);
  page.more = !resume_after.empty();
  page.resume_after = std::move(resume_after);
  return {std::move(node), std::move(page)};
}

MemberAnswer<ScanPage> Failed(std::string node) {
  return {std::move(node), absl::UnavailableError("down")};
}

std::vector<std::string> Ids(const store::SessionPage& page) {
  std::vector<std::string> ids;
  for (const SessionRecord& r : page.sessions) ids.push_back(r.id);
  return ids;
}

TEST(MergeListingPagesTest, DedupesAcrossMembersInIdOrder) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("b1"), Live("d1")}));
  answers.push_back(Member("b", {Live("a1"), Live("b1"), Live("c1")}));
  answers.push_back(Member("c", {Live("a1"), Live("d1")}));
  auto page = MergeListingPages(std::move(answers), 10, 1, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a1", "b1", "c1", "d1"}));
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST(MergeListingPagesTest, NewestVersionWinsAndThenTheLaterExpiry) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("x", 5, absl::Hours(1), "new"),
                                 Live("y", 7, absl::Minutes(5), "short")}));
  answers.push_back(Member("b", {Live("x", 3, absl::Hours(2), "old"),
                                 Live("y", 7, absl::Hours(3), "slid")}));
  auto page = MergeListingPages(std::move(answers), 10, 1, kNow);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->sessions.size(), 2u);
  EXPECT_EQ(page->sessions[0].data, "new");
  EXPECT_EQ(page->sessions[1].data, "slid");
  EXPECT_EQ(page->sessions[1].expire_time, kNow + absl::Hours(3));
}

TEST(MergeListingPagesTest, ATombstoneAnywhereWins) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("x", 100), Live("y")}));  // missed the delete
  answers.push_back(Member("b", {Dead("x"), Live("y")}));
  auto page = MergeListingPages(std::move(answers), 10, 1, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), std::vector<std::string>{"y"});
}

TEST(MergeListingPagesTest, ExpiredAtTheCoordinatorIsDropped) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("x", 1, absl::Seconds(-1)), Live("y")}));
  auto page = MergeListingPages(std::move(answers), 10, 0, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), std::vector<std::string>{"y"});
}

TEST(MergeListingPagesTest, OnlyIdsUpToTheShortestTruncatedScanAreComplete) {
  // Member a stopped at "c" (its limit): what lies after "c" on a is
  // unseen, so b's "d" and "e" must wait for the next page, which starts
  // after "c".
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Dead("b"), Dead("c")}, "c"));
  answers.push_back(Member("b", {Live("a"), Live("d"), Live("e")}));
  auto page = MergeListingPages(std::move(answers), 10, 1, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), std::vector<std::string>{"a"});
  EXPECT_EQ(page->next_page_token, "c");
}

TEST(MergeListingPagesTest, AFullPageResumesAfterItsLastSession) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("a"), Live("b"), Live("c"), Live("d")}, "d"));
  answers.push_back(Member("b", {Live("b"), Live("c"), Live("e")}));
  auto page = MergeListingPages(std::move(answers), 2, 1, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(page->next_page_token, "b");
}

TEST(MergeListingPagesTest, AnExactlyFullLastPageHasNoToken) {
  std::vector<MemberAnswer<ScanPage>> answers;
  answers.push_back(Member("a", {Live("a"), Live("b")}));
  auto page = MergeListingPages(std::move(answers), 2, 0, kNow);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST(MergeListingPagesTest, MoreFailuresThanAllowedIsUnavailable) {
  std::vector<MemberAnswer<ScanPage>> one_down;
  one_down.push_back(Member("a", {Live("a")}));
  one_down.push_back(Failed("b"));
  one_down.push_back(Member("c", {Live("a")}));
  auto page = MergeListingPages(std::move(one_down), 10, 1, kNow);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Ids(*page), std::vector<std::string>{"a"});

  std::vector<MemberAnswer<ScanPage>> two_down;
  two_down.push_back(Member("a", {Live("a")}));
  two_down.push_back(Failed("b"));
  two_down.push_back(Failed("c"));
  page = MergeListingPages(std::move(two_down), 10, 1, kNow);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(page.status().message().find("b: down"), std::string::npos)
      << page.status();
}

}  // namespace
}  // namespace sg::replication
