#include "server/store/expiry_compaction_filter.h"

#include <optional>
#include <string>

#include "server/store/record_codec.h"

namespace sg::store {
namespace {

class ExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryFilter(int64_t now_micros) : now_micros_(now_micros) {}

  Decision FilterV2(int /*level*/, const rocksdb::Slice& /*key*/,
                    ValueType value_type, const rocksdb::Slice& existing_value,
                    std::string* /*new_value*/,
                    std::string* /*skip_until*/) const override {
    if (value_type != ValueType::kValue) return Decision::kKeep;
    std::optional<int64_t> stamp = codec::PeekStamp(
        std::string_view(existing_value.data(), existing_value.size()));
    // A malformed value is kept so that reads report it instead of it
    // silently disappearing.
    if (stamp && *stamp <= now_micros_) return Decision::kRemove;
    return Decision::kKeep;
  }

  const char* Name() const override { return "sg.ExpiryFilter"; }

 private:
  const int64_t now_micros_;
};

class KeepAllFilter final : public rocksdb::CompactionFilter {
 public:
  Decision FilterV2(int, const rocksdb::Slice&, ValueType,
                    const rocksdb::Slice&, std::string*,
                    std::string*) const override {
    return Decision::kKeep;
  }
  const char* Name() const override { return "sg.KeepAllFilter"; }
};

}  // namespace

std::unique_ptr<rocksdb::CompactionFilter>
ExpiryFilterFactory::CreateCompactionFilter(
    const rocksdb::CompactionFilter::Context& /*context*/) {
  // Read the clock before checking the pause: a filter that saw no pause
  // then judges by a time no later than the sweeper's, which reads its clock
  // after pausing.
  const int64_t now = codec::TimeToStamp(clock_->Now());
  if (paused_.load(std::memory_order_seq_cst) > 0) {
    return std::make_unique<KeepAllFilter>();
  }
  return std::make_unique<ExpiryFilter>(now);
}

}  // namespace sg::store
