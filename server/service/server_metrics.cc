#include "server/service/server_metrics.h"

#include <array>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/prometheus_text.h"
#include "server/store/eviction.h"

namespace sg::service {
namespace {

using prometheus::AppendHeader;
using prometheus::AppendSample;
using prometheus::Label;

void Gauge(std::string* out, std::string_view name, std::string_view help,
           int64_t value) {
  AppendHeader(out, name, "gauge", help);
  AppendSample(out, name, "", value);
}

void Counter(std::string* out, std::string_view name, std::string_view help,
             int64_t value) {
  AppendHeader(out, name, "counter", help);
  AppendSample(out, name, "", value);
}

constexpr std::array<std::string_view, 3> kPeerStates = {"alive", "suspect",
                                                         "dead"};

void RenderNode(std::string* out, const ServerMetricsSnapshot& s) {
  const sessiongrid::v1::NodeStats& n = s.node;
  AppendHeader(out, "sg_server_sessions", "gauge",
               "Live sessions stored on this node, by class.");
  AppendSample(out, "sg_server_sessions", Label("class", "anonymous"),
               n.anonymous_sessions());
  AppendSample(out, "sg_server_sessions", Label("class", "authenticated"),
               n.authenticated_sessions());
  Counter(out, "sg_server_creates_total",
          "Sessions this node began storing (creates and replicated writes "
          "of new ids).",
          n.creates());
  Counter(out, "sg_server_reads_total", "Reads that found a live session.",
          n.reads());
  Counter(out, "sg_server_writes_total",
          "Persisted changes to existing sessions.", n.writes());
  Counter(out, "sg_server_deletes_total", "Live sessions deleted.",
          n.deletes());
  Counter(out, "sg_server_expirations_total",
          "Sessions removed because their TTL passed.", n.expirations());
  Counter(out, "sg_server_sweeps_total", "Completed expiry sweeps.",
          n.sweeps());

  AppendHeader(out, "sg_server_evictions_total", "counter",
               "Sessions evicted, by reason and class.");
  for (int r = 0; r < store::kEvictionReasons; ++r) {
    const std::string_view reason =
        store::EvictionReasonName(static_cast<store::EvictionReason>(r));
    for (int k = 0; k < store::kSessionClasses; ++k) {
      const std::string_view cls =
          store::SessionClassName(static_cast<store::SessionClass>(k));
      const auto it = n.evictions_by_reason().find(
          absl::StrCat(std::string(reason), "/", std::string(cls)));
      const int64_t v = it == n.evictions_by_reason().end() ? 0 : it->second;
      AppendSample(
          out, "sg_server_evictions_total",
          absl::StrCat(Label("reason", reason), ",", Label("class", cls)), v);
    }
  }

  Gauge(out, "sg_server_memory_level",
        "Memory level: 0 none, 1 warn, 2 critical (evicting), 3 emergency "
        "(refusing anonymous creates).",
        MemoryLevelValue(n.memory_level()));
  AppendHeader(out, "sg_server_memory_pressure", "gauge",
               "Measured memory / --memory-limit (0 without a limit).");
  AppendSample(out, "sg_server_memory_pressure", "", s.memory_pressure);
  Gauge(out, "sg_server_memory_limit_bytes",
        "The memory budget in force (0: none).", n.memory().limit_bytes());
  AppendHeader(out, "sg_server_rocksdb_memory_bytes", "gauge",
               "RocksDB memory by part (memtables are charged to the block "
               "cache).");
  AppendSample(out, "sg_server_rocksdb_memory_bytes",
               Label("part", "block_cache"), n.memory().block_cache_bytes());
  AppendSample(out, "sg_server_rocksdb_memory_bytes", Label("part", "memtable"),
               n.memory().memtable_bytes());
  AppendSample(out, "sg_server_rocksdb_memory_bytes",
               Label("part", "table_readers"),
               n.memory().table_readers_bytes());
  Gauge(out, "sg_server_node_structures_bytes",
        "The node's own structures outside RocksDB.",
        n.memory().node_structures_bytes());
  Gauge(out, "sg_server_process_resident_memory_bytes",
        "Resident set size of the server process.",
        n.memory().process_rss_bytes());
  Gauge(out, "sg_server_cgroup_memory_bytes",
        "cgroup v2 memory.current (0 outside a limited cgroup).",
        n.memory().cgroup_usage_bytes());
  Gauge(out, "sg_server_disk_bytes",
        "Disk used by the store (SST files and WAL).", n.disk_bytes());
  AppendHeader(out, "sg_server_uptime_seconds", "gauge",
               "Seconds since start.");
  AppendSample(
      out, "sg_server_uptime_seconds", "",
      static_cast<double>(n.uptime().seconds()) + n.uptime().nanos() / 1e9);
}

void RenderCluster(std::string* out, const ServerMetricsSnapshot& s) {
  const sessiongrid::v1::ClusterStatusResponse& c = *s.cluster;
  const sessiongrid::v1::NodeStats& n = s.node;
  std::array<int64_t, kPeerStates.size()> peers{};
  for (const sessiongrid::v1::NodeStatus& node : c.nodes()) {
    if (node.self()) continue;
    const std::string state = absl::AsciiStrToLower(node.liveness());
    for (size_t i = 0; i < kPeerStates.size(); ++i) {
      if (state == kPeerStates[i]) ++peers[i];
    }
  }
  AppendHeader(out, "sg_server_peers", "gauge",
               "Other cluster members as this node's failure detector sees "
               "them, by state.");
  for (size_t i = 0; i < kPeerStates.size(); ++i) {
    AppendSample(out, "sg_server_peers", Label("state", kPeerStates[i]),
                 peers[i]);
  }
  Gauge(out, "sg_server_ranges_below_write_quorum",
        "Ring ranges with fewer than W live owners (writes to them fail).",
        c.ranges_below_write_quorum());
  Gauge(out, "sg_server_hints_pending",
        "Writes kept for owners that were down, not yet replayed.",
        n.hints_pending());
  Counter(out, "sg_server_hints_replayed_total",
          "Hinted writes delivered to their owner.", n.hints_replayed());
  Counter(out, "sg_server_anti_entropy_repaired_total",
          "Entries anti-entropy copied between replicas.",
          s.anti_entropy_repaired);
  AppendHeader(out, "sg_server_quorum_writes_total", "counter",
               "Coordinated writes, by whether W replicas acknowledged.");
  AppendSample(out, "sg_server_quorum_writes_total", Label("result", "acked"),
               n.quorum_writes());
  AppendSample(out, "sg_server_quorum_writes_total", Label("result", "failed"),
               n.quorum_write_failures());
  Counter(out, "sg_server_read_repairs_total",
          "Stale replicas repaired on reads.", n.read_repairs());
  Counter(out, "sg_server_coordinated_calls_total",
          "Calls about one id this node coordinated.", n.coordinated_calls());
  Counter(out, "sg_server_coordinated_calls_not_owner_total",
          "Coordinated calls about an id this node does not own (a hop a "
          "ring-aware client saves).",
          n.coordinated_calls_not_owner());
}

}  // namespace

int MemoryLevelValue(std::string_view level_name) {
  if (level_name == "warn") return 1;
  if (level_name == "critical") return 2;
  if (level_name == "emergency") return 3;
  return 0;
}

std::string RenderServerMetrics(const ServerMetricsSnapshot& snapshot,
                                const RpcMetrics* rpc) {
  std::string out;
  out.reserve(16 * 1024);
  RenderNode(&out, snapshot);
  if (snapshot.cluster.has_value()) RenderCluster(&out, snapshot);
  if (rpc != nullptr) rpc->Render(&out);
  return out;
}

}  // namespace sg::service
