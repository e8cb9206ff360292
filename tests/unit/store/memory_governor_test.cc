// MemoryGovernor with a fake clock and a fake memory probe: levels,
// hysteresis, the actions of each level, and the disk and session caps;
// and the malloc tuning a budgeted node turns on.
#include "server/store/memory_governor.h"

#include <malloc.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/store/session_store.h"
#include "tests/unit/store/store_test_util.h"

namespace sg::store {
namespace {

using ::sg::store::testing::ScopedTempDir;

constexpr int64_t kLimit = int64_t{100} << 20;

// Reports whatever RSS the test sets.
class FakeProbe final : public MemoryProbe {
 public:
  void SetRss(double fraction_of_limit) {
    rss_.store(static_cast<int64_t>(fraction_of_limit * kLimit));
  }
  int64_t AnonymousRssBytes() override { return rss_.load(); }
  std::optional<int64_t> CgroupUsageBytes() override { return cgroup_usage; }
  std::optional<int64_t> CgroupLimitBytes() override { return cgroup_limit; }
  int64_t PhysicalMemoryBytes() override { return int64_t{8} << 30; }
  void ReleaseFreeMemory() override { trims.fetch_add(1); }

  std::optional<int64_t> cgroup_usage;
  std::optional<int64_t> cgroup_limit;
  std::atomic<int> trims{0};

 private:
  std::atomic<int64_t> rss_{0};
};

class MemoryGovernorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    store_options_.data_dir = tmp_.path() + "/db";
    store_options_.node_id = "n1";
    store_options_.default_ttl = absl::Hours(1);
    store_options_.block_cache_bytes = 8 << 20;
    store_options_.write_buffer_bytes = 2 << 20;
    store_options_.eviction_seed = 7;
    options_.memory_limit_bytes = kLimit;
  }

  void Open() {
    auto store = SessionStore::Open(store_options_, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ASSERT_TRUE(options_.Validate().ok()) << options_.Validate();
    governor_ = std::make_unique<MemoryGovernor>(
        options_, store_.get(), &probe_, &clock_,
        [this](MemoryLevel from, MemoryLevel to, const GovernorStats&) {
          transitions_.push_back(to);
        });
  }

  void TearDown() override {
    governor_.reset();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
  }

  // Sets RSS, lets a tick's worth of fake time pass, and runs one pass.
  MemoryLevel TickAt(double fraction) {
    probe_.SetRss(fraction);
    clock_.Advance(absl::Milliseconds(100));
    governor_->TickMemory();
    return governor_->level();
  }

  std::vector<std::string> CreateMany(int n, const std::string& principal = "",
                                      size_t bytes = 16) {
    std::vector<std::string> ids;
    std::string data(bytes, 'x');
    for (int i = 0; i < n; ++i) {
      clock_.Advance(absl::Milliseconds(10));
      if (bytes > 16) {
        for (char& c : data) c = static_cast<char>(rng_());
      }
      auto r = store_->Create(CreateParams{data, principal, std::nullopt});
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) ids.push_back(r->id);
    }
    return ids;
  }

  int CountExisting(const std::vector<std::string>& ids) {
    int n = 0;
    for (const std::string& id : ids) n += store_->Get(id, false).ok() ? 1 : 0;
    return n;
  }

  ScopedTempDir tmp_;
  FakeClock clock_;
  FakeProbe probe_;
  std::mt19937 rng_{1};
  StoreOptions store_options_;
  GovernorOptions options_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<MemoryGovernor> governor_;
  std::vector<MemoryLevel> transitions_;
};

