#include "latency_histogram.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace sg::bench {
namespace {

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  for (uint64_t v = 0; v < 128; ++v) {
    const int i = LatencyHistogram::BucketIndex(v);
    EXPECT_EQ(LatencyHistogram::BucketLowest(i), v);
    EXPECT_EQ(LatencyHistogram::BucketHighest(i), v);
  }
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndWithinRelativeError) {
  uint64_t expected_low = 0;
  for (int i = 0; i < LatencyHistogram::kBucketCount; ++i) {
    const uint64_t low = LatencyHistogram::BucketLowest(i);
    const uint64_t high = LatencyHistogram::BucketHighest(i);
    ASSERT_EQ(low, expected_low) << "bucket " << i;
    ASSERT_LE(low, high);
    // Width at most 1/64 of the lower bound (HdrHistogram-like precision).
    ASSERT_LE((high - low) * 64, std::max<uint64_t>(low, 1)) << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::BucketIndex(low), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(high), i);
    expected_low = high + 1;
  }
  // Anything beyond the range lands in the top bucket.
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX),
            LatencyHistogram::kBucketCount - 1);
}

TEST(LatencyHistogramTest, QuantilesOfAUniformSpread) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) h.Record(v * 1000);  // 1us..100ms
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 100'000'000u);
  auto near = [](uint64_t got, double want) {
    return static_cast<double>(got) >= want &&
           static_cast<double>(got) <= want * (1 + 1.0 / 64);
  };
  EXPECT_TRUE(near(h.ValueAtQuantile(0.5), 50'000'000))
      << h.ValueAtQuantile(0.5);
  EXPECT_TRUE(near(h.ValueAtQuantile(0.99), 99'000'000))
      << h.ValueAtQuantile(0.99);
  EXPECT_TRUE(near(h.ValueAtQuantile(0.999), 99'900'000))
      << h.ValueAtQuantile(0.999);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100'000'000u);
  EXPECT_EQ(LatencyHistogram().ValueAtQuantile(0.5), 0u);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t v = rng() % 5'000'000;
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) {
    EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
  }
}

TEST(LatencyHistogramTest, OneSlowOutlierShowsOnlyInTheTail) {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.Record(100'000);
  h.Record(50'000'000);
  EXPECT_LE(h.ValueAtQuantile(0.99), 101'600u);
  EXPECT_EQ(h.ValueAtQuantile(0.9999), 50'000'000u);
}

}  // namespace
}  // namespace sg::bench
