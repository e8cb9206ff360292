// Runs the sessiongrid-bench binary against the in-process fake server and
// checks its one-line JSON report.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fake_server.h"
#include "gtest/gtest.h"

namespace sg::client {
namespace {

using ::sg::client::testing::FakeServer;

// The number after "key": in a flat JSON object; -1 when absent.
double Field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return -1;
  const size_t start = at + needle.size();
  const size_t end = json.find_first_of(",}", start);
  double value = -1;
  if (!absl::SimpleAtod(json.substr(start, end - start), &value)) return -1;
  return value;
}

// Runs `args` through the bench with a hard 60 s cap; returns stdout and the
// exit status.
std::string RunBench(const std::string& args, int* status) {
  const std::string cmd =
      absl::StrCat("timeout 60 ", SG_BENCH_BINARY, " ", args);
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *status = pclose(pipe);
  return out;
}

TEST(BenchSmokeTest, MixRunStopsByItselfAndReportsJson) {
  FakeServer server;
  ASSERT_TRUE(server.ok());
  char ids_path[] = "/tmp/sg-bench-ids-XXXXXX";
  const int fd = mkstemp(ids_path);
  ASSERT_GE(fd, 0);
  close(fd);
  int status = 0;
  // The fake server runs in this process: its CPU time is ours.
  const std::string out = RunBench(
      absl::StrCat("--target ", server.address(),
                   " --op=mix --concurrency 8 --channels 2 --duration 1s"
                   " --warmup 200ms --keys 20 --value-size 100",
                   " --server-pid ", getpid(), " --ids-out ", ids_path),
      &status);
  std::cout << "bench: " << out;
  ASSERT_EQ(status, 0) << out;
  ASSERT_EQ(out.find('\n'), out.size() - 1) << "want one line: " << out;
  EXPECT_NE(out.find(R"("op":"mix")"), std::string::npos) << out;
  EXPECT_EQ(Field(out, "concurrency"), 8);
  EXPECT_EQ(Field(out, "errors"), 0);
  const double ops = Field(out, "ops");
  EXPECT_GT(ops, 0);
  EXPECT_NEAR(Field(out, "ops_per_sec"), ops / Field(out, "duration_s"), 1);
  const double p50 = Field(out, "p50_us"), p99 = Field(out, "p99_us"),
               p999 = Field(out, "p999_us");
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, p999);
  // Preload (20 creates) plus the measured calls all reached the server.
  EXPECT_GE(server.state().calls("Create"), 20);
  EXPECT_GT(server.state().calls("Get"), 0);
  EXPECT_GT(server.state().calls("Touch"), 0);
  EXPECT_GT(server.state().calls("Update"), 0);
  EXPECT_GT(Field(out, "server_cpu_us_per_op"), 0) << out;
  EXPECT_GT(Field(out, "client_cpu_us_per_op"), 0) << out;
  // --ids-out: the 20 preloaded ids, one per line.
  std::ifstream ids(ids_path);
  int lines = 0;
  for (std::string id; std::getline(ids, id);) lines += id.empty() ? 0 : 1;
  EXPECT_EQ(lines, 20);
  std::remove(ids_path);
}

TEST(BenchSmokeTest, ServerErrorsAreCountedNotHidden) {
  FakeServer server;
  ASSERT_TRUE(server.ok());
  server.state().FailNext(1'000'000'000, grpc::StatusCode::UNAVAILABLE, "down");
  int status = 0;
  const std::string out =
      RunBench(absl::StrCat("--target ", server.address(),
                            " --op create --concurrency 4 --duration 300ms"
                            " --warmup 0s"),
               &status);
  // No successful call: exit 1, but the report is still printed.
  EXPECT_NE(status, 0);
  EXPECT_EQ(Field(out, "ops"), 0) << out;
  EXPECT_GT(Field(out, "errors"), 0) << out;
  // By code too, so an expected NOT_FOUND can be told from a real failure.
  EXPECT_EQ(Field(out, "UNAVAILABLE"), Field(out, "errors")) << out;
}

TEST(BenchSmokeTest, BadFlagsAreRejected) {
  int status = 0;
  RunBench("--op frobnicate 2>/dev/null", &status);
  EXPECT_NE(status, 0);
  RunBench("--concurrency 0 2>/dev/null", &status);
  EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace sg::client