TEST(NextMemoryLevelTest, RisesAtTheWatermarkAndFallsOnlyBelowTheHysteresis) {
  GovernorOptions o;  // 0.70 / 0.85 / 0.95, hysteresis 0.05
  using L = MemoryLevel;
  EXPECT_EQ(NextMemoryLevel(L::kNone, 0.69, o), L::kNone);
  EXPECT_EQ(NextMemoryLevel(L::kNone, 0.70, o), L::kWarn);
  EXPECT_EQ(NextMemoryLevel(L::kNone, 0.97, o), L::kEmergency);  // skips up
  EXPECT_EQ(NextMemoryLevel(L::kWarn, 0.66, o), L::kWarn);
  EXPECT_EQ(NextMemoryLevel(L::kWarn, 0.64, o), L::kNone);
  EXPECT_EQ(NextMemoryLevel(L::kEmergency, 0.91, o), L::kEmergency);
  EXPECT_EQ(NextMemoryLevel(L::kEmergency, 0.89, o), L::kCritical);
  EXPECT_EQ(NextMemoryLevel(L::kEmergency, 0.30, o), L::kNone);  // skips down
  EXPECT_EQ(NextMemoryLevel(L::kCritical, 0.86, o), L::kCritical);
}

TEST_F(MemoryGovernorTest, LevelsFollowPressureWithHysteresisAndReportEachChange) {
  Open();
  using L = MemoryLevel;
  EXPECT_EQ(TickAt(0.50), L::kNone);
  EXPECT_EQ(TickAt(0.72), L::kWarn);
  EXPECT_EQ(TickAt(0.68), L::kWarn);  // within the hysteresis band
  EXPECT_EQ(TickAt(0.71), L::kWarn);
  EXPECT_EQ(TickAt(0.86), L::kCritical);
  EXPECT_EQ(TickAt(0.83), L::kCritical);
  EXPECT_EQ(TickAt(0.96), L::kEmergency);
  EXPECT_EQ(TickAt(0.92), L::kEmergency);
  EXPECT_EQ(TickAt(0.88), L::kCritical);
  EXPECT_EQ(TickAt(0.60), L::kNone);
  EXPECT_EQ(transitions_, (std::vector<L>{L::kWarn, L::kCritical, L::kEmergency,
                                          L::kCritical, L::kNone}));
  GovernorStats s = governor_->Stats();
  EXPECT_EQ(s.level_changes, 5);
  EXPECT_EQ(s.limit_bytes, kLimit);
  EXPECT_NEAR(s.pressure, 0.60, 1e-6);
}

TEST_F(MemoryGovernorTest, EmergencyRefusesNewAnonymousSessionsOnly) {
  Open();
  std::vector<std::string> existing = CreateMany(3);
  ASSERT_EQ(TickAt(0.97), MemoryLevel::kEmergency);

  auto anon = store_->Create(CreateParams{"x", "", std::nullopt});
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store_->Create(CreateParams{"x", "erin", std::nullopt}).ok());

  // Below emergency (by more than the hysteresis) visitors get in again.
  ASSERT_EQ(TickAt(0.80), MemoryLevel::kCritical);
  EXPECT_TRUE(store_->Create(CreateParams{"x", "", std::nullopt}).ok());
}

TEST_F(MemoryGovernorTest, CriticalEvictsAnonymousBatchesAndSparesLogins) {
  Open();
  std::vector<std::string> auth = CreateMany(100, "user");
  std::vector<std::string> anon = CreateMany(300);
  ASSERT_EQ(TickAt(0.87), MemoryLevel::kCritical);  // first batch at once
  // The next batch waits for critical_evict_interval.
  TickAt(0.87);
  EXPECT_EQ(store_->Stats().evictions.total, options_.min_evict_batch);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(options_.critical_evict_interval);
    TickAt(0.87);
  }
  StoreStats s = store_->Stats();
  EXPECT_EQ(s.evictions.ByReason(EvictionReason::kMemory),
            4 * options_.min_evict_batch);
  EXPECT_EQ(s.evictions.ByClass(SessionClass::kAuthenticated), 0);
  EXPECT_EQ(CountExisting(auth), 100);
  EXPECT_EQ(CountExisting(anon), 300 - 4 * options_.min_evict_batch);
  EXPECT_EQ(governor_->Stats().memory_eviction_batches, 4);
}

