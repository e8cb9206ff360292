#include "edge/proxy/shared_state.h"

#include "common/process_memory.h"

namespace sg::edge::proxy {

bool Shared::ServiceKnownDown() const {
  return flow->breaker().state() == BreakerState::kOpen ||
         !monitor->reachable();
}

std::pair<bool, std::string_view> Shared::Ready() const {
  if (draining.load(std::memory_order_acquire)) return {false, "draining"};
  if (options.fail_mode == FailMode::kClosed && ServiceKnownDown()) {
    return {false, "session service unreachable (fail-closed)"};
  }
  return {true, "ready"};
}

MetricsGauges Shared::Gauges() const {
  MetricsGauges g;
  g.breaker_state = static_cast<int>(flow->breaker().state());
  g.breaker_opened = flow->breaker().opened_count();
  g.draining = draining.load(std::memory_order_relaxed);
  g.shadow = options.shadow;
  g.rss_bytes = ProcessRssBytes();
  g.uptime_seconds = absl::ToDoubleSeconds(absl::Now() - start_time);
  g.upstream_idle_connections = pool_idle.load(std::memory_order_relaxed);
  g.active_sessions = monitor->active_sessions();
  return g;
}

StatusSnapshot Shared::Snapshot() const {
  StatusSnapshot s;
  auto [total, skipped] = metrics->DecisionTotals();
  s.total_requests = total;
  s.skipped_requests = skipped;
  for (size_t i = 1; i < metrics->num_reasons(); ++i) {
    const uint64_t n = metrics->decisions(static_cast<uint16_t>(i));
    if (n > 0) {
      s.skip_reasons.emplace_back(
          std::string(metrics->reason_name(static_cast<uint16_t>(i))), n);
    }
  }
  s.active_sessions = monitor->active_sessions();
  s.max_sessions = options.max_sessions;
  s.rss_bytes = ProcessRssBytes();
  s.memory_limit_bytes = memory_limit;
  s.uptime_seconds = absl::ToDoubleSeconds(absl::Now() - start_time);
  s.start_time = start_time;
  s.production = options.production;
  s.kubernetes = kubernetes;
  s.hostname = hostname;
  return s;
}

}  // namespace sg::edge::proxy
