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
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (clock_->Now() < open_until_) return false;
      state_ = BreakerState::kHalfOpen;
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
  absl::MutexLock lock(&mu_);
  if (success) {
    consecutive_failures_ = 0;
    state_ = BreakerState::kClosed;
    probe_in_flight_ = false;
    return;
  }
  ++consecutive_failures_;
  if (state_ == BreakerState::kHalfOpen ||
      (state_ == BreakerState::kClosed &&
       consecutive_failures_ >= options_.failure_threshold)) {
    state_ = BreakerState::kOpen;
    open_until_ = clock_->Now() + options_.cooldown;
    probe_in_flight_ = false;
    ++opened_count_;
  }
  // Already open: a late failure of a call admitted before opening changes
  // nothing.
}

BreakerState CircuitBreaker::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
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
