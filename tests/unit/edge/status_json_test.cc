#include "edge/status_json.h"

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

StatusSnapshot Sample() {
  StatusSnapshot s;
  s.total_requests = 3;
  s.skipped_requests = 1;
  s.skip_reasons = {{"internal_ua:curl", 1}};
  s.active_sessions = 12;
  s.rss_bytes = 50 * 1024 * 1024;
  s.memory_limit_bytes = 200 * 1024 * 1024;
  s.uptime_seconds = 1.5;
  s.start_time = absl::FromUnixSeconds(1'700'000'000);
  s.hostname = "edge-0";
  return s;
}

TEST(StatusJsonTest, SessionHealthHasTheSeedsShape) {
  const std::string j = RenderSessionHealth(Sample());
  EXPECT_EQ(j,
            "{\"healthy\":true,\"metrics\":{\"totalRequests\":3,"
            "\"skippedRequests\":1,\"skipRatio\":\"33.33%\","
            "\"targetSkipRatio\":\"95%\",\"activeSessions\":12,"
            "\"maxSessions\":10000},\"memory\":{\"heapUsed\":\"50.00 MB\","
            "\"heapTotal\":\"200.00 MB\",\"usage\":\"25.00%\","
            "\"warningThreshold\":\"70%\",\"criticalThreshold\":\"85%\"},"
            "\"environment\":{\"isProduction\":false,\"isKubernetes\":false,"
            "\"hostname\":\"edge-0\"},\"skipReasonStats\":{"
            "\"internal_ua:curl\":1},\"uptime\":1.500}");
}

TEST(StatusJsonTest, UnhealthyAtCriticalMemoryAndUnknownSessionsAreNull) {
  StatusSnapshot s = Sample();
  s.rss_bytes = 170 * 1024 * 1024;  // 85 %
  s.active_sessions.reset();
  EXPECT_FALSE(IsHealthy(s));
  const std::string j = RenderSessionHealth(s);
  EXPECT_NE(j.find("\"healthy\":false"), std::string::npos);
  EXPECT_NE(j.find("\"activeSessions\":null"), std::string::npos);
}

TEST(StatusJsonTest, SkipReasonStatsAreTheTopTenByCount) {
  StatusSnapshot s = Sample();
  s.skip_reasons.clear();
  for (int i = 0; i < 12; ++i) {
    s.skip_reasons.emplace_back("r" + std::to_string(i), i);
  }
  const std::string j = RenderSessionHealth(s);
  EXPECT_NE(j.find("\"skipReasonStats\":{\"r11\":11,\"r10\":10,\"r9\":9"),
            std::string::npos)
      << j;
  EXPECT_EQ(j.find("\"r1\":"), std::string::npos);  // 11th: cut
  EXPECT_EQ(j.find("\"r0\":"), std::string::npos);  // zero: never shown
}

TEST(StatusJsonTest, DashboardHasStatusSessionMetricsUptimeMemory) {
  const std::string j = RenderDashboard(Sample());
  EXPECT_EQ(j.rfind("{\"status\":\"operational\",\"sessionMetrics\":{", 0), 0u);
  for (const char* key :
       {"\"totalRequests\":3", "\"skippedRequests\":1", "\"sessionRequests\":2",
        "\"skipReasons\":{\"internal_ua:curl\":1}",
        "\"lastReset\":\"2023-11-14T22:13:20.000Z\"", "\"activeSessions\":12",
        "\"skipRatio\":0.333333", "\"uptime\":1.500",
        "\"memory\":{\"rss\":52428800"}) {
    EXPECT_NE(j.find(key), std::string::npos) << key << "\n" << j;
  }
}

TEST(StatusJsonTest, StringsAreEscaped) {
  std::string out;
  AppendJsonString(&out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace sg::edge
