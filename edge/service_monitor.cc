#include "edge/service_monitor.h"

namespace sg::edge {

ServiceMonitor::ServiceMonitor(const client::Client* client,
                               absl::Duration interval)
    : client_(client), interval_(interval) {}

ServiceMonitor::~ServiceMonitor() { Stop(); }

void ServiceMonitor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ServiceMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::optional<int64_t> ServiceMonitor::active_sessions() const {
  const int64_t n = sessions_.load(std::memory_order_acquire);
  if (n < 0) return std::nullopt;
  return n;
}

void ServiceMonitor::Loop() {
  for (;;) {
    const absl::Time next = absl::Now() + interval_;
    auto stats = client_->NodeStats();
    if (stats.ok()) {
      sessions_.store(stats->stats().sessions(), std::memory_order_release);
      reachable_.store(true, std::memory_order_release);
    } else {
      reachable_.store(false, std::memory_order_release);
    }
    absl::MutexLock lock(&mu_);
    // Wakes early only to stop.
    mu_.AwaitWithDeadline(absl::Condition(&stop_), next);
    if (stop_) return;
  }
}

}  // namespace sg::edge