TEST_F(MemoryGovernorTest, LoginsAreEvictedForMemoryOnlyInAnEmergency) {
  Open();
  std::vector<std::string> auth = CreateMany(200, "user");
  std::vector<std::string> anon = CreateMany(10);
  ASSERT_EQ(TickAt(0.90), MemoryLevel::kCritical);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(options_.critical_evict_interval);
    TickAt(0.90);
  }
  // Critical took every anonymous session and no login.
  EXPECT_EQ(CountExisting(anon), 0);
  EXPECT_EQ(CountExisting(auth), 200);

  ASSERT_EQ(TickAt(0.97), MemoryLevel::kEmergency);
  StoreStats s = store_->Stats();
  EXPECT_EQ(s.evictions.ByClass(SessionClass::kAnonymous), 10);
  EXPECT_EQ(s.evictions.ByClass(SessionClass::kAuthenticated),
            options_.min_evict_batch);
  EXPECT_EQ(CountExisting(auth), 200 - options_.min_evict_batch);
}

TEST_F(MemoryGovernorTest, NoEvictionBelowCritical) {
  Open();
  CreateMany(100);
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Seconds(1));
    TickAt(0.80);
  }
  EXPECT_EQ(governor_->level(), MemoryLevel::kWarn);
  EXPECT_EQ(store_->Stats().evictions.total, 0);
}

TEST_F(MemoryGovernorTest, WarnShrinksTheCacheFlushesAndTrimsThenNoneRestores) {
  Open();
  CreateMany(50);
  const int64_t planned = store_->MemoryUsage().block_cache_capacity_bytes;
  ASSERT_EQ(planned, 8 << 20);
  ASSERT_GT(store_->MemoryUsage().memtable_bytes, 0);

  ASSERT_EQ(TickAt(0.75), MemoryLevel::kWarn);
  EXPECT_EQ(store_->MemoryUsage().block_cache_capacity_bytes, planned / 2);
  EXPECT_EQ(probe_.trims.load(), 1);
  GovernorStats s = governor_->Stats();
  EXPECT_EQ(s.memtable_flushes, 1);
  ASSERT_TRUE(store_->FlushMemtables(/*wait=*/true).ok());

  // Repeated only at their intervals.
  TickAt(0.75);
  EXPECT_EQ(probe_.trims.load(), 1);
  clock_.Advance(options_.trim_interval);
  TickAt(0.75);
  EXPECT_EQ(probe_.trims.load(), 2);

  ASSERT_EQ(TickAt(0.86), MemoryLevel::kCritical);
  EXPECT_EQ(store_->MemoryUsage().block_cache_capacity_bytes, planned / 4);
  ASSERT_EQ(TickAt(0.96), MemoryLevel::kEmergency);
  EXPECT_EQ(store_->MemoryUsage().block_cache_capacity_bytes, planned / 10);

  ASSERT_EQ(TickAt(0.40), MemoryLevel::kNone);
  EXPECT_EQ(store_->MemoryUsage().block_cache_capacity_bytes, planned);
  EXPECT_FALSE(store_->refusing_anonymous_creates());
}

TEST_F(MemoryGovernorTest, PressureCountsWhatTheStoreHoldsWhenRssLags) {
  options_.memory_limit_bytes = 16 << 20;
  Open();
  CreateMany(400, "", 2048);  // memtables charged to the block cache
  probe_.SetRss(0);
  governor_->TickMemory();
  GovernorStats s = governor_->Stats();
  EXPECT_EQ(s.anon_rss_bytes, 0);
  EXPECT_GT(s.accounted_bytes, 800 * 1024);
  EXPECT_NEAR(s.pressure, static_cast<double>(s.accounted_bytes) / (16 << 20),
              1e-9);
}

TEST_F(MemoryGovernorTest, WithoutALimitNothingFires) {
  options_.memory_limit_bytes = 0;
  Open();
  CreateMany(10);
  probe_.SetRss(5.0);
  governor_->TickMemory();
  EXPECT_EQ(governor_->level(), MemoryLevel::kNone);
  EXPECT_EQ(governor_->Stats().pressure, 0);
}

