// A log-linear latency histogram in the spirit of HdrHistogram: each power
// of two is split into 64 linear buckets, so a reported value is at most
// 1/64 (1.6 %) above the recorded one. Values are unsigned integers (the
// bench records nanoseconds); anything at or above 2^41 lands in the top
// bucket.
#pragma once

#include <array>
#include <cstdint>

namespace sg::bench {

// Not thread-safe: give each writer its own histogram and Merge() them once
// the writers have stopped. Recording never allocates.
class LatencyHistogram final {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  // Largest power of two tracked exactly (2^41 ns is about 36 minutes).
  static constexpr int kMaxBit = 40;
  static constexpr int kBucketCount =
      (kMaxBit - kSubBucketBits + 2) * kSubBuckets;

  // Adds one sample.
  void Record(uint64_t value);

  // Adds every sample of `other`.
  void Merge(const LatencyHistogram& other);

  // Number of samples recorded.
  uint64_t count() const { return count_; }
  // Exact smallest and largest sample; 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }

  // The value at quantile `q` in [0, 1]: the highest value equivalent to the
  // bucket holding the ceil(q * count)-th smallest sample, capped at max().
  // 0 when empty.
  uint64_t ValueAtQuantile(double q) const;

  // Bucket arithmetic, exposed for tests.
  static int BucketIndex(uint64_t value);
  static uint64_t BucketLowest(int index);
  static uint64_t BucketHighest(int index);

 private:
  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace sg::bench
