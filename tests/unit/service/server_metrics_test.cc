// The server's /metrics text: names the Helm chart's alerts query, label
// sets, TYPE lines, cluster series only on cluster nodes, and the RPC
// latency histograms.
#include "server/service/server_metrics.h"

#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "server/service/rpc_metrics.h"

namespace sg::service {
namespace {
namespace v1 = ::sessiongrid::v1;

ServerMetricsSnapshot NodeSnapshot() {
  ServerMetricsSnapshot s;
  v1::NodeStats& n = s.node;
  n.set_anonymous_sessions(7);
  n.set_authenticated_sessions(3);
  n.set_creates(12);
  n.set_reads(40);
  n.set_writes(5);
  n.set_deletes(2);
  n.set_expirations(1);
  n.set_disk_bytes(4096);
  n.set_memory_level("critical");
  (*n.mutable_evictions_by_reason())["memory"] = 4;
  (*n.mutable_evictions_by_reason())["memory/anonymous"] = 3;
  (*n.mutable_evictions_by_reason())["memory/authenticated"] = 1;
  n.mutable_memory()->set_block_cache_bytes(1000);
  n.mutable_memory()->set_memtable_bytes(200);
  n.mutable_memory()->set_table_readers_bytes(30);
  n.mutable_memory()->set_limit_bytes(1 << 20);
  n.set_hints_pending(9);
  n.mutable_uptime()->set_seconds(5);
  s.memory_pressure = 0.875;
  return s;
}

// Every line is a comment or "series value"; every series belongs to a
// family announced by a TYPE line before it.
void ExpectWellFormed(const std::string& text) {
  std::set<std::string> families;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      ASSERT_EQ(parts.size(), 4u) << line;
      EXPECT_TRUE(families.insert(parts[2]).second) << "duplicate " << line;
      continue;
    }
    if (absl::StartsWith(line, "# HELP ")) continue;
    ASSERT_FALSE(absl::StartsWith(line, "#")) << line;
    const size_t space = line.rfind(' ');
    ASSERT_NE(space, absl::string_view::npos) << line;
    std::string series(line.substr(0, space));
    std::string name = series.substr(0, series.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!families.count(name) && absl::EndsWith(name, suffix)) {
        name.resize(name.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(families.count(name)) << "no TYPE for " << line;
    EXPECT_TRUE(absl::StartsWith(name, "sg_server_")) << line;
  }
}

TEST(ServerMetricsTest, NodeSeriesCarryTheStatsValues) {
  const std::string text = RenderServerMetrics(NodeSnapshot(), nullptr);
  ExpectWellFormed(text);
  for (const char* line : {
           "sg_server_sessions{class=\"anonymous\"} 7\n",
           "sg_server_sessions{class=\"authenticated\"} 3\n",
           "sg_server_creates_total 12\n",
           "sg_server_reads_total 40\n",
           "sg_server_writes_total 5\n",
           "sg_server_deletes_total 2\n",
           "sg_server_expirations_total 1\n",
           "sg_server_evictions_total{reason=\"memory\",class=\"anonymous\"} "
           "3\n",
           "sg_server_evictions_total{reason=\"memory\",class="
           "\"authenticated\"} 1\n",
           "sg_server_evictions_total{reason=\"max_disk\",class=\"anonymous\"} "
           "0\n",
           "sg_server_memory_level 2\n",
           "sg_server_memory_pressure 0.875\n",
           "sg_server_memory_limit_bytes 1048576\n",
           "sg_server_rocksdb_memory_bytes{part=\"block_cache\"} 1000\n",
           "sg_server_rocksdb_memory_bytes{part=\"memtable\"} 200\n",
           "sg_server_rocksdb_memory_bytes{part=\"table_readers\"} 30\n",
           "sg_server_disk_bytes 4096\n",
           "sg_server_uptime_seconds 5\n",
           "# TYPE sg_server_creates_total counter\n",
           "# TYPE sg_server_memory_level gauge\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n" << text;
  }
  // Without a cluster there are no cluster series (not zeros that would
  // read as "no dead peers").
  EXPECT_FALSE(absl::StrContains(text, "sg_server_peers"));
  EXPECT_FALSE(absl::StrContains(text, "sg_server_hints_pending"));
  EXPECT_FALSE(absl::StrContains(text, "sg_server_rpc_duration_seconds"));
}

TEST(ServerMetricsTest, MemoryLevelsAreNumbered) {
  EXPECT_EQ(MemoryLevelValue("none"), 0);
  EXPECT_EQ(MemoryLevelValue("warn"), 1);
  EXPECT_EQ(MemoryLevelValue("critical"), 2);
  EXPECT_EQ(MemoryLevelValue("emergency"), 3);
  EXPECT_EQ(MemoryLevelValue("bogus"), 0);
}

TEST(ServerMetricsTest, ClusterSeriesCountPeersButNotSelf) {
  ServerMetricsSnapshot s = NodeSnapshot();
  v1::ClusterStatusResponse& c = s.cluster.emplace();
  for (const auto& [liveness, self] :
       std::vector<std::pair<std::string, bool>>{{"ALIVE", true},
                                                 {"ALIVE", false},
                                                 {"SUSPECT", false},
                                                 {"DEAD", false},
                                                 {"DEAD", false}}) {
    v1::NodeStatus* node = c.add_nodes();
    node->set_liveness(liveness);
    node->set_self(self);
  }
  c.set_ranges_below_write_quorum(6);
  s.anti_entropy_repaired = 11;
  s.node.set_quorum_writes(20);
  s.node.set_quorum_write_failures(2);
  const std::string text = RenderServerMetrics(s, nullptr);
  ExpectWellFormed(text);
  for (const char* line : {
           "sg_server_peers{state=\"alive\"} 1\n",
           "sg_server_peers{state=\"suspect\"} 1\n",
           "sg_server_peers{state=\"dead\"} 2\n",
           "sg_server_ranges_below_write_quorum 6\n",
           "sg_server_hints_pending 9\n",
           "sg_server_anti_entropy_repaired_total 11\n",
           "sg_server_quorum_writes_total{result=\"acked\"} 20\n",
           "sg_server_quorum_writes_total{result=\"failed\"} 2\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n" << text;
  }
}

TEST(RpcMetricsTest, HistogramsByMethodAndCodeOnlyOnceCalled) {
  RpcMetrics rpc({"/pkg.S/A", "/pkg.S/B"});
  rpc.Record("/pkg.S/A", 0, absl::Microseconds(300));
  rpc.Record("/pkg.S/A", 0, absl::Milliseconds(20));
  rpc.Record("/pkg.S/A", 5, absl::Milliseconds(2));
  rpc.Record("/elsewhere/X", 14, absl::Seconds(20));
  rpc.Record("/pkg.S/B", 99, absl::Milliseconds(1));  // out of range: UNKNOWN
  std::string text;
  rpc.Render(&text);
  const std::string full = RenderServerMetrics(NodeSnapshot(), &rpc);
  ExpectWellFormed(full);
  EXPECT_TRUE(absl::StrContains(full, text));
  for (const char* line : {
           "# TYPE sg_server_rpc_duration_seconds histogram\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"pkg.S/"
           "A\",code=\"OK\",le=\"0.00025\"} 0\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"pkg.S/"
           "A\",code=\"OK\",le=\"0.0005\"} 1\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"pkg.S/"
           "A\",code=\"OK\",le=\"0.025\"} 2\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"pkg.S/"
           "A\",code=\"OK\",le=\"+Inf\"} 2\n",
           "sg_server_rpc_duration_seconds_count{method=\"pkg.S/"
           "A\",code=\"OK\"} 2\n",
           "sg_server_rpc_duration_seconds_sum{method=\"pkg.S/A\",code=\"OK\"} "
           "0.0203\n",
           "sg_server_rpc_duration_seconds_count{method=\"pkg.S/"
           "A\",code=\"NOT_FOUND\"} 1\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"other\",code="
           "\"UNAVAILABLE\",le=\"10\"} 0\n",
           "sg_server_rpc_duration_seconds_bucket{method=\"other\",code="
           "\"UNAVAILABLE\",le=\"+Inf\"} 1\n",
           "sg_server_rpc_duration_seconds_count{method=\"pkg.S/"
           "B\",code=\"UNKNOWN\"} 1\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n" << text;
  }
  EXPECT_FALSE(absl::StrContains(text, "method=\"pkg.S/B\",code=\"OK\""));
}

TEST(RpcMetricsTest, NodeMethodsNameEveryServedService) {
  const std::vector<std::string> methods = RpcMetrics::NodeMethods();
  auto has = [&](std::string_view m) {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
  };
  EXPECT_TRUE(has("/sessiongrid.v1.SessionService/Create"));
  EXPECT_TRUE(has("/sessiongrid.v1.SessionService/BatchGet"));
  EXPECT_TRUE(has("/sessiongrid.v1.AdminService/ClusterStatus"));
  EXPECT_TRUE(has("/grpc.health.v1.Health/Check"));
}

}  // namespace
}  // namespace sg::service
