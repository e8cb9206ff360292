// The server's /metrics (--metrics-listen) as Prometheus scrapes it: the
// real binary, a plain HTTP/1.1 client over loopback, counters that move
// with the RPCs made, latency histograms by method and code, and a
// three-node cluster's peers by state.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace v1 = ::sessiongrid::v1;
using testutil::Subprocess;
using testutil::TestCluster;

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// One GET on a fresh connection ("Connection: close": the body ends at EOF
// and must match Content-Length).
std::optional<HttpReply> HttpGet(const std::string& host_port,
                                 const std::string& target) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port)) {
    return std::nullopt;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string request =
      absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ", host_port,
                   "\r\nConnection: close\r\n\r\n");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string raw;
  char buf[16384];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
    raw.append(buf, n);
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.size() < 12) return std::nullopt;
  HttpReply reply;
  reply.head = raw.substr(0, end);
  reply.body = raw.substr(end + 4);
  if (!absl::SimpleAtoi(raw.substr(9, 3), &reply.status)) return std::nullopt;
  return reply;
}

// The value of the sample whose line is exactly `series` then a space.
std::optional<double> Sample(const std::string& text,
                             const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && absl::StartsWith(line, series) &&
        line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return std::nullopt;
}

std::string Scrape(const std::string& address) {
  std::optional<HttpReply> r = HttpGet(address, "/metrics");
  EXPECT_TRUE(r.has_value()) << address;
  if (!r) return "";
  EXPECT_EQ(r->status, 200);
  return r->body;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-metrics"); }
  void TearDown() override { testutil::RemoveTree(dir_); }

  // Starts the server; sets address_ and metrics_ from its listening line.
  std::unique_ptr<Subprocess> StartServer(std::vector<std::string> extra) {
    std::vector<std::string> argv = {SG_SERVER_BIN, "--listen=127.0.0.1:0",
                                     "--data-dir=" + dir_ + "/data"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto server = Subprocess::Start(argv);
    EXPECT_TRUE(server.ok());
    if (!server.ok()) return nullptr;
    auto line = (*server)->WaitForLine("msg=listening", absl::Seconds(30));
    EXPECT_TRUE(line.has_value()) << (*server)->Output();
    address_ = line ? testutil::FieldFromLogLine(*line, "address") : "";
    metrics_ = line ? testutil::FieldFromLogLine(*line, "metrics") : "";
    return *std::move(server);
  }

  std::string dir_;
  std::string address_;
  std::string metrics_;
};

TEST_F(MetricsTest, CountersAndLatencyHistogramsFollowTheRpcs) {
  auto server = StartServer({"--metrics-listen=127.0.0.1:0"});
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(absl::StartsWith(metrics_, "127.0.0.1:")) << server->Output();
  ASSERT_NE(metrics_, "127.0.0.1:0");

  const std::string before = Scrape(metrics_);
  EXPECT_EQ(Sample(before, "sg_server_creates_total"), 0);
  EXPECT_EQ(Sample(before, "sg_server_sessions{class=\"anonymous\"}"), 0);
  EXPECT_TRUE(absl::StrContains(
      before, "# TYPE sg_server_rpc_duration_seconds histogram"));

  auto stub = v1::SessionService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data("payload");
    if (i == 0) req.set_principal("alice");
    v1::CreateResponse resp;
    ASSERT_TRUE(stub->Create(&ctx, req, &resp).ok());
    ids.push_back(resp.session().id());
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(ids[1]);
    v1::GetResponse resp;
    ASSERT_TRUE(stub->Get(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteRequest req;
    req.set_id(ids[2]);
    v1::DeleteResponse resp;
    ASSERT_TRUE(stub->Delete(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_id(ids[2]);
    v1::GetResponse resp;
    EXPECT_EQ(stub->Get(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  const std::string after = Scrape(metrics_);
  EXPECT_EQ(Sample(after, "sg_server_creates_total"), 3) << after;
  EXPECT_EQ(Sample(after, "sg_server_reads_total"), 1);
  EXPECT_EQ(Sample(after, "sg_server_deletes_total"), 1);
  EXPECT_EQ(Sample(after, "sg_server_sessions{class=\"anonymous\"}"), 1);
  EXPECT_EQ(Sample(after, "sg_server_sessions{class=\"authenticated\"}"), 1);
  EXPECT_EQ(Sample(after, "sg_server_memory_level"), 0);
  EXPECT_EQ(
      Sample(
          after,
          "sg_server_evictions_total{reason=\"memory\",class=\"anonymous\"}"),
      0);
  EXPECT_GT(Sample(after, "sg_server_disk_bytes").value_or(0), 0);
  EXPECT_GT(
      Sample(after, "sg_server_process_resident_memory_bytes").value_or(0), 0);
  EXPECT_TRUE(
      Sample(after, "sg_server_rocksdb_memory_bytes{part=\"memtable\"}"));

  const std::string kCreate =
      "method=\"sessiongrid.v1.SessionService/Create\",code=\"OK\"";
  EXPECT_EQ(Sample(after, absl::StrCat("sg_server_rpc_duration_seconds_count{",
                                       kCreate, "}")),
            3);
  EXPECT_EQ(Sample(after, absl::StrCat("sg_server_rpc_duration_seconds_bucket{",
                                       kCreate, ",le=\"+Inf\"}")),
            3);
  EXPECT_TRUE(
      Sample(after, absl::StrCat("sg_server_rpc_duration_seconds_bucket{",
                                 kCreate, ",le=\"0.001\"}")));
  EXPECT_GT(Sample(after, absl::StrCat("sg_server_rpc_duration_seconds_sum{",
                                       kCreate, "}"))
                .value_or(0),
            0);
  EXPECT_EQ(
      Sample(after,
             "sg_server_rpc_duration_seconds_count{method=\"sessiongrid.v1."
             "SessionService/Get\",code=\"NOT_FOUND\"}"),
      1);
  EXPECT_EQ(
      Sample(after,
             "sg_server_rpc_duration_seconds_count{method=\"sessiongrid.v1."
             "SessionService/Get\",code=\"OK\"}"),
      1);
  // A single node has no cluster series.
  EXPECT_FALSE(absl::StrContains(after, "sg_server_peers"));

  std::optional<HttpReply> head = HttpGet(metrics_, "/metrics?x=1");
  ASSERT_TRUE(head.has_value());
  EXPECT_TRUE(absl::StrContains(
      head->head, "Content-Type: text/plain; version=0.0.4; charset=utf-8"))
      << head->head;
  std::optional<HttpReply> missing = HttpGet(metrics_, "/nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0) << server->Output();
}

// The plain-HTTP probes on the metrics port (what the chart's probes use
// when the gRPC port is TLS only) follow gRPC health: a cluster node that
// knows too few members to reach W is alive but not ready, then ready once
// its peers are up.
TEST_F(MetricsTest, HttpProbesFollowGrpcHealth) {
  TestCluster cluster(SG_SERVER_BIN, dir_, 3, {"--metrics-listen=127.0.0.1:0"});
  cluster.Start(0);
  auto line =
      cluster.process(0)->WaitForLine("msg=listening", absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << cluster.process(0)->Output();
  const std::string metrics = testutil::FieldFromLogLine(*line, "metrics");
  ASSERT_FALSE(metrics.empty()) << *line;

  std::optional<HttpReply> healthz = HttpGet(metrics, "/healthz");
  ASSERT_TRUE(healthz.has_value());
  EXPECT_EQ(healthz->status, 200);
  std::optional<HttpReply> readyz = HttpGet(metrics, "/readyz");
  ASSERT_TRUE(readyz.has_value());
  EXPECT_EQ(readyz->status, 503) << readyz->body;
  EXPECT_EQ(readyz->body, "not serving\n");

  cluster.Start(1);
  cluster.Start(2);
  ASSERT_TRUE(cluster.WaitForView(0, absl::Seconds(20)));
  EXPECT_TRUE(testutil::PollUntil(
      [&] {
        readyz = HttpGet(metrics, "/readyz");
        return readyz && readyz->status == 200;
      },
      absl::Seconds(20)))
      << (readyz ? readyz->body : "no answer");
  EXPECT_EQ(readyz->body, "serving\n");
}

TEST_F(MetricsTest, EmptyMetricsListenServesNoMetrics) {
  auto server = StartServer({"--metrics-listen="});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(metrics_, "");
  EXPECT_TRUE(absl::StrContains(server->Output(), "msg=listening"));
}

TEST_F(MetricsTest, AnExplicitAddressInUseFailsTheStart) {
  auto first = StartServer({"--metrics-listen=127.0.0.1:0"});
  ASSERT_NE(first, nullptr);
  ASSERT_FALSE(metrics_.empty());
  auto second = Subprocess::Start({SG_SERVER_BIN, "--listen=127.0.0.1:0",
                                   "--data-dir=" + dir_ + "/data2",
                                   "--metrics-listen=" + metrics_});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->Wait(absl::Seconds(30)), 1) << (*second)->Output();
  EXPECT_TRUE(absl::StrContains((*second)->Output(), "cannot listen on"))
      << (*second)->Output();
}

TEST_F(MetricsTest, ClusterReportsPeersByStateAndRanges) {
  TestCluster cluster(SG_SERVER_BIN, dir_, 3, {"--metrics-listen=127.0.0.1:0"});
  cluster.Start();
  std::vector<std::string> metrics;
  for (int i = 0; i < 3; ++i) {
    auto line =
        cluster.process(i)->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value());
    metrics.push_back(testutil::FieldFromLogLine(*line, "metrics"));
    ASSERT_FALSE(metrics.back().empty()) << *line;
  }
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(cluster.WaitForView(i, absl::Seconds(20)));

  std::string text = Scrape(metrics[0]);
  EXPECT_EQ(Sample(text, "sg_server_peers{state=\"alive\"}"), 2) << text;
  EXPECT_EQ(Sample(text, "sg_server_peers{state=\"suspect\"}"), 0);
  EXPECT_EQ(Sample(text, "sg_server_peers{state=\"dead\"}"), 0);
  EXPECT_EQ(Sample(text, "sg_server_ranges_below_write_quorum"), 0);
  EXPECT_EQ(Sample(text, "sg_server_hints_pending"), 0);
  EXPECT_TRUE(Sample(text, "sg_server_anti_entropy_repaired_total"));

  // A write through node 0 while node 2 is gone leaves hints for it.
  cluster.Kill(2);
  // SUSPECT first, DEAD after --dead-after (1 s): what the scrape sees is
  // the only signal this test has of the other process's view.
  EXPECT_TRUE(testutil::PollUntil(
      [&] {
        text = Scrape(metrics[0]);
        return Sample(text, "sg_server_peers{state=\"dead\"}") == 1;
      },
      absl::Seconds(20)))
      << text;
  EXPECT_EQ(Sample(text, "sg_server_peers{state=\"alive\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "sg_server_peers{state=\"suspect\"}"), 0);
  // One owner of three down leaves every range at W = 2.
  EXPECT_EQ(Sample(text, "sg_server_ranges_below_write_quorum"), 0);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    v1::CreateRequest req;
    req.set_data("x");
    v1::CreateResponse resp;
    ASSERT_TRUE(cluster.sessions(0).Create(&ctx, req, &resp).ok());
  }
  text = Scrape(metrics[0]);
  EXPECT_GE(Sample(text, "sg_server_quorum_writes_total{result=\"acked\"}")
                .value_or(0),
            5)
      << text;
  EXPECT_GT(Sample(text, "sg_server_hints_pending").value_or(0), 0);
}

}  // namespace
}  // namespace sg