TEST_F(MemoryGovernorTest, ReplicatedWritesAtMaxSessionsEvictOnArrival) {
  store_options_.max_sessions = 50;
  Open();
  std::vector<std::string> anon = CreateMany(50);
  // A replica at its cap makes room for each replicated new session.
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Milliseconds(10));
    SessionRecord r;
    r.id = NewSessionId();
    r.data = "r";
    r.create_time = r.last_access_time = clock_.Now();
    r.ttl = absl::Hours(1);
    r.expire_time = clock_.Now() + r.ttl;
    r.version = Hlc{absl::ToUnixMillis(clock_.Now()), 0, "n2"};
    ASSERT_TRUE(store_->ApplyReplicated(r).ok());
  }
  ASSERT_EQ(store_->session_count(), 50);
  ASSERT_TRUE(governor_->TickDisk().ok());
  EXPECT_EQ(store_->session_count(), 50);
  EXPECT_EQ(store_->Stats().evictions.ByReason(EvictionReason::kMaxSessions),
            20);
}

TEST_F(MemoryGovernorTest, DiskPassKeepsTheStoreUnderMaxDiskBytes) {
  options_.max_disk_bytes = 1 << 20;
  Open();
  std::vector<std::string> auth = CreateMany(50, "user", 1024);
  std::vector<std::string> anon = CreateMany(3000, "", 1024);
  ASSERT_TRUE(store_->FlushMemtables(/*wait=*/true).ok());
  ASSERT_GT(store_->DiskBytes(), 3 << 20);

  ASSERT_TRUE(governor_->TickDisk().ok());
  EXPECT_LE(store_->DiskBytes(), int64_t{1} << 20);
  StoreStats s = store_->Stats();
  EXPECT_GT(s.evictions.ByReason(EvictionReason::kMaxDisk), 2000);
  EXPECT_EQ(s.evictions.ByClass(SessionClass::kAuthenticated), 0);
  EXPECT_EQ(CountExisting(auth), 50);
  EXPECT_GE(governor_->Stats().disk_reclaims, 1);
}

TEST_F(MemoryGovernorTest, DiskPassReclaimsGarbageBeforeEvicting) {
  options_.max_disk_bytes = 2 << 20;
  Open();
  std::vector<std::string> anon = CreateMany(3000, "", 1024);
  ASSERT_TRUE(store_->FlushMemtables(/*wait=*/true).ok());
  for (size_t i = 0; i < 2500; ++i) {
    ASSERT_TRUE(store_->Delete(anon[i], std::nullopt).ok());
  }
  ASSERT_TRUE(store_->FlushMemtables(/*wait=*/true).ok());
  // RocksDB's own background compaction may reclaim the garbage first (it
  // races this test); either way the pass must not evict a live session.
  const int64_t before = store_->DiskBytes();
  ASSERT_TRUE(governor_->TickDisk().ok());
  EXPECT_LE(store_->DiskBytes(), 2 << 20);
  EXPECT_EQ(store_->Stats().evictions.total, 0);
  EXPECT_EQ(CountExisting({anon.begin() + 2500, anon.end()}), 500);
  if (before > (2 << 20)) {
    EXPECT_GE(governor_->Stats().disk_reclaims, 1);
  }
}

TEST(GovernorOptionsTest, ErrorsNameTheFieldOfTheFlag) {
  auto first_word = [](const GovernorOptions& o) {
    std::string m(o.Validate().message());
    return m.substr(0, m.find(' '));
  };
  GovernorOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.memory_warn = 1.2;
  EXPECT_EQ(first_word(o), "memory_warn");
  o = GovernorOptions{};
  o.memory_critical = 0.6;
  EXPECT_EQ(first_word(o), "memory_critical");
  o = GovernorOptions{};
  o.memory_emergency = 0.8;
  EXPECT_EQ(first_word(o), "memory_emergency");
  o = GovernorOptions{};
  o.memory_limit_bytes = 1 << 20;
  EXPECT_EQ(first_word(o), "memory_limit");
}

