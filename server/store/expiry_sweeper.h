// Runs SessionStore::SweepExpired() periodically on its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/session_store.h"

namespace sg::store {

// A pass reads every stored session (11 GB at 10 million of 1 KiB), so the
// pause before the next is the longer of `interval` and nine times what
// the last pass took: sweeps use at most a tenth of a core whatever the
// store's size. Expired sessions are never served meanwhile (reads check
// the expiry); the sweep only reclaims them and recounts.
absl::Duration PauseAfterSweep(absl::Duration interval, absl::Duration took);

// Sweeps, paced by PauseAfterSweep (real time), until Stop(). Thread-safe;
// the sweeper thread owns the calls to the store, everything else is
// guarded by mu_.
class ExpirySweeper final {
 public:
  // Called on the sweeper thread after every pass with its result.
  using PassCallback = std::function<void(const absl::StatusOr<int64_t>&)>;

  // Starts the thread; the first pass runs one interval from now (or at
  // SweepSoon(), which also cuts a pause short). `store` must outlive the
  // sweeper. `interval` > 0.
  ExpirySweeper(SessionStore* store, absl::Duration interval,
                PassCallback on_pass = nullptr);
  // Stops and joins.
  ~ExpirySweeper();
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  // Wakes the thread for a pass now instead of at the next interval.
  void SweepSoon();

  // Asks the thread to stop and joins it; a pass in progress finishes first.
  // Idempotent; safe to call from any thread but the sweeper's own.
  void Stop();

  // Completed passes, sessions they removed, and the last pass's status.
  int64_t passes() const;
  int64_t removed() const;
  absl::Status last_status() const;

 private:
  void Run();

  SessionStore* const store_;
  const absl::Duration interval_;
  const PassCallback on_pass_;

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool sweep_soon_ ABSL_GUARDED_BY(mu_) = false;
  int64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t removed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;  // serialises Stop() callers around the join
  std::thread thread_;
};

}  // namespace sg::store
