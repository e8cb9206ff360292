#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sg::bench {

int LatencyHistogram::BucketIndex(uint64_t value) {
  constexpr uint64_t kLargest = (uint64_t{1} << (kMaxBit + 1)) - 1;
  value = std::min(value, kLargest);
  if (value < kSubBuckets) return static_cast<int>(value);
  // For msb >= kSubBucketBits keep the kSubBucketBits bits below the msb.
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - kSubBucketBits;
  return (shift + 1) * kSubBuckets +
         static_cast<int>((value >> shift) - kSubBuckets);
}

uint64_t LatencyHistogram::BucketLowest(int index) {
  if (index < kSubBuckets) return static_cast<uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  const uint64_t sub = static_cast<uint64_t>(index % kSubBuckets) + kSubBuckets;
  return sub << shift;
}

uint64_t LatencyHistogram::BucketHighest(int index) {
  if (index < kSubBuckets) return static_cast<uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  return BucketLowest(index) + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  ++counts_[BucketIndex(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHighest(i), max_);
  }
  return max_;
}

}  // namespace sg::bench
