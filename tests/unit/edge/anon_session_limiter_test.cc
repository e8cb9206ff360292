// The anonymous session limit's bucket table, on a fake clock. Its own
// binary: a counting operator new proves the table never allocates after
// Create(), whatever the number of clients.
#include "edge/anon_session_limiter.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "gtest/gtest.h"

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace sg::edge {
namespace {

using classifier::IpAddress;

IpAddress Ip(const std::string& text) {
  auto ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress{});
}

class AnonSessionLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<AnonSessionLimiter> Make(double rate, double burst,
                                           size_t slots = 1024) {
    AnonSessionLimiterOptions o;
    o.rate = rate;
    o.burst = burst;
    o.slots = slots;
    o.seed = 42;
    auto l = AnonSessionLimiter::Create(o, &clock_);
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *std::move(l) : nullptr;
  }
  // How many Acquire()s in a row succeed (bounded).
  static int Drain(AnonSessionLimiter& l, const IpAddress& ip) {
    int n = 0;
    while (n < 100000 && l.Acquire(ip).allowed) ++n;
    return n;
  }
  FakeClock clock_;
};

TEST_F(AnonSessionLimiterTest, BurstThenDeniedWithRetryAfter) {
  auto l = Make(/*rate=*/0.5, /*burst=*/5);
  const IpAddress a = Ip("203.0.113.7");
  EXPECT_EQ(Drain(*l, a), 5);
  const AnonSessionLimiter::Verdict v = l->Acquire(a);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after, absl::Seconds(2));  // one token at 0.5/s
}

TEST_F(AnonSessionLimiterTest, RefillsAtTheRateUpToTheBurst) {
  auto l = Make(/*rate=*/10, /*burst=*/20);
  const IpAddress a = Ip("203.0.113.7");
  EXPECT_EQ(Drain(*l, a), 20);
  clock_.Advance(absl::Milliseconds(500));  // 5 tokens
  EXPECT_EQ(Drain(*l, a), 5);
  clock_.Advance(absl::Milliseconds(99));  // 0.99 of a token
  EXPECT_FALSE(l->Acquire(a).allowed);
  clock_.Advance(absl::Milliseconds(2));
  EXPECT_TRUE(l->Acquire(a).allowed);
  clock_.Advance(absl::Hours(1));  // capped at the burst
  EXPECT_EQ(Drain(*l, a), 20);
}

TEST_F(AnonSessionLimiterTest, ClockSteppingBackDoesNotRefill) {
  auto l = Make(/*rate=*/1, /*burst=*/2);
  const IpAddress a = Ip("203.0.113.7");
  EXPECT_EQ(Drain(*l, a), 2);
  clock_.Advance(-absl::Hours(1));
  EXPECT_FALSE(l->Acquire(a).allowed);
  clock_.Advance(absl::Hours(1));  // back where it was: still empty
  EXPECT_FALSE(l->Acquire(a).allowed);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(l->Acquire(a).allowed);
}

TEST_F(AnonSessionLimiterTest, ClientsHaveTheirOwnBuckets) {
  auto l = Make(/*rate=*/1, /*burst=*/3);
  EXPECT_EQ(Drain(*l, Ip("203.0.113.7")), 3);
  EXPECT_EQ(Drain(*l, Ip("203.0.113.8")), 3);
  // IPv4-mapped IPv6 is the same client as the IPv4 address.
  EXPECT_FALSE(l->Acquire(Ip("::ffff:203.0.113.7")).allowed);
}

TEST_F(AnonSessionLimiterTest, Ipv6IsGroupedBySlash64) {
  auto l = Make(/*rate=*/1, /*burst=*/4);
  EXPECT_TRUE(l->Acquire(Ip("2001:db8:1:2::1")).allowed);
  EXPECT_TRUE(l->Acquire(Ip("2001:db8:1:2::2")).allowed);
  EXPECT_TRUE(l->Acquire(Ip("2001:db8:1:2:ffff:ffff:ffff:ffff")).allowed);
  EXPECT_TRUE(l->Acquire(Ip("2001:db8:1:2:abcd::9")).allowed);
  EXPECT_FALSE(l->Acquire(Ip("2001:db8:1:2::77")).allowed);  // same /64
  EXPECT_TRUE(l->Acquire(Ip("2001:db8:1:3::1")).allowed);    // next /64
  EXPECT_EQ(ClientKey::Of(Ip("2001:db8:1:2::1")),
            ClientKey::Of(Ip("2001:db8:1:2:9::1")));
  EXPECT_FALSE(ClientKey::Of(Ip("10.0.0.1")) == ClientKey::Of(Ip("10.0.0.2")));
}

