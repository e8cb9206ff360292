#include "edge/circuit_breaker.h"

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerTest()
      : breaker_({.failure_threshold = 3, .cooldown = absl::Seconds(2)},
                 &clock_) {}
  void Fail(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(breaker_.Allow());
      breaker_.Record(false);
    }
  }
  FakeClock clock_;
  CircuitBreaker breaker_;
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresOnly) {
  Fail(2);
  ASSERT_TRUE(breaker_.Allow());
  breaker_.Record(true);  // resets the streak
  Fail(2);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  Fail(1);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker_.opened_count(), 1);
  EXPECT_FALSE(breaker_.Allow());
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsOneProbeAfterCooldown) {
  Fail(3);
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_FALSE(breaker_.Allow());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(breaker_.Allow());  // the probe
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(breaker_.Allow());  // only one at a time
  breaker_.Record(true);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  EXPECT_TRUE(breaker_.Allow());
  breaker_.Record(true);
}

TEST_F(CircuitBreakerTest, FailedProbeReopensForAnotherCooldown) {
  Fail(3);
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(breaker_.Allow());
  breaker_.Record(false);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker_.opened_count(), 2);
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(breaker_.Allow());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(breaker_.Allow());
}

TEST_F(CircuitBreakerTest, LateFailuresWhileOpenDoNotExtendIt) {
  ASSERT_TRUE(breaker_.Allow());  // admitted before the breaker opened
  Fail(3);
  breaker_.Record(false);
  EXPECT_EQ(breaker_.opened_count(), 1);
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(breaker_.Allow());
}

TEST(CircuitBreakerStatusTest, OnlyServiceHealthErrorsCountAsFailures) {
  EXPECT_TRUE(CircuitBreaker::IsFailure(absl::UnavailableError("")));
  EXPECT_TRUE(CircuitBreaker::IsFailure(absl::DeadlineExceededError("")));
  EXPECT_TRUE(CircuitBreaker::IsFailure(absl::InternalError("")));
  EXPECT_FALSE(CircuitBreaker::IsFailure(absl::OkStatus()));
  EXPECT_FALSE(CircuitBreaker::IsFailure(absl::NotFoundError("")));
  EXPECT_FALSE(CircuitBreaker::IsFailure(absl::FailedPreconditionError("")));
  EXPECT_FALSE(CircuitBreaker::IsFailure(absl::InvalidArgumentError("")));
  EXPECT_FALSE(CircuitBreaker::IsFailure(absl::ResourceExhaustedError("")));
}

TEST(CircuitBreakerStatusTest, OptionsValidate) {
  EXPECT_TRUE(CircuitBreakerOptions{}.Validate().ok());
  EXPECT_FALSE((CircuitBreakerOptions{.failure_threshold = 0}).Validate().ok());
  EXPECT_FALSE((CircuitBreakerOptions{.cooldown = absl::ZeroDuration()})
                   .Validate()
                   .ok());
}

}  // namespace
}  // namespace sg::edge
