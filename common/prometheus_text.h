// Pieces of the Prometheus text exposition format (version 0.0.4) shared
// by the edge's and the server's /metrics: escaping, HELP/TYPE headers,
// samples and a lock-free fixed-bucket histogram.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace sg::prometheus {

// Appends `value` escaped for a label value (\\, \", \n).
void AppendLabelValue(std::string* out, std::string_view value);

// `key="value"` with the value escaped.
std::string Label(std::string_view key, std::string_view value);

// "# HELP name help" and "# TYPE name type" lines.
void AppendHeader(std::string* out, std::string_view name,
                  std::string_view type, std::string_view help);

// "name{labels} value"; `labels` is empty or `key="value",...` without
// braces.
void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, int64_t value);
void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, uint64_t value);
void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, double value);

// A fixed-bucket latency histogram. Thread-safe and lock-free: an
// observation is three relaxed atomic adds.
class Histogram final {
 public:
  // Upper bounds in seconds, ascending (a +Inf bucket is implicit).
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(absl::Duration d);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  // Appends `name`_bucket/_sum/_count lines; `labels` is either empty or
  // `key="value",...` without braces. _count equals the +Inf bucket even
  // while observations race the rendering.
  void Render(std::string* out, std::string_view name,
              std::string_view labels) const;

  // The default latency buckets: 0.25 ms .. 10 s.
  static std::vector<double> DefaultBounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0};
};

}  // namespace sg::prometheus
