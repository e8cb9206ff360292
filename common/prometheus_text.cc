#include "common/prometheus_text.h"

#include <cinttypes>
#include <cstdio>
#include <utility>

namespace sg::prometheus {
namespace {

void AppendDouble(std::string* out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.9g", v);
  out->append(buf, static_cast<size_t>(n));
}

void AppendName(std::string* out, std::string_view name,
                std::string_view labels) {
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->append(" ");
}

}  // namespace

void AppendLabelValue(std::string* out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

std::string Label(std::string_view key, std::string_view value) {
  std::string out(key);
  out.append("=\"");
  AppendLabelValue(&out, value);
  out.append("\"");
  return out;
}

void AppendHeader(std::string* out, std::string_view name,
                  std::string_view type, std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, int64_t value) {
  AppendName(out, name, labels);
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%" PRId64, value);
  out->append(buf, static_cast<size_t>(n)).append("\n");
}

void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, uint64_t value) {
  AppendName(out, name, labels);
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%" PRIu64, value);
  out->append(buf, static_cast<size_t>(n)).append("\n");
}

void AppendSample(std::string* out, std::string_view name,
                  std::string_view labels, double value) {
  AppendName(out, name, labels);
  AppendDouble(out, value);
  out->append("\n");
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

std::vector<double> Histogram::DefaultBounds() {
  return {0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

void Histogram::Observe(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  sum_nanos_.fetch_add(nanos > 0 ? static_cast<uint64_t>(nanos) : 0,
                       std::memory_order_relaxed);
}

void Histogram::Render(std::string* out, std::string_view name,
                       std::string_view labels) const {
  uint64_t cumulative = 0;
  const std::string_view sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out->append(name).append("_bucket{").append(labels).append(sep);
    out->append("le=\"");
    if (i == bounds_.size()) {
      out->append("+Inf");
    } else {
      AppendDouble(out, bounds_[i]);
    }
    out->append("\"} ");
    char buf[24];
    const int n = std::snprintf(buf, sizeof(buf), "%" PRIu64, cumulative);
    out->append(buf, static_cast<size_t>(n)).append("\n");
  }
  AppendSample(
      out, std::string(name) + "_sum", labels,
      static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9);
  // The count is the bucket total, so _count and +Inf always agree.
  AppendSample(out, std::string(name) + "_count", labels, cumulative);
}

}  // namespace sg::prometheus
