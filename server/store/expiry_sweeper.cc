#include "server/store/expiry_sweeper.h"

#include <algorithm>
#include <utility>

namespace sg::store {

absl::Duration PauseAfterSweep(absl::Duration interval, absl::Duration took) {
  constexpr int kPauseToPass = 9;
  return std::max(interval, took * kPauseToPass);
}

ExpirySweeper::ExpirySweeper(SessionStore* store, absl::Duration interval,
                             PassCallback on_pass)
    : store_(store), interval_(interval), on_pass_(std::move(on_pass)) {
  thread_ = std::thread([this] { Run(); });
}

ExpirySweeper::~ExpirySweeper() { Stop(); }

void ExpirySweeper::SweepSoon() {
  absl::MutexLock lock(&mu_);
  sweep_soon_ = true;
  wake_.Signal();
}

void ExpirySweeper::Stop() {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

int64_t ExpirySweeper::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

int64_t ExpirySweeper::removed() const {
  absl::MutexLock lock(&mu_);
  return removed_;
}

absl::Status ExpirySweeper::last_status() const {
  absl::MutexLock lock(&mu_);
  return last_status_;
}

void ExpirySweeper::Run() {
  absl::Duration pause = interval_;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Real time on purpose: the interval paces work, it is not a TTL.
      const absl::Time deadline = absl::Now() + pause;
      while (!stop_ && !sweep_soon_) {
        if (wake_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
      }
      if (stop_) return;
      sweep_soon_ = false;
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<int64_t> result = store_->SweepExpired();
    pause = PauseAfterSweep(interval_, absl::Now() - start);
    {
      absl::MutexLock lock(&mu_);
      ++passes_;
      if (result.ok()) removed_ += *result;
      last_status_ = result.status();
    }
    if (on_pass_) on_pass_(result);
  }
}

}  // namespace sg::store
