#include "edge/status_json.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace sg::edge {
namespace {

void AppendFmt(std::string* out, const char* fmt, double v) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof(buf), fmt, v);
  out->append(buf, static_cast<size_t>(n));
}

void AppendI(std::string* out, int64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%" PRId64, v);
  out->append(buf, static_cast<size_t>(n));
}

void AppendU(std::string* out, uint64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%" PRIu64, v);
  out->append(buf, static_cast<size_t>(n));
}

// JavaScript's (x * 100).toFixed(digits) + '%', quoted.
void AppendPercent(std::string* out, double ratio, int digits) {
  out->push_back('"');
  AppendFmt(out, digits == 0 ? "%.0f" : "%.2f", ratio * 100.0);
  out->append("%\"");
}

double SkipRatio(const StatusSnapshot& s) {
  return s.total_requests == 0 ? 0.0
                               : static_cast<double>(s.skipped_requests) /
                                     static_cast<double>(s.total_requests);
}

double MemoryRatio(const StatusSnapshot& s) {
  return s.memory_limit_bytes <= 0
             ? 0.0
             : static_cast<double>(s.rss_bytes) /
                   static_cast<double>(s.memory_limit_bytes);
}

void AppendActiveSessions(std::string* out, const StatusSnapshot& s) {
  if (s.active_sessions) {
    AppendI(out, *s.active_sessions);
  } else {
    out->append("null");
  }
}

// Reasons sorted by count, descending (ties by name for a stable output).
std::vector<std::pair<std::string, uint64_t>> Sorted(const StatusSnapshot& s) {
  auto reasons = s.skip_reasons;
  reasons.erase(std::remove_if(reasons.begin(), reasons.end(),
                               [](const auto& r) { return r.second == 0; }),
                reasons.end());
  std::sort(reasons.begin(), reasons.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return reasons;
}

void AppendReasons(std::string* out,
                   const std::vector<std::pair<std::string, uint64_t>>& r,
                   size_t limit) {
  out->push_back('{');
  for (size_t i = 0; i < r.size() && i < limit; ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(out, r[i].first);
    out->push_back(':');
    AppendU(out, r[i].second);
  }
  out->push_back('}');
}

void AppendMegabytes(std::string* out, int64_t bytes) {
  out->push_back('"');
  AppendFmt(out, "%.2f", static_cast<double>(bytes) / 1024.0 / 1024.0);
  out->append(" MB\"");
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

bool IsHealthy(const StatusSnapshot& s) {
  return MemoryRatio(s) < s.critical_threshold;
}

std::string RenderSessionHealth(const StatusSnapshot& s) {
  std::string out;
  out.reserve(1024);
  out.append("{\"healthy\":").append(IsHealthy(s) ? "true" : "false");
  out.append(",\"metrics\":{\"totalRequests\":");
  AppendU(&out, s.total_requests);
  out.append(",\"skippedRequests\":");
  AppendU(&out, s.skipped_requests);
  out.append(",\"skipRatio\":");
  AppendPercent(&out, SkipRatio(s), 2);
  out.append(",\"targetSkipRatio\":");
  AppendPercent(&out, s.target_skip_ratio, 0);
  out.append(",\"activeSessions\":");
  AppendActiveSessions(&out, s);
  out.append(",\"maxSessions\":");
  AppendI(&out, s.max_sessions);
  out.append("},\"memory\":{\"heapUsed\":");
  AppendMegabytes(&out, s.rss_bytes);
  out.append(",\"heapTotal\":");
  AppendMegabytes(&out, s.memory_limit_bytes);
  out.append(",\"usage\":");
  AppendPercent(&out, MemoryRatio(s), 2);
  out.append(",\"warningThreshold\":");
  AppendPercent(&out, s.warning_threshold, 0);
  out.append(",\"criticalThreshold\":");
  AppendPercent(&out, s.critical_threshold, 0);
  out.append("},\"environment\":{\"isProduction\":")
      .append(s.production ? "true" : "false");
  out.append(",\"isKubernetes\":").append(s.kubernetes ? "true" : "false");
  out.append(",\"hostname\":");
  AppendJsonString(&out, s.hostname);
  out.append("},\"skipReasonStats\":");
  AppendReasons(&out, Sorted(s), 10);
  out.append(",\"uptime\":");
  AppendFmt(&out, "%.3f", s.uptime_seconds);
  out.append("}");
  return out;
}

std::string RenderDashboard(const StatusSnapshot& s) {
  std::string out;
  out.reserve(1024);
  out.append("{\"status\":\"operational\",\"sessionMetrics\":{");
  out.append("\"totalRequests\":");
  AppendU(&out, s.total_requests);
  out.append(",\"skippedRequests\":");
  AppendU(&out, s.skipped_requests);
  out.append(",\"sessionRequests\":");
  AppendU(&out, s.total_requests - s.skipped_requests);
  out.append(",\"skipReasons\":");
  AppendReasons(&out, Sorted(s), s.skip_reasons.size());
  out.append(",\"lastReset\":");
  AppendJsonString(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", s.start_time,
                                          absl::UTCTimeZone()));
  out.append(",\"memoryUsage\":");
  AppendFmt(&out, "%.6f", MemoryRatio(s));
  out.append(",\"activeSessions\":");
  AppendActiveSessions(&out, s);
  out.append(",\"skipRatio\":");
  AppendFmt(&out, "%.6f", SkipRatio(s));
  out.append("},\"uptime\":");
  AppendFmt(&out, "%.3f", s.uptime_seconds);
  out.append(",\"memory\":{\"rss\":");
  AppendI(&out, s.rss_bytes);
  out.append(",\"heapTotal\":");
  AppendI(&out, s.memory_limit_bytes);
  out.append(",\"heapUsed\":");
  AppendI(&out, s.rss_bytes);
  out.append(",\"external\":0,\"arrayBuffers\":0}}");
  return out;
}

}  // namespace sg::edge
