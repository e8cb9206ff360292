// The seed's own JSON endpoints, answered by the edge on the main listener:
// GET /api/session-health (sessionHealthCheck in the seed's section 3.1) and
// GET /api/production-monitor/dashboard (section 3.2). Pure rendering.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace sg::edge {

// The numbers both endpoints show.
struct StatusSnapshot {
  uint64_t total_requests = 0;
  uint64_t skipped_requests = 0;
  // Bypass reasons with their counts (any order; rendering sorts).
  std::vector<std::pair<std::string, uint64_t>> skip_reasons;
  // Live sessions from the session service; nullopt until first known.
  std::optional<int64_t> active_sessions;
  int64_t max_sessions = 10000;
  // Process memory: RSS against a limit (cgroup, flag, or MemTotal).
  int64_t rss_bytes = 0;
  int64_t memory_limit_bytes = 0;
  double warning_threshold = 0.70;
  double critical_threshold = 0.85;
  double target_skip_ratio = 0.95;
  double uptime_seconds = 0;
  absl::Time start_time;
  // "environment", as the seed reported it.
  bool production = false;
  bool kubernetes = false;
  std::string hostname;
};

// Whether the seed would call this healthy: memory below critical.
bool IsHealthy(const StatusSnapshot& s);

// {"healthy":..,"metrics":{"totalRequests","skippedRequests","skipRatio":
//  "NN.NN%","targetSkipRatio":"95%","activeSessions","maxSessions"},
//  "memory":{"heapUsed":"x.xx MB","heapTotal":"x.xx MB","usage":"NN.NN%",
//  "warningThreshold":"70%","criticalThreshold":"85%"},"environment":{..},
//  "skipReasonStats":{top 10 reasons by count},"uptime":seconds}
std::string RenderSessionHealth(const StatusSnapshot& s);

// {"status":"operational","sessionMetrics":{"totalRequests",
//  "skippedRequests","sessionRequests","skipReasons":{all},"lastReset",
//  "memoryUsage","activeSessions","skipRatio"},"uptime":seconds,
//  "memory":{"rss","heapTotal","heapUsed","external","arrayBuffers"}}
std::string RenderDashboard(const StatusSnapshot& s);

// Appends `s` as a JSON string literal (quotes included).
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace sg::edge
