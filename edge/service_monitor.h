// Polls the session service's NodeStats in the background, so the edge's
// JSON endpoints and readiness never wait on the service.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sessiongrid/client.h"

namespace sg::edge {

// Owns one thread that calls NodeStats every `interval` (at most once per
// interval) and caches the live-session count and whether the call
// succeeded. Thread-safe readers.
class ServiceMonitor final {
 public:
  // `client` must outlive the monitor.
  ServiceMonitor(const client::Client* client, absl::Duration interval);
  ~ServiceMonitor();  // stops and joins
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

  void Start();
  void Stop();

  // Live sessions of the node that answered the last successful poll.
  std::optional<int64_t> active_sessions() const;
  // Whether the last poll succeeded (false before the first one returns).
  bool reachable() const { return reachable_.load(std::memory_order_acquire); }

 private:
  void Loop();

  const client::Client* const client_;
  const absl::Duration interval_;
  std::atomic<bool> reachable_{false};
  std::atomic<int64_t> sessions_{-1};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sg::edge
