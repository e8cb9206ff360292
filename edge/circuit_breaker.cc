#include "edge/circuit_breaker.h"

namespace sg::edge {

absl::Status CircuitBreakerOptions::Validate() const {
  if (failure_threshold < 1) {
    return absl::InvalidArgumentError("failure_threshold must be >= 1");
  }
  if (cooldown <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("cooldown must be > 0");
  }
  return absl::OkStatus();
}

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(const CircuitBreakerOptions& options,
                               const Clock* clock)
    : options_(options), clock_(clock) {}

bool CircuitBreaker::Allow() {
  if (state_.load(std::memory_order_acquire) == BreakerState::kClosed) {
    return true;
  }
  absl::MutexLock lock(&mu_);
  switch (state_.load(std::memory_order_relaxed)) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (clock_->Now() < open_until_) return false;
      state_.store(BreakerState::kHalfOpen, std::memory_order_release);
      probe_in_flight_ = true;
      return true;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::Record(bool success) {
  if (success &&
      state_.load(std::memory_order_acquire) == BreakerState::kClosed &&
      consecutive_failures_.load(std::memory_order_relaxed) == 0) {
    return;
  }
  absl::MutexLock lock(&mu_);
  if (success) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    state_.store(BreakerState::kClosed, std::memory_order_release);
    probe_in_flight_ = false;
    return;
  }
  const int failures =
      consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  const BreakerState state = state_.load(std::memory_order_relaxed);
  if (state == BreakerState::kHalfOpen ||
      (state == BreakerState::kClosed &&
       failures >= options_.failure_threshold)) {
    state_.store(BreakerState::kOpen, std::memory_order_release);
    open_until_ = clock_->Now() + options_.cooldown;
    probe_in_flight_ = false;
    ++opened_count_;
  }
  // Already open: a late failure of a call admitted before opening changes
  // nothing.
}

BreakerState CircuitBreaker::state() const {
  return state_.load(std::memory_order_acquire);
}

int64_t CircuitBreaker::opened_count() const {
  absl::MutexLock lock(&mu_);
  return opened_count_;
}

bool CircuitBreaker::IsFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace sg::edge