TEST(MemoryLimitTest, ParsesSizesAutoAndNone) {
  GovernorOptions o;
  ASSERT_TRUE(ParseMemoryLimit("256MiB", &o).ok());
  EXPECT_EQ(o.memory_limit_bytes, uint64_t{256} << 20);
  EXPECT_FALSE(o.memory_limit_auto);
  ASSERT_TRUE(ParseMemoryLimit("2GiB", &o).ok());
  EXPECT_EQ(o.memory_limit_bytes, uint64_t{2} << 30);
  ASSERT_TRUE(ParseMemoryLimit("auto", &o).ok());
  EXPECT_TRUE(o.memory_limit_auto);
  ASSERT_TRUE(ParseMemoryLimit("none", &o).ok());
  EXPECT_FALSE(o.memory_limit_auto);
  EXPECT_EQ(o.memory_limit_bytes, 0u);
  absl::Status bad = ParseMemoryLimit("lots", &o);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().substr(0, 13), "memory_limit ");
}

TEST(MemoryLimitTest, AutoUsesTheCgroupLimitOrSaysItFellBack) {
  FakeProbe probe;
  GovernorOptions o;
  o.memory_limit_auto = true;
  probe.cgroup_limit = int64_t{512} << 20;
  ResolvedMemoryLimit with_cgroup = ResolveMemoryLimit(o, &probe);
  // The budget judges anonymous memory: the mapped code gets its room.
  EXPECT_EQ(with_cgroup.bytes, uint64_t{480} << 20);
  EXPECT_EQ(with_cgroup.source, "cgroup v2 memory.max less 32 MiB for mapped code");
  probe.cgroup_limit = int64_t{40} << 20;
  EXPECT_EQ(ResolveMemoryLimit(o, &probe).bytes, uint64_t{20} << 20);

  probe.cgroup_limit.reset();
  ResolvedMemoryLimit fallback = ResolveMemoryLimit(o, &probe);
  EXPECT_EQ(fallback.bytes, uint64_t{8} << 30);
  EXPECT_NE(fallback.source.find("physical memory"), std::string::npos);

  o.memory_limit_auto = false;
  o.memory_limit_bytes = 300 << 20;
  EXPECT_EQ(ResolveMemoryLimit(o, &probe).bytes, uint64_t{300} << 20);
}

TEST_F(MemoryGovernorTest, ThreadsRunPassesUntilStopped) {
  options_.memory_interval = absl::Milliseconds(5);
  Open();
  absl::Notification warned;
  MemoryGovernor governor(options_, store_.get(), &probe_, &clock_,
                          [&](MemoryLevel, MemoryLevel to, const GovernorStats&) {
                            if (to == MemoryLevel::kWarn) warned.Notify();
                          });
  probe_.SetRss(0.75);
  governor.Start();
  ASSERT_TRUE(warned.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(governor.level(), MemoryLevel::kWarn);
  governor.Stop();
  governor.Stop();  // idempotent
}

// glibc's own allocator only: the sanitizers bring theirs.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// The compiler may not drop a malloc/free pair whose pointer escapes here.
void* Escaped(void* p) {
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

TEST(TuneMallocForBudgetTest, LargeBlocksStayMappingsAfterOneIsFreed) {
  TuneMallocForBudget(2);
  constexpr size_t kBlock = 1 << 20;  // a RocksDB memtable block
  // Untuned, freeing this one raises glibc's threshold above its size.
  free(Escaped(malloc(kBlock)));
  const size_t mapped_before = mallinfo2().hblkhd;
  void* block = Escaped(malloc(kBlock));
  const size_t mapped_during = mallinfo2().hblkhd;
  free(block);
  EXPECT_GE(mapped_during - mapped_before, kBlock);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before);  // unmapped when freed
}
#endif

}  // namespace
}  // namespace sg::store
