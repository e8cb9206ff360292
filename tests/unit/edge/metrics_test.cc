#include "edge/metrics.h"

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos ||
         text.rfind(line + "\n", 0) == 0;
}

EdgeMetrics Make() {
  return EdgeMetrics(
      {"session_required", "static_extension:.js", "internal_ua:curl"});
}

TEST(MetricsTest, EveryReasonIsPreRegisteredAtZero) {
  EdgeMetrics m = Make();
  const std::string text = m.Render({});
  EXPECT_TRUE(Has(text,
                  "sg_edge_requests_total{decision=\"session\","
                  "reason=\"session_required\"} 0"));
  EXPECT_TRUE(Has(text,
                  "sg_edge_requests_total{decision=\"bypass\","
                  "reason=\"static_extension:.js\"} 0"));
  EXPECT_TRUE(Has(text,
                  "sg_edge_requests_total{decision=\"bypass\","
                  "reason=\"edge_endpoint\"} 0"));
  EXPECT_TRUE(Has(text, "# TYPE sg_edge_requests_total counter"));
  EXPECT_TRUE(Has(text,
                  "# TYPE sg_edge_session_call_duration_seconds "
                  "histogram"));
}

TEST(MetricsTest, DecisionsTotalAndByReason) {
  EdgeMetrics m = Make();
  m.CountDecision(0);
  m.CountDecision(1);
  m.CountDecision(1);
  m.CountDecision(m.edge_endpoint_reason());
  auto [total, bypassed] = m.DecisionTotals();
  EXPECT_EQ(total, 4u);
  EXPECT_EQ(bypassed, 3u);
  const std::string text = m.Render({});
  EXPECT_TRUE(Has(text,
                  "sg_edge_requests_total{decision=\"bypass\","
                  "reason=\"static_extension:.js\"} 2"));
  EXPECT_EQ(m.reason_name(m.edge_endpoint_reason()), "edge_endpoint");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Histogram h({0.001, 0.01, 0.1});
  h.Observe(absl::Microseconds(500));
  h.Observe(absl::Milliseconds(5));
  h.Observe(absl::Milliseconds(5));
  h.Observe(absl::Seconds(2));
  std::string out;
  h.Render(&out, "lat", "m=\"get\"");
  EXPECT_TRUE(Has(out, "lat_bucket{m=\"get\",le=\"0.001\"} 1")) << out;
  EXPECT_TRUE(Has(out, "lat_bucket{m=\"get\",le=\"0.01\"} 3")) << out;
  EXPECT_TRUE(Has(out, "lat_bucket{m=\"get\",le=\"0.1\"} 3")) << out;
  EXPECT_TRUE(Has(out, "lat_bucket{m=\"get\",le=\"+Inf\"} 4")) << out;
  EXPECT_TRUE(Has(out, "lat_sum{m=\"get\"} 2.0105")) << out;
  EXPECT_TRUE(Has(out, "lat_count{m=\"get\"} 4")) << out;
  std::string bare;
  h.Render(&bare, "lat", "");
  EXPECT_TRUE(Has(bare, "lat_bucket{le=\"+Inf\"} 4")) << bare;
  EXPECT_TRUE(Has(bare, "lat_count 4")) << bare;
}

TEST(MetricsTest, CallsCookiesSessionsAndGauges) {
  EdgeMetrics m = Make();
  m.CountCall(SessionMethod::kGet, CallResult::kOk, absl::Milliseconds(1));
  m.CountCall(SessionMethod::kGet, CallResult::kRejected, absl::ZeroDuration());
  m.CountCookie(CookieVerdict::kBadSignature);
  m.CountSessionCreated();
  m.CountLocalReply(431);
  m.CountLocalReply(299);  // not a local reply code: ignored
  m.ConnectionOpened(false);
  MetricsGauges g;
  g.breaker_state = 1;
  g.active_sessions = 7;
  g.draining = true;
  const std::string text = m.Render(g);
  EXPECT_TRUE(Has(text,
                  "sg_edge_session_calls_total{method=\"get\","
                  "result=\"ok\"} 1"));
  EXPECT_TRUE(Has(text,
                  "sg_edge_session_calls_total{method=\"get\","
                  "result=\"rejected\"} 1"));
  // Rejected calls are not timed.
  EXPECT_TRUE(Has(text,
                  "sg_edge_session_call_duration_seconds_count{"
                  "method=\"get\"} 1"));
  EXPECT_TRUE(Has(text,
                  "sg_edge_cookies_rejected_total{verdict="
                  "\"bad_signature\"} 1"));
  EXPECT_TRUE(Has(text, "sg_edge_sessions_created_total 1"));
  EXPECT_TRUE(Has(text, "sg_edge_local_replies_total{code=\"431\"} 1"));
  EXPECT_TRUE(Has(text, "sg_edge_open_connections{listener=\"proxy\"} 1"));
  EXPECT_TRUE(Has(text, "sg_edge_session_breaker_state 1"));
  EXPECT_TRUE(Has(text, "sg_edge_service_sessions 7"));
  EXPECT_TRUE(Has(text, "sg_edge_draining 1"));
  EXPECT_EQ(m.calls(SessionMethod::kGet, CallResult::kOk), 1u);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  std::string out;
  AppendLabelValue(&out, "a\"b\\c\nd");
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace sg::edge
