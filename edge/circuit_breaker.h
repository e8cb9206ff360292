// A consecutive-failure circuit breaker for calls to the session service,
// so a dead service costs one deadline per cool-down instead of one per
// request.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace sg::edge {

struct CircuitBreakerOptions {
  // Consecutive failures that open the breaker.
  int failure_threshold = 5;
  // How long an open breaker rejects calls before letting one probe through.
  absl::Duration cooldown = absl::Seconds(2);

  absl::Status Validate() const;
};

// States, as exported in metrics (sg_edge_circuit_breaker_state).
enum class BreakerState : uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
std::string_view BreakerStateName(BreakerState state);

// Closed: every call goes through; `failure_threshold` consecutive failures
// open it. Open: calls are rejected until `cooldown` has passed, then the
// breaker is half-open and admits exactly one probe call; the probe's
// success closes it, its failure re-opens it for another cooldown. While
// the probe is outstanding, other calls are rejected.
//
// Thread-safe. `clock` must outlive the breaker.
class CircuitBreaker final {
 public:
  CircuitBreaker(const CircuitBreakerOptions& options, const Clock* clock);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether a call may be made now. A true answer must be followed by
  // exactly one Record() for that call.
  bool Allow();
  // The outcome of an allowed call.
  void Record(bool success);

  BreakerState state() const;
  // Times the breaker went from closed (or half-open) to open.
  int64_t opened_count() const;

  // Whether a call's status means the service is unhealthy (as opposed to
  // an answer about the session, such as NOT_FOUND).
  static bool IsFailure(const absl::Status& status);

 private:
  const CircuitBreakerOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  // Written under mu_; read without it on the fast path (closed, no
  // failures), so a healthy service costs two atomic loads per call.
  std::atomic<BreakerState> state_{BreakerState::kClosed};
  std::atomic<int> consecutive_failures_{0};
  absl::Time open_until_ ABSL_GUARDED_BY(mu_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int64_t opened_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sg::edge
