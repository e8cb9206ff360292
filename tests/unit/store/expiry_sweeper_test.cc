#include "server/store/expiry_sweeper.h"

#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/unit/store/store_test_util.h"

namespace sg::store {
namespace {

using ::sg::store::testing::ScopedTempDir;

class ExpirySweeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    StoreOptions options;
    options.data_dir = tmp_.path();
    options.block_cache_bytes = 4 << 20;
    options.write_buffer_bytes = 2 << 20;
    auto store = SessionStore::Open(options, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Records each pass; WaitForPasses blocks (without sleeping) until n, or
  // gives up after 30 s and says how many passes it saw.
  void OnPass(const absl::StatusOr<int64_t>& result) {
    absl::MutexLock lock(&mu_);
    ++passes_;
    if (result.ok()) removed_ += *result;
  }
  ::testing::AssertionResult WaitForPasses(int n) {
    absl::MutexLock lock(&mu_);
    target_ = n;
    if (mu_.AwaitWithTimeout(absl::Condition(this, &ExpirySweeperTest::Reached),
                             absl::Seconds(30))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << passes_ << " of " << n << " sweep passes within 30 s";
  }
  bool Reached() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return passes_ >= target_;
  }

  ScopedTempDir tmp_;
  FakeClock clock_;
  std::unique_ptr<SessionStore> store_;
  absl::Mutex mu_;
  int passes_ = 0;
  int64_t removed_ = 0;
  int target_ = 0;
};

TEST_F(ExpirySweeperTest, SweepSoonRemovesExpiredSessions) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store_->Create(CreateParams{"x", "alice", absl::Seconds(30)}).ok());
  }
  ASSERT_TRUE(store_->Create(CreateParams{"y", "", absl::Hours(1)}).ok());
  clock_.Advance(absl::Seconds(30));

  ExpirySweeper sweeper(store_.get(), absl::Hours(1),
                        [this](const auto& r) { OnPass(r); });
  sweeper.SweepSoon();
  ASSERT_TRUE(WaitForPasses(1));
  sweeper.Stop();
  EXPECT_GE(sweeper.passes(), 1);
  EXPECT_EQ(sweeper.removed(), 5);
  EXPECT_TRUE(sweeper.last_status().ok());
  EXPECT_EQ(store_->Stats().expirations, 5);
  EXPECT_EQ(store_->Stats().sessions, 1);
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(removed_, 5);
  }
}

TEST_F(ExpirySweeperTest, RunsEveryInterval) {
  ExpirySweeper sweeper(store_.get(), absl::Milliseconds(1),
                        [this](const auto& r) { OnPass(r); });
  ASSERT_TRUE(WaitForPasses(3));
  sweeper.Stop();
  const int64_t passes = sweeper.passes();
  EXPECT_GE(passes, 3);
  EXPECT_EQ(store_->Stats().sweeps, passes);
}

TEST(PauseAfterSweepTest, IsTheIntervalOrNineTimesThePass) {
  // Small stores: the interval.
  EXPECT_EQ(PauseAfterSweep(absl::Seconds(5), absl::Milliseconds(20)),
            absl::Seconds(5));
  // A pass over millions of sessions: nine times its length, so sweeping
  // takes a tenth of the time at most.
  EXPECT_EQ(PauseAfterSweep(absl::Seconds(5), absl::Seconds(40)),
            absl::Seconds(360));
  EXPECT_EQ(PauseAfterSweep(absl::Seconds(5), absl::Seconds(1)),
            absl::Seconds(9));
}

// Stop() on another thread, bounded: a Stop() that waits the interval out
// fails after 10 s, clearly, and SweepSoon() then releases the thread.
::testing::AssertionResult StopsWithin(ExpirySweeper* sweeper,
                                       absl::Duration bound) {
  absl::Notification stopped;
  std::thread stopper([&] {
    sweeper->Stop();
    stopped.Notify();
  });
  const bool in_time = stopped.WaitForNotificationWithTimeout(bound);
  if (!in_time) sweeper->SweepSoon();
  stopper.join();
  if (in_time) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "Stop() did not return within " << bound
         << ": it waits out the sweep interval";
}

TEST_F(ExpirySweeperTest, StopInterruptsALongWaitAndIsIdempotent) {
  ExpirySweeper sweeper(store_.get(), absl::Hours(24));
  EXPECT_TRUE(StopsWithin(&sweeper, absl::Seconds(10)));
  EXPECT_TRUE(StopsWithin(&sweeper, absl::Seconds(10)));
  // Joined without a pass.
  EXPECT_EQ(sweeper.passes(), 0);
  EXPECT_EQ(store_->Stats().sweeps, 0);
}

// The thread is back in its interval wait after a pass: Stop() must wake
// it rather than wait the interval out.
TEST_F(ExpirySweeperTest, StopInterruptsTheWaitAfterAPass) {
  ExpirySweeper sweeper(store_.get(), absl::Hours(24),
                        [this](const auto& r) { OnPass(r); });
  sweeper.SweepSoon();
  ASSERT_TRUE(WaitForPasses(1));
  EXPECT_TRUE(StopsWithin(&sweeper, absl::Seconds(10)));
  EXPECT_EQ(sweeper.passes(), 1);
}

TEST_F(ExpirySweeperTest, ReportsStoreErrors) {
  ExpirySweeper sweeper(store_.get(), absl::Hours(1),
                        [this](const auto& r) { OnPass(r); });
  ASSERT_TRUE(store_->Close().ok());
  sweeper.SweepSoon();
  ASSERT_TRUE(WaitForPasses(1));
  sweeper.Stop();
  EXPECT_EQ(sweeper.last_status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sg::store