TEST_F(AnonSessionLimiterTest, TableStaysBoundedWithAMillionClients) {
  constexpr size_t kSlots = 1 << 16;
  auto l = Make(/*rate=*/1, /*burst=*/2, kSlots);
  const size_t bytes = l->table_bytes();
  EXPECT_LE(bytes, kSlots * 40);  // ~32 bytes a slot plus a mutex a set
  const int64_t before = g_allocations.load();
  for (uint32_t i = 0; i < 1'000'000; ++i) {
    // Distinct IPv4 clients, and distinct IPv6 /64s.
    ASSERT_TRUE(l->Acquire(IpAddress::FromV4(0x0a000000u + i)).allowed);
    IpAddress v6{};
    v6.bytes[0] = 0x20;
    v6.bytes[1] = 0x01;
    v6.bytes[4] = static_cast<uint8_t>(i >> 16);
    v6.bytes[5] = static_cast<uint8_t>(i >> 8);
    v6.bytes[6] = static_cast<uint8_t>(i);
    ASSERT_TRUE(l->Acquire(v6).allowed);
    if (i % 4096 == 0) clock_.Advance(absl::Milliseconds(1));
  }
  EXPECT_EQ(g_allocations.load(), before) << "Acquire allocated";
  EXPECT_EQ(l->table_bytes(), bytes);
  EXPECT_LE(l->tracked(), kSlots);
  EXPECT_GT(l->tracked(), kSlots * 9 / 10);  // the table is used, not one set
}

TEST_F(AnonSessionLimiterTest, EvictionForgetsTheLeastRecentlyUsedClient) {
  // 4 slots: one set. A fifth client evicts the stalest one, which then
  // starts again with a full burst; the others keep their state.
  auto l = Make(/*rate=*/0.001, /*burst=*/1, /*slots=*/4);
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(l->Acquire(IpAddress::FromV4(i)).allowed);
    clock_.Advance(absl::Milliseconds(1));
  }
  ASSERT_TRUE(l->Acquire(IpAddress::FromV4(5)).allowed);  // evicts client 1
  EXPECT_EQ(l->tracked(), 4u);
  EXPECT_FALSE(l->Acquire(IpAddress::FromV4(4)).allowed);
  EXPECT_TRUE(l->Acquire(IpAddress::FromV4(1)).allowed);  // forgotten
}

TEST_F(AnonSessionLimiterTest, RateZeroIsOff) {
  auto l = Make(/*rate=*/0, /*burst=*/1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(l->Acquire(Ip("203.0.113.7")).allowed);
  }
}

TEST(AnonSessionLimiterOptionsTest, ValidateNamesTheFlag) {
  AnonSessionLimiterOptions o;
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_TRUE(o.enabled());
  o.rate = -1;
  EXPECT_EQ(o.Validate().message().substr(0, 17), "anon_session_rate");
  o.rate = 1;
  o.burst = 0.5;
  EXPECT_EQ(o.Validate().message().substr(0, 18), "anon_session_burst");
  o.burst = 1;
  o.slots = 1000;  // not a power of two
  EXPECT_EQ(o.Validate().message().substr(0, 24), "anon_session_table_slots");
  o.slots = 2;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(OverLimitActionTest, ParsesBothNames) {
  EXPECT_EQ(*ParseOverLimitAction("proxy"), OverLimitAction::kProxy);
  EXPECT_EQ(*ParseOverLimitAction("reject"), OverLimitAction::kReject);
  EXPECT_FALSE(ParseOverLimitAction("drop").ok());
  EXPECT_EQ(OverLimitActionName(OverLimitAction::kReject), "reject");
}

}  // namespace
}  // namespace sg::edge
