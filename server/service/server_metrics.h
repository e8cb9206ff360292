// The server's /metrics page (Prometheus text, prefix sg_server_): built
// from what NodeStats and ClusterStatus report, so the three views of a
// node cannot disagree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/service/rpc_metrics.h"
#include "sessiongrid/v1/admin.pb.h"

namespace sg::service {

// One scrape's inputs, gathered by the caller (NodeServer).
struct ServerMetricsSnapshot {
  // AdminServiceImpl::FillNodeStats.
  sessiongrid::v1::NodeStats node;
  // The governor's measured / limit (0 without a limit).
  double memory_pressure = 0;
  // Cluster nodes only: Cluster::FillStatus and the anti-entropy total.
  std::optional<sessiongrid::v1::ClusterStatusResponse> cluster;
  int64_t anti_entropy_repaired = 0;
};

// The numeric memory level: none 0, warn 1, critical 2, emergency 3
// (unknown names count as 0).
int MemoryLevelValue(std::string_view level_name);

// Renders `snapshot`, then `rpc`'s latency histograms when given.
// Thread-compatible (pure over its arguments; `rpc` is thread-safe).
std::string RenderServerMetrics(const ServerMetricsSnapshot& snapshot,
                                const RpcMetrics* rpc);

}  // namespace sg::service
