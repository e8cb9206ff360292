// Hybrid logical clock: wall milliseconds + logical counter + node id.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace sg::store {

struct Hlc {
  int64_t wall_millis = 0;
  uint32_t logical = 0;
  std::string node_id;

  auto operator<=>(const Hlc&) const = default;
  bool operator==(const Hlc&) const = default;
  bool is_zero() const { return wall_millis == 0 && logical == 0; }
};

// Issues strictly increasing stamps for one node. Thread-safe.
class HlcClock final {
 public:
  HlcClock(Clock* clock, std::string node_id)
      : clock_(clock), node_id_(std::move(node_id)) {}

  Hlc Next() {
    int64_t wall = absl::ToUnixMillis(clock_->Now());
    absl::MutexLock lock(&mu_);
    if (wall > last_wall_) {
      last_wall_ = wall;
      logical_ = 0;
    } else {
      ++logical_;
    }
    return Hlc{last_wall_, logical_, node_id_};
  }

  // Moves the clock past a stamp seen from elsewhere (replication).
  void Observe(const Hlc& seen) {
    absl::MutexLock lock(&mu_);
    if (seen.wall_millis > last_wall_ ||
        (seen.wall_millis == last_wall_ && seen.logical > logical_)) {
      last_wall_ = seen.wall_millis;
      logical_ = seen.logical;
    }
  }

 private:
  Clock* clock_;
  const std::string node_id_;
  absl::Mutex mu_;
  int64_t last_wall_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t logical_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sg::store
