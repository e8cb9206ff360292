// Compaction filter that drops values whose leading stamp (see
// record_codec.h) is at or before the time the compaction started.
#pragma once

#include <atomic>
#include <memory>

#include "common/clock.h"
#include "rocksdb/compaction_filter.h"

namespace sg::store {

// Creates one filter per compaction, each judging against the clock reading
// taken when the compaction began. Thread-safe.
//
// While paused (see Pause()), new filters keep everything. The sweeper pauses
// reclamation while it recounts sessions, so that no record vanishes between
// its snapshot and its deletes without being accounted for.
class ExpiryFilterFactory final : public rocksdb::CompactionFilterFactory {
 public:
  // `clock` must outlive the factory and every filter it made.
  explicit ExpiryFilterFactory(Clock* clock) : clock_(clock) {}

  // Pause()/Resume() nest; filters created while the count is > 0 keep all.
  void Pause() { paused_.fetch_add(1, std::memory_order_seq_cst); }
  void Resume() { paused_.fetch_sub(1, std::memory_order_seq_cst); }

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& context) override;
  const char* Name() const override { return "sg.ExpiryFilterFactory"; }

 private:
  Clock* const clock_;
  std::atomic<int> paused_{0};
};

}  // namespace sg::store
